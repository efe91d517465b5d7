//! The event queue's far tier: events not due soon, in buckets of simulated time.
//!
//! A large model has a million pending events, most of them think times seconds away. In one heap
//! every pop sifts through ten levels, the deeper ones out of the caches. Here an event is appended
//! to the bucket its time falls in (no ordering at all), and when the heap runs dry the next bucket
//! moves into it whole. The heap then only holds about one bucket's events and stays in the
//! caches, and each event is written a fixed number of times more whatever the number pending:
//! the cost per event stays flat.
//!
//! The order is exact. Every event in the heap is due before `horizon`'s bucket, every event here
//! in it or later, so the heap's top is the earliest of all, and ties still pop by sequence number
//! because entries keep their key. Only speed depends on the bucket width, never a result.
//!
//! Two rings, as in a ladder queue: `FINE` buckets of the width from `horizon` on, then `COARSE`
//! buckets each as wide as the whole fine ring; an event beyond waits in `overflow`. When the fine
//! ring is used up, the next coarse bucket is spread over it. So a handful of buckets hold events
//! seconds or minutes away and the fine ring stays small (its partly filled chunks waste little),
//! and an event is moved at most three times: overflow, coarse, fine, heap.
//!
//! The width adapts: a bucket should hand about `TARGET` events to the heap. Events come due at
//! the rate the model schedules them (in a steady state), so the right width is `TARGET` over that
//! rate, whatever the delays' distribution. It is estimated from the pending delays when the
//! calendar starts, and judged again every `WINDOW` buckets from the events scheduled meanwhile.
//!
//! Buckets are chains of 16-entry chunks from one pool, allocated in blocks and recycled through
//! a free list: a bucket that holds more than ever before takes a chunk, not a reallocation, so
//! once the pending count has peaked nothing is allocated, and an empty bucket costs 12 bytes.

use super::SimTime;
use super::queue::{Entry, Heap};

/// Entries per chunk of a bucket's chain.
const CHUNK: usize = 16;
/// Chunks allocated at once when the pool runs out.
const BLOCK: usize = 64;
/// No chunk: the end of a chain, an empty free list.
const NONE: u32 = u32::MAX;
/// About this many events come due per bucket: the heap holds about as many, three levels of a
/// 4-ary heap. A pop sifts through every level, so a smaller heap is cheaper per event; the turns
/// cost little. Measured on the scale benchmark (instructions, k = 1 / k = 10): 256 -> 32 took
/// 14% / 5% off the whole run; 16 was the same as 32 in time.
const TARGET: f64 = 32.0;
/// Bucket turns the width is judged over.
const WINDOW: u32 = 64;
/// Buckets of the fine ring (a power of two; its log is `FINE_BITS`) and of the coarse ring.
const FINE_BITS: u32 = 12;
const FINE: usize = 1 << FINE_BITS;
const COARSE: usize = 1 << 10;
/// While the calendar is off: a shift and a horizon that no time reaches.
const OFF_SHIFT: u32 = 63;
const OFF_HORIZON: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Bucket {
    head: u32,
    tail: u32,
    len: u32,
}

const EMPTY: Bucket = Bucket {
    head: NONE,
    tail: NONE,
    len: 0,
};

/// Sixteen 32-byte entries, exactly eight cache lines: an entry never straddles two. (The link
/// to the next chunk of a chain is in `Pool::links`: here it made a chunk 516 bytes, so that
/// chunks sat at every offset of a line and half their entries straddled two lines, each write
/// to a bucket that had gone cold two misses instead of one.)
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Chunk<E> {
    entries: [Entry<E>; CHUNK],
}

/// The chunks of every bucket's chain, allocated `BLOCK` at a time, and recycled through a free
/// list.
struct Pool<E> {
    blocks: Vec<Box<[Chunk<E>]>>,
    /// The next chunk of each chunk's chain (or of the free list), by chunk number.
    links: Vec<u32>,
    /// The free chunks' list.
    free: u32,
}

pub(super) struct Calendar<E> {
    /// An event's (fine) bucket number is its time in nanoseconds `>> shift`; its coarse bucket
    /// number is that `>> FINE_BITS`.
    shift: u32,
    /// The first fine bucket number not yet moved into the heap.
    horizon: u64,
    /// The first coarse bucket number not yet spread over the fine ring. The fine ring holds fine
    /// numbers from `horizon` up to `coarse_horizon << FINE_BITS` (at most `FINE` of them), the
    /// coarse ring coarse numbers from `coarse_horizon` on (at most `COARSE`).
    coarse_horizon: u64,
    /// Fine bucket number `b` is at `fine[b % FINE]`, coarse number `c` at `coarse[c % COARSE]`.
    fine: Vec<Bucket>,
    coarse: Vec<Bucket>,
    fine_len: usize,
    coarse_len: usize,
    /// Events beyond the coarse ring, unordered, and the smallest coarse number among them.
    overflow: Vec<Entry<E>>,
    overflow_min: u64,
    pool: Pool<E>,
    /// Since the width was last judged: bucket turns, fine buckets passed, and the queue's
    /// sequence number then (events scheduled since, which in a steady state is about the events
    /// that came due, whether they went through a bucket or straight into the heap).
    window_turns: u32,
    window_buckets: u64,
    window_seq: u64,
    /// The queue's sequence number at the last turn.
    turn_seq: u64,
    /// The non-empty buckets being laid out again when the width changes (kept for next time).
    relaid: Vec<Bucket>,
}

impl<E: Copy + Default> Calendar<E> {
    pub(super) fn new() -> Self {
        Calendar {
            shift: OFF_SHIFT,
            horizon: OFF_HORIZON,
            coarse_horizon: OFF_HORIZON,
            fine: Vec::new(),
            coarse: Vec::new(),
            fine_len: 0,
            coarse_len: 0,
            overflow: Vec::new(),
            overflow_min: u64::MAX,
            pool: Pool {
                blocks: Vec::new(),
                links: Vec::new(),
                free: NONE,
            },
            window_turns: 0,
            window_buckets: 0,
            window_seq: 0,
            turn_seq: 0,
            relaid: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.fine_len + self.coarse_len + self.overflow.len()
    }

    #[cfg(test)]
    pub(super) fn is_on(&self) -> bool {
        self.horizon != OFF_HORIZON
    }

    #[cfg(test)]
    pub(super) fn shift(&self) -> u32 {
        self.shift
    }

    /// Whether an event at `time` belongs here: the calendar is on and the event is not due
    /// before the horizon. One shift and one comparison.
    #[inline(always)]
    pub(super) fn takes(&self, time: SimTime) -> bool {
        (time.nanos() >> self.shift) >= self.horizon
    }

    /// Adds an event that `takes` accepted.
    pub(super) fn insert(&mut self, entry: Entry<E>) {
        let number = entry.time().nanos() >> self.shift;
        let coarse = number >> FINE_BITS;
        if coarse < self.coarse_horizon {
            self.fine_len += 1;
            Self::append(&mut self.fine, FINE, number, entry, &mut self.pool);
        } else if coarse - self.coarse_horizon < COARSE as u64 {
            self.coarse_len += 1;
            Self::append(&mut self.coarse, COARSE, coarse, entry, &mut self.pool);
        } else {
            self.overflow_min = self.overflow_min.min(coarse);
            self.overflow.push(entry);
        }
    }

    /// Turns the calendar on: `heap` holds more events than fit in the caches. The width comes
    /// from the delays pending; every event not in the first bucket moves here. `seq` is the
    /// queue's next sequence number.
    pub(super) fn start(&mut self, heap: &mut Heap<E>, seq: u64) {
        let now = heap.earliest().map_or(0, SimTime::nanos);
        let mut delays: Vec<u64> = heap
            .entries()
            .iter()
            .map(|entry| entry.time().nanos() - now)
            .collect();
        // The rate events come due, from the quarter due soonest.
        let soon = (delays.len() / 4).max(1);
        let (_, &mut within, _) = delays.select_nth_unstable(soon - 1);
        let rate = soon as f64 / within.max(1) as f64;
        self.fine.resize(FINE, EMPTY);
        self.coarse.resize(COARSE, EMPTY);
        self.lay_out(shift_for(TARGET / rate), now.saturating_add(1), seq);
        let horizon = self.horizon;
        let shift = self.shift;
        heap.split_off(
            |entry| entry.time().nanos() >> shift < horizon,
            |entry| self.insert(entry),
        );
    }

    /// Turns the calendar off: every event moves into `heap`.
    pub(super) fn stop(&mut self, heap: &mut Heap<E>) {
        self.collect_buckets();
        let mut relaid = std::mem::take(&mut self.relaid);
        for bucket in relaid.drain(..) {
            self.unchain(bucket, &mut |_, entry| heap.push(entry));
        }
        self.relaid = relaid;
        for entry in self.overflow.drain(..) {
            heap.push(entry);
        }
        self.overflow_min = u64::MAX;
        self.shift = OFF_SHIFT;
        self.horizon = OFF_HORIZON;
        self.coarse_horizon = OFF_HORIZON;
    }

    /// Moves the next bucket with events into the (empty) heap. `seq` is the queue's next
    /// sequence number.
    pub(super) fn move_next_bucket(&mut self, heap: &mut Heap<E>, seq: u64) {
        debug_assert!(self.len() > 0 && heap.len == 0);
        loop {
            if self.fine_len == 0 {
                // Nothing in the fine ring: straight to the next coarse bucket with events.
                self.skip_to_coarse_events();
            }
            if self.horizon == fine_start(self.coarse_horizon) {
                self.spread_coarse_bucket();
            }
            let slot = (self.horizon % FINE as u64) as usize;
            let bucket = std::mem::replace(&mut self.fine[slot], EMPTY);
            self.horizon = self.horizon.saturating_add(1);
            self.window_buckets += 1;
            if bucket.len > 0 {
                self.fine_len -= bucket.len as usize;
                self.move_chain(bucket, heap);
                break;
            }
        }
        // A turn after which far more events than `TARGET` were scheduled is judged at once: the
        // width is much too wide, and the heap much too large, if that goes on.
        let scheduled = seq - std::mem::replace(&mut self.turn_seq, seq);
        self.window_turns += 1;
        if self.window_turns == WINDOW || scheduled as f64 > 16.0 * TARGET {
            self.judge_width(heap, seq);
        }
    }

    /// The earliest key here (for `peek_time`, not the hot path).
    pub(super) fn min_key(&self) -> Option<u128> {
        let soonest = |ring: &[Bucket], from: u64| {
            (0..ring.len() as u64)
                .map(|offset| ring[((from + offset) % ring.len() as u64) as usize])
                .find(|bucket| bucket.len > 0)
                .map(|bucket| {
                    let mut min = u128::MAX;
                    self.for_each_in_chain(bucket, |entry| min = min.min(entry.key));
                    min
                })
        };
        let in_fine = (self.fine_len > 0)
            .then(|| soonest(&self.fine, self.horizon))
            .flatten();
        let in_coarse = (self.coarse_len > 0)
            .then(|| soonest(&self.coarse, self.coarse_horizon))
            .flatten();
        let in_overflow = self.overflow.iter().map(|entry| entry.key).min();
        in_fine.or(in_coarse).or(in_overflow)
    }

    /// The fine ring is empty: the horizon moves to the first coarse bucket with events (pulling
    /// the overflow's in when the coarse ring is empty too).
    fn skip_to_coarse_events(&mut self) {
        if self.coarse_len == 0 {
            self.coarse_horizon = self.coarse_horizon.max(self.overflow_min);
            self.settle_overflow();
        }
        while self.coarse[(self.coarse_horizon % COARSE as u64) as usize].len == 0 {
            self.coarse_horizon = self.coarse_horizon.saturating_add(1);
        }
        self.horizon = self.horizon.max(fine_start(self.coarse_horizon));
    }

    /// The fine ring is used up: the next coarse bucket's events go into it, and the overflow's
    /// that the coarse ring now covers into that.
    fn spread_coarse_bucket(&mut self) {
        let slot = (self.coarse_horizon % COARSE as u64) as usize;
        let bucket = std::mem::replace(&mut self.coarse[slot], EMPTY);
        self.coarse_horizon = self.coarse_horizon.saturating_add(1);
        self.coarse_len -= bucket.len as usize;
        self.unchain(bucket, &mut |calendar, entry| calendar.insert(entry));
        if self.overflow_min < self.coarse_horizon + COARSE as u64 {
            self.settle_overflow();
        }
    }

    /// Moves the overflow's events that the rings now cover into them.
    fn settle_overflow(&mut self) {
        let mut overflow = std::mem::take(&mut self.overflow);
        let end = self.coarse_horizon.saturating_add(COARSE as u64);
        self.overflow_min = u64::MAX;
        overflow.retain(|entry| {
            let coarse = (entry.time().nanos() >> self.shift) >> FINE_BITS;
            if coarse < end {
                self.insert(*entry);
                false
            } else {
                self.overflow_min = self.overflow_min.min(coarse);
                true
            }
        });
        // Anything `insert` put back is beyond the rings too.
        overflow.append(&mut self.overflow);
        self.overflow = overflow;
    }

    /// Appends to bucket `number` of `ring` (of `size` buckets), which the ring covers.
    #[inline]
    fn append(ring: &mut [Bucket], size: usize, number: u64, entry: Entry<E>, pool: &mut Pool<E>) {
        let bucket = &mut ring[(number % size as u64) as usize];
        let fill = bucket.len as usize % CHUNK;
        if fill == 0 {
            let chunk = pool.take();
            if bucket.len == 0 {
                bucket.head = chunk;
            } else {
                pool.links[bucket.tail as usize] = chunk;
            }
            bucket.tail = chunk;
        }
        pool.chunk_mut(bucket.tail).entries[fill] = entry;
        bucket.len += 1;
    }

    fn for_each_in_chain(&self, bucket: Bucket, mut visit: impl FnMut(&Entry<E>)) {
        let mut id = bucket.head;
        let mut left = bucket.len as usize;
        while left > 0 {
            let count = left.min(CHUNK);
            self.pool.chunk(id).entries[..count]
                .iter()
                .for_each(&mut visit);
            left -= count;
            id = self.pool.links[id as usize];
        }
    }

    /// Moves a bucket's events into `heap`, read in place, and gives its chunks back to the pool
    /// (`unchain` copies each chunk out first, as its visitor may take chunks; the heap does not:
    /// this is the hot path of a large model).
    fn move_chain(&mut self, bucket: Bucket, heap: &mut Heap<E>) {
        let mut id = bucket.head;
        let mut left = bucket.len as usize;
        while left > 0 {
            let count = left.min(CHUNK);
            for entry in &self.pool.chunk(id).entries[..count] {
                heap.push(*entry);
            }
            let next = self.pool.give_back(id);
            left -= count;
            id = next;
        }
    }

    /// Hands a bucket's events to `visit` a chunk at a time, each chunk back in the pool before
    /// its events are handed on (so `visit` may take it again).
    fn unchain(&mut self, bucket: Bucket, visit: &mut impl FnMut(&mut Self, Entry<E>)) {
        let mut id = bucket.head;
        let mut left = bucket.len as usize;
        while left > 0 {
            let count = left.min(CHUNK);
            let entries = self.pool.chunk(id).entries;
            let next = self.pool.give_back(id);
            for entry in &entries[..count] {
                visit(self, *entry);
            }
            left -= count;
            id = next;
        }
    }

    /// When the buckets of the last `WINDOW` turns would have held far more or far fewer events
    /// than `TARGET`, the width is scaled to fit and the events are laid out again.
    fn judge_width(&mut self, heap: &mut Heap<E>, seq: u64) {
        let scheduled = seq - self.window_seq;
        let per_bucket = scheduled as f64 / self.window_buckets.max(1) as f64;
        self.window_turns = 0;
        self.window_buckets = 0;
        self.window_seq = seq;
        if (TARGET / 4.0..=TARGET * 4.0).contains(&per_bucket) {
            return;
        }
        let shift = shift_for((1u64 << self.shift) as f64 * TARGET / per_bucket.max(1e-9));
        if shift != self.shift {
            self.rebucket(shift, heap, seq);
        }
    }

    /// Lays every event out again in buckets of `1 << shift` nanoseconds. Events before the new
    /// horizon (the old one rounded up to a bucket boundary) move into the heap. Chunk by chunk:
    /// each is read and given back to the pool, then taken again by the new layout, so this needs
    /// no room but a list of the buckets.
    fn rebucket(&mut self, shift: u32, heap: &mut Heap<E>, seq: u64) {
        let boundary = (u128::from(self.horizon) << self.shift).min(u128::from(u64::MAX)) as u64;
        self.collect_buckets();
        self.lay_out(shift, boundary, seq);
        let horizon = self.horizon;
        let mut relaid = std::mem::take(&mut self.relaid);
        for bucket in relaid.drain(..) {
            self.unchain(bucket, &mut |calendar, entry| {
                if entry.time().nanos() >> shift < horizon {
                    heap.push(entry);
                } else {
                    calendar.insert(entry);
                }
            });
        }
        self.relaid = relaid;
        let mut overflow = std::mem::take(&mut self.overflow);
        self.overflow_min = u64::MAX;
        for entry in overflow.drain(..) {
            if entry.time().nanos() >> shift < horizon {
                heap.push(entry);
            } else {
                self.insert(entry);
            }
        }
        overflow.append(&mut self.overflow);
        self.overflow = overflow;
    }

    /// Empties both rings into `relaid` (the non-empty buckets' chains, still allocated).
    fn collect_buckets(&mut self) {
        for ring in [&mut self.fine, &mut self.coarse] {
            for bucket in ring.iter_mut().filter(|bucket| bucket.len > 0) {
                self.relaid.push(std::mem::replace(bucket, EMPTY));
            }
        }
        self.fine_len = 0;
        self.coarse_len = 0;
    }

    /// Sets the width, and the horizons so that the first fine bucket is the one `from` falls
    /// in, or the next when `from` is not at its start. The rings must be empty.
    fn lay_out(&mut self, shift: u32, from: u64, seq: u64) {
        self.shift = shift;
        self.horizon = (from >> shift) + u64::from(from & ((1 << shift) - 1) != 0);
        self.coarse_horizon = (self.horizon >> FINE_BITS) + 1;
        self.window_turns = 0;
        self.window_buckets = 0;
        self.window_seq = seq;
        self.turn_seq = seq;
    }
}

impl<E: Copy + Default> Pool<E> {
    fn chunk(&self, id: u32) -> &Chunk<E> {
        &self.blocks[id as usize / BLOCK][id as usize % BLOCK]
    }

    fn chunk_mut(&mut self, id: u32) -> &mut Chunk<E> {
        &mut self.blocks[id as usize / BLOCK][id as usize % BLOCK]
    }

    /// A chunk from the free list, or a new one (a new block when the last is used up), linked
    /// to nothing.
    fn take(&mut self) -> u32 {
        let id = if self.free != NONE {
            let id = self.free;
            self.free = self.links[id as usize];
            id
        } else {
            if self.links.len() == self.blocks.len() * BLOCK {
                let blank = Chunk {
                    entries: [Entry {
                        key: 0,
                        event: E::default(),
                    }; CHUNK],
                };
                self.blocks.push(vec![blank; BLOCK].into_boxed_slice());
            }
            self.links.push(NONE);
            (self.links.len() - 1) as u32
        };
        self.links[id as usize] = NONE;
        id
    }

    /// Puts chunk `id` on the free list; returns the chunk it was linked to.
    fn give_back(&mut self, id: u32) -> u32 {
        let next = std::mem::replace(&mut self.links[id as usize], self.free);
        self.free = id;
        next
    }
}

/// The first fine bucket number of coarse bucket `coarse`. Saturating, like every step of the
/// horizons: an event at the end of time (a saturated delay) must not wrap them round to zero.
fn fine_start(coarse: u64) -> u64 {
    coarse.saturating_mul(FINE as u64)
}

/// The shift of the largest power-of-two width not above `width` nanoseconds (at least 1 ns, at
/// most about 9 minutes, so bucket numbers stay far from overflowing).
fn shift_for(width: f64) -> u32 {
    let width = width.clamp(1.0, (1u64 << 39) as f64) as u64;
    63 - width.leading_zeros()
}
