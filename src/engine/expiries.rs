//! A first-in first-out list of nondecreasing times in 4 bytes each.
//!
//! A stateful server keeps the state of each finished session until its idle timeout; the
//! timeout is the same for all, so those expiry times come in order. A large fleet holds millions
//! of them (3.6 million in the 800-server scale benchmark). Each is stored as its gap from the one
//! before, which fits 32 bits unless sessions end more than 4.29 s apart on one server; a longer
//! gap takes three words (a marker, then the gap's two halves). The times are exact.
//!
//! The words live in fixed chunks of 1 KiB from one pool that all the lists share, not each in a
//! ring buffer of its own: a ring that doubles when full holds on average half again what it uses
//! (12 of the scale benchmark's 120 MB). A list wastes at most a partly used chunk at each end;
//! chunks it empties go back to the pool, and the pool takes memory in blocks of 64 chunks, so a
//! run whose lists stopped growing allocates nothing more.

use std::collections::VecDeque;

use super::SimTime;

/// Marks a gap too long for one word: the next two words hold it.
const LONG: u32 = u32::MAX;
/// Words per chunk.
const CHUNK: usize = 256;
/// Chunks allocated at once when the pool has none free.
const BLOCK: usize = 64;

/// The chunks every `Expiries` of a run takes its words from.
#[derive(Default)]
pub struct ExpiryChunks {
    blocks: Vec<Box<[[u32; CHUNK]]>>,
    /// Chunks handed out from the blocks so far; chunk `i` is `blocks[i / BLOCK][i % BLOCK]`.
    handed_out: u32,
    free: Vec<u32>,
}

impl ExpiryChunks {
    fn take(&mut self) -> u32 {
        if let Some(id) = self.free.pop() {
            return id;
        }
        if self.handed_out as usize == self.blocks.len() * BLOCK {
            self.blocks.push(vec![[0; CHUNK]; BLOCK].into_boxed_slice());
        }
        self.handed_out += 1;
        self.handed_out - 1
    }

    fn chunk(&self, id: u32) -> &[u32; CHUNK] {
        &self.blocks[id as usize / BLOCK][id as usize % BLOCK]
    }

    fn chunk_mut(&mut self, id: u32) -> &mut [u32; CHUNK] {
        &mut self.blocks[id as usize / BLOCK][id as usize % BLOCK]
    }
}

/// One list; the methods that change it take the pool its words are in.
pub struct Expiries {
    /// Each time's gap from the previous one (the first's is not read), in order: the words
    /// from `head` in the first chunk to `tail` (exclusive) in the last.
    chunks: VecDeque<u32>,
    /// The last chunk (while `tail < CHUNK`): a push writes there without reading `chunks`,
    /// whose buffer is one more line per server that a large fleet finds out of the caches.
    last_chunk: u32,
    head: usize,
    /// `CHUNK` when there is no chunk, so that the next word takes one.
    tail: usize,
    /// The first and the last time, while not empty.
    first: SimTime,
    last: SimTime,
    len: usize,
}

impl Default for Expiries {
    fn default() -> Self {
        Expiries {
            chunks: VecDeque::new(),
            last_chunk: 0,
            head: 0,
            tail: CHUNK,
            first: SimTime::ZERO,
            last: SimTime::ZERO,
            len: 0,
        }
    }
}

impl Expiries {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self, pool: &mut ExpiryChunks) {
        pool.free.extend(self.chunks.drain(..));
        self.head = 0;
        self.tail = CHUNK;
        self.len = 0;
    }

    /// Adds a time, no earlier than the last one added.
    pub fn push_back(&mut self, time: SimTime, pool: &mut ExpiryChunks) {
        let gap = if self.len == 0 {
            self.first = time;
            0
        } else {
            debug_assert!(time >= self.last, "expiry times come in order");
            time.nanos() - self.last.nanos()
        };
        match u32::try_from(gap) {
            Ok(short) if short != LONG => self.push_word(short, pool),
            _ => {
                self.push_word(LONG, pool);
                self.push_word((gap >> 32) as u32, pool);
                self.push_word(gap as u32, pool);
            }
        }
        self.last = time;
        self.len += 1;
    }

    pub fn front(&self) -> Option<SimTime> {
        (self.len > 0).then_some(self.first)
    }

    pub fn pop_front(&mut self, pool: &mut ExpiryChunks) -> Option<SimTime> {
        let first = self.front()?;
        let words = if self.word(0, pool) == LONG { 3 } else { 1 };
        for _ in 0..words {
            self.pop_word(pool);
        }
        self.len -= 1;
        if self.len > 0 {
            self.first = SimTime::from_nanos(first.nanos() + self.front_gap(pool));
        }
        Some(first)
    }

    /// Removes the times up to `now` (expired by then).
    pub fn drop_through(&mut self, now: SimTime, pool: &mut ExpiryChunks) {
        while self.front().is_some_and(|time| time <= now) {
            self.pop_front(pool);
        }
    }

    /// The first entry's gap.
    fn front_gap(&self, pool: &ExpiryChunks) -> u64 {
        match self.word(0, pool) {
            LONG => (u64::from(self.word(1, pool)) << 32) | u64::from(self.word(2, pool)),
            short => u64::from(short),
        }
    }

    /// The `index`th word from the front.
    fn word(&self, index: usize, pool: &ExpiryChunks) -> u32 {
        let at = self.head + index;
        pool.chunk(self.chunks[at / CHUNK])[at % CHUNK]
    }

    fn push_word(&mut self, word: u32, pool: &mut ExpiryChunks) {
        if self.tail == CHUNK {
            self.last_chunk = pool.take();
            self.chunks.push_back(self.last_chunk);
            self.tail = 0;
        }
        pool.chunk_mut(self.last_chunk)[self.tail] = word;
        self.tail += 1;
    }

    fn pop_word(&mut self, pool: &mut ExpiryChunks) {
        self.head += 1;
        if self.head == CHUNK {
            // The front chunk is used up; when it was also the last, the list is empty and the
            // next word takes a chunk (`tail` is `CHUNK` already).
            pool.free.extend(self.chunks.pop_front());
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Against plain `VecDeque<SimTime>`s, with gaps of every length (none, short, just under
    /// and over 32 bits, and to the end of time), pushes and pops interleaved, and three lists
    /// sharing the pool (one of them cleared now and then, as a crash does).
    #[test]
    fn matches_a_plain_queue_of_times() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut pool = ExpiryChunks::default();
        let mut compact: [Expiries; 3] = Default::default();
        let mut plain: [VecDeque<SimTime>; 3] = Default::default();
        let mut now = [0u64; 3];
        for step in 0..150_000 {
            let list = rng.random_range(0..3);
            if list == 2 && rng.random_bool(0.0001) {
                compact[2].clear(&mut pool);
                plain[2].clear();
            } else if rng.random_bool(0.52) {
                let gap = match rng.random_range(0..6) {
                    0 => 0,
                    1 => rng.random_range(0..1_000),
                    2 => u64::from(u32::MAX) - rng.random_range(0..3),
                    3 => u64::from(u32::MAX) + rng.random_range(0..3),
                    4 => rng.random_range(0..1u64 << 40),
                    _ => rng.random_range(0..1u64 << 20),
                };
                let time = &mut now[list];
                *time = time.saturating_add(if step == 120_000 { u64::MAX } else { gap });
                compact[list].push_back(SimTime(*time), &mut pool);
                plain[list].push_back(SimTime(*time));
            } else {
                assert_eq!(compact[list].pop_front(&mut pool), plain[list].pop_front());
            }
            assert_eq!(compact[list].len(), plain[list].len());
            assert_eq!(compact[list].front(), plain[list].front().copied());
        }
        assert!(plain[..2].iter().all(|list| list.len() > 2 * CHUNK));
        let half = now[0] / 2;
        compact[0].drop_through(SimTime(half), &mut pool);
        plain[0].retain(|time| time.nanos() > half);
        assert_eq!(compact[0].len(), plain[0].len());
        compact[0].clear(&mut pool);
        assert!(compact[0].is_empty() && compact[0].pop_front(&mut pool).is_none());
        // The chunks given back serve again: nothing new is taken from the blocks.
        let handed_out = pool.handed_out;
        for time in 0..1_000 {
            compact[0].push_back(SimTime(time), &mut pool);
        }
        assert_eq!(pool.handed_out, handed_out);
        assert_eq!(compact[0].len(), 1_000);
        assert_eq!(compact[0].pop_front(&mut pool), Some(SimTime(0)));
        assert_eq!(compact[0].pop_front(&mut pool), Some(SimTime(1)));
        assert_eq!(compact[1].pop_front(&mut pool), plain[1].pop_front());
    }
}
