//! The event queue's far tier: events not due soon, in buckets of simulated time.
//!
//! A large model has a million pending events, most of them think times seconds away. In one heap
//! every pop sifts through ten levels, the deeper ones out of the caches. Here an event is appended
//! to the bucket its time falls in (no ordering at all), and when the heap runs dry the next bucket
//! moves into it whole. The heap then only holds about one bucket's events and stays in the
//! caches, and each event is written a fixed number of times more whatever the number pending:
//! the cost per event stays flat.
//!
//! The order is exact. Every event in the heap is due before the horizon's bucket, every event here
//! in it or later, so the heap's top is the earliest of all, and ties still pop by sequence number
//! because entries keep their key. Only speed depends on the bucket width, never a result.
//!
//! Three rings, as in a ladder queue: 256 buckets of the width from the horizon on, then 256
//! each as wide as the whole first ring, then 1,024 each as wide as the whole second ring; an
//! event beyond waits in `overflow`. An event goes to the finest ring whose range reaches it, and
//! when a ring is used up the next bucket of the ring above is spread over it. So an event is
//! moved at most four times (overflow, top, middle, finest, heap), and every ring is small:
//!
//! - The writes go to few places, and the finest ring's events are read back soon. At 900 k
//!   sessions (the scale benchmark at k = 100, buckets of 16 µs) the finest ring spans 4 ms and
//!   holds a few hundred events, the middle one 1 s and about 10 k, the top one 18 minutes and
//!   the 600 k think times. With one fine ring of 4,096 buckets, a
//!   simulated second, think times and compute steps were appended across hundreds of bucket
//!   tails gone cold, and read back out of the caches: appends were a fifth of the run
//!   (`perf`). Three rings took about a tenth off the time at every k (docs/performance.md,
//!   "Scale").
//! - Partly filled last chunks waste little.
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
const BLOCK: usize = 256;
/// No chunk: the end of a chain, an empty free list.
const NONE: u32 = u32::MAX;
/// About this many events come due per bucket, so that the heap is mostly the small set (at
/// most sixteen, found by a scan with no branches; see queue.rs) rather than a heap that sifts
/// at every pop. Measured on the scale benchmark (instructions): 256 -> 32 took 14% / 5% off the
/// whole run at k = 1 / k = 10. From 32, with the width judged again only outside a quarter to
/// four times the target, buckets handed ~10 events at k = 1 but ~80 at k = 100, and sifting
/// through that heap was a sixth of the k = 100 run's instructions. 8, within half to twice,
/// hands about as many at every k: -1.1% instructions at k = 1, -6.4% at k = 100 (12 or 16:
/// -3.6% / -2.2% at k = 100; 6 or 4: -5.3% / -4.7% there but +0.7% / +1.3% at k = 1, more turns).
/// The k = 100 run's wall time did not move with it (12 paired runs, median 1.00): it waits on
/// memory, not instructions.
const TARGET: f64 = 8.0;
/// How far from `TARGET` the events per bucket may drift before the width is judged again.
const SLACK: f64 = 2.0;
/// Bucket turns the width is judged over.
const WINDOW: u32 = 64;
/// The rings, finest first: the log of each one's number of buckets. A bucket of one ring is as
/// wide as the whole ring below it. The finest ring's events fit in a second-level cache, and
/// the number of bucket tails being written to in each ring is small, so that most appends find
/// their bucket's last chunk in the caches (see the module's doc).
const RING_BITS: [u32; LEVELS] = [8, 8, 10];
pub(super) const LEVELS: usize = 3;
const TOP: usize = LEVELS - 1;
/// How far right of a finest-ring number each ring's numbers are.
const SPAN: [u32; LEVELS] = spans();

const fn spans() -> [u32; LEVELS] {
    let mut spans = [0; LEVELS];
    let mut level = 1;
    while level < LEVELS {
        spans[level] = spans[level - 1] + RING_BITS[level - 1];
        level += 1;
    }
    spans
}

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
    blocks: Vec<Box<[Chunk<E>; BLOCK]>>,
    /// The next chunk of each chunk's chain (or of the free list), by chunk number.
    links: Vec<u32>,
    /// The free chunks' list.
    free: u32,
}

/// One ring of buckets: bucket number `n` (an event's time in nanoseconds `>> shift`, then
/// `>> SPAN[level]`) is at `buckets[n % buckets.len()]`.
struct Ring {
    buckets: Vec<Bucket>,
    /// The first bucket number not yet moved on: into the heap from the finest ring, spread over
    /// the ring below from the others. Ring `level` holds numbers from here up to the start of
    /// ring `level + 1`'s horizon bucket (at most `1 << RING_BITS[level]` of them); the top ring
    /// up to `1 << RING_BITS[TOP]` numbers from here.
    horizon: u64,
    /// The events in the ring.
    len: usize,
}

pub(super) struct Calendar<E> {
    /// An event's bucket number in the finest ring is its time in nanoseconds `>> shift`.
    shift: u32,
    rings: [Ring; LEVELS],
    /// Events beyond the top ring, unordered, and the smallest top-ring number among them.
    overflow: Vec<Entry<E>>,
    overflow_min: u64,
    pool: Pool<E>,
    /// Since the width was last judged: bucket turns, finest-ring buckets passed, and the
    /// queue's sequence number then (events scheduled since, which in a steady state is about
    /// the events that came due, whether they went through a bucket or straight into the heap).
    window_turns: u32,
    window_buckets: u64,
    window_seq: u64,
    /// The queue's sequence number at the last turn.
    turn_seq: u64,
    /// The non-empty buckets being laid out again when the width changes (kept for next time).
    relaid: Vec<Bucket>,
}

/// Where `insert` puts an event: a bucket (its ring, and its index there), or the overflow
/// (with its top-ring number).
enum Home {
    Bucket(usize, usize),
    Overflow(u64),
}

impl<E: Copy + Default> Calendar<E> {
    pub(super) fn new() -> Self {
        Calendar {
            shift: OFF_SHIFT,
            rings: std::array::from_fn(|_| Ring {
                buckets: Vec::new(),
                horizon: OFF_HORIZON,
                len: 0,
            }),
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
        self.rings.iter().map(|ring| ring.len).sum::<usize>() + self.overflow.len()
    }

    #[cfg(test)]
    pub(super) fn is_on(&self) -> bool {
        self.rings[0].horizon != OFF_HORIZON
    }

    #[cfg(test)]
    pub(super) fn shift(&self) -> u32 {
        self.shift
    }

    /// The coarsest place that holds events: a ring's level, or `LEVELS` for the overflow.
    #[cfg(test)]
    pub(super) fn deepest(&self) -> Option<usize> {
        let in_rings = self.rings.iter().rposition(|ring| ring.len > 0);
        (!self.overflow.is_empty()).then_some(LEVELS).or(in_rings)
    }

    /// Whether an event at `time` belongs here: the calendar is on and the event is not due
    /// before the horizon. One shift and one comparison.
    #[inline(always)]
    pub(super) fn takes(&self, time: SimTime) -> bool {
        (time.nanos() >> self.shift) >= self.rings[0].horizon
    }

    /// Adds an event that `takes` accepted: to the finest ring that covers its time.
    ///
    /// The common case is inlined where events are scheduled and spread: the finest ring, in a
    /// chunk with room. At k = 100 on the scale benchmark a request makes 6.5 inserts (its two
    /// network hops are longer than a finest bucket, so they come here too, and think times and
    /// compute steps are spread ring to ring) against 2.9 at k = 1; the call's entry and exit
    /// were a quarter of an insert's instructions. Inlined: 3.6% fewer instructions at k = 100,
    /// none more on the M/M/c benchmark, which never turns the calendar on.
    #[inline(always)]
    pub(super) fn insert(&mut self, entry: Entry<E>) {
        let number = entry.time().nanos() >> self.shift;
        if number >> SPAN[1] < self.rings[1].horizon {
            let ring = &mut self.rings[0];
            let bucket = &mut ring.buckets[bucket_index(number, 0)];
            let fill = bucket.len as usize % CHUNK;
            if fill != 0 {
                ring.len += 1;
                self.pool.chunk_mut(bucket.tail).entries[fill] = entry;
                bucket.len += 1;
                return;
            }
        }
        self.insert_anywhere(entry);
    }

    /// Any other insert: a bucket's first entry or a new chunk, a coarser ring, the overflow.
    #[inline(never)]
    fn insert_anywhere(&mut self, entry: Entry<E>) {
        match self.home(entry.time()) {
            Home::Bucket(level, index) => {
                let ring = &mut self.rings[level];
                ring.len += 1;
                Self::append(&mut ring.buckets[index], entry, &mut self.pool);
            }
            Home::Overflow(number) => {
                self.overflow_min = self.overflow_min.min(number);
                self.overflow.push(entry);
            }
        }
    }

    /// Where an event at `time` (not before the horizon) goes: the first ring whose range
    /// reaches it. One shift and one comparison a ring.
    #[inline(always)]
    fn home(&self, time: SimTime) -> Home {
        let number = time.nanos() >> self.shift;
        for level in 0..TOP {
            if number >> SPAN[level + 1] < self.rings[level + 1].horizon {
                return Home::Bucket(level, bucket_index(number >> SPAN[level], level));
            }
        }
        let top = number >> SPAN[TOP];
        if top - self.rings[TOP].horizon < 1 << RING_BITS[TOP] {
            Home::Bucket(TOP, bucket_index(top, TOP))
        } else {
            Home::Overflow(top)
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
        for (ring, bits) in self.rings.iter_mut().zip(RING_BITS) {
            ring.buckets.resize(1 << bits, EMPTY);
        }
        self.lay_out(shift_for(TARGET / rate), now.saturating_add(1), seq);
        let horizon = self.rings[0].horizon;
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
        for ring in &mut self.rings {
            ring.horizon = OFF_HORIZON;
        }
    }

    /// Moves the next bucket with events into the (empty) heap. `seq` is the queue's next
    /// sequence number.
    pub(super) fn move_next_bucket(&mut self, heap: &mut Heap<E>, seq: u64) {
        debug_assert!(self.len() > 0 && heap.len == 0);
        loop {
            if self.rings[0].len == 0 {
                // Nothing in the finest ring: straight to the next bucket with events.
                self.skip_to_events();
            }
            if self.rings[0].horizon == self.start_of_horizon_bucket(1) {
                self.spread(1);
            }
            let ring = &mut self.rings[0];
            let bucket = std::mem::replace(&mut ring.buckets[bucket_index(ring.horizon, 0)], EMPTY);
            ring.horizon = ring.horizon.saturating_add(1);
            self.window_buckets += 1;
            if bucket.len > 0 {
                ring.len -= bucket.len as usize;
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

    /// The earliest key here (for `peek_time`, not the hot path): in the first bucket with
    /// events of the finest ring that has any, as every ring's range ends where the next one's
    /// begins.
    pub(super) fn min_key(&self) -> Option<u128> {
        let soonest = |ring: &Ring| {
            // Wrapping: a horizon at the end of time (1 ns buckets, a saturated delay) is
            // `u64::MAX`, and the size is a power of two, so the index is the same.
            let size = ring.buckets.len() as u64;
            (0..size)
                .map(|offset| ring.buckets[(ring.horizon.wrapping_add(offset) % size) as usize])
                .find(|bucket| bucket.len > 0)
                .map(|bucket| {
                    let mut min = u128::MAX;
                    self.for_each_in_chain(bucket, |entry| min = min.min(entry.key));
                    min
                })
        };
        let in_rings = self
            .rings
            .iter()
            .filter(|ring| ring.len > 0)
            .find_map(soonest);
        in_rings.or_else(|| self.overflow.iter().map(|entry| entry.key).min())
    }

    /// Hands `visit` the events of the finest ring's horizon bucket: the next to move into the
    /// heap, when the heap's are done (none if the ring is used up and it is still to be spread).
    pub(super) fn for_each_next(&self, visit: impl FnMut(&Entry<E>)) {
        let ring = &self.rings[0];
        if ring.horizon != OFF_HORIZON {
            self.for_each_in_chain(ring.buckets[bucket_index(ring.horizon, 0)], visit);
        }
    }

    /// The first number, in ring `level - 1`'s terms, of ring `level`'s horizon bucket: where
    /// ring `level - 1`'s range ends. Saturating, like every step of the horizons: an event at
    /// the end of time (a saturated delay) must not wrap them round to zero.
    #[inline(always)]
    fn start_of_horizon_bucket(&self, level: usize) -> u64 {
        self.rings[level]
            .horizon
            .saturating_mul(1 << RING_BITS[level - 1])
    }

    /// The finest ring is empty: the horizons move to the first bucket with events of the next
    /// ring that has any (the overflow's events pulled into the top ring when none has).
    fn skip_to_events(&mut self) {
        let level = match (1..LEVELS).find(|&level| self.rings[level].len > 0) {
            Some(level) => level,
            None => {
                let top = &mut self.rings[TOP];
                top.horizon = top.horizon.max(self.overflow_min);
                self.settle_overflow();
                TOP
            }
        };
        let ring = &mut self.rings[level];
        while ring.buckets[bucket_index(ring.horizon, level)].len == 0 {
            ring.horizon = ring.horizon.saturating_add(1);
        }
        for lower in (0..level).rev() {
            let start = self.start_of_horizon_bucket(lower + 1);
            let ring = &mut self.rings[lower];
            ring.horizon = ring.horizon.max(start);
        }
    }

    /// Ring `level - 1` is used up: the next bucket of ring `level` is spread over it (after
    /// the next of ring `level + 1` over ring `level`, when that is used up too), and the
    /// overflow's events that the top ring now covers move into it.
    fn spread(&mut self, level: usize) {
        if level < TOP && self.rings[level].horizon == self.start_of_horizon_bucket(level + 1) {
            self.spread(level + 1);
        }
        let ring = &mut self.rings[level];
        let bucket = std::mem::replace(&mut ring.buckets[bucket_index(ring.horizon, level)], EMPTY);
        ring.horizon = ring.horizon.saturating_add(1);
        ring.len -= bucket.len as usize;
        self.unchain(bucket, &mut |calendar, entry| calendar.insert(entry));
        if level == TOP && self.overflow_min < self.top_end() {
            self.settle_overflow();
        }
    }

    /// The first top-ring number beyond the top ring's range.
    fn top_end(&self) -> u64 {
        self.rings[TOP].horizon.saturating_add(1 << RING_BITS[TOP])
    }

    /// Moves the overflow's events that the top ring now covers into the rings.
    fn settle_overflow(&mut self) {
        let mut overflow = std::mem::take(&mut self.overflow);
        let end = self.top_end();
        self.overflow_min = u64::MAX;
        overflow.retain(|entry| {
            let number = (entry.time().nanos() >> self.shift) >> SPAN[TOP];
            if number < end {
                self.insert(*entry);
                false
            } else {
                self.overflow_min = self.overflow_min.min(number);
                true
            }
        });
        // Anything `insert` put back is beyond the rings too.
        overflow.append(&mut self.overflow);
        self.overflow = overflow;
    }

    /// Appends to `bucket`.
    #[inline]
    fn append(bucket: &mut Bucket, entry: Entry<E>, pool: &mut Pool<E>) {
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
            heap.push_all(&self.pool.chunk(id).entries[..count]);
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
            if left > CHUNK {
                self.pool.prefetch(next);
            }
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
        if (TARGET / SLACK..=TARGET * SLACK).contains(&per_bucket) {
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
        let boundary =
            (u128::from(self.rings[0].horizon) << self.shift).min(u128::from(u64::MAX)) as u64;
        self.collect_buckets();
        self.lay_out(shift, boundary, seq);
        let horizon = self.rings[0].horizon;
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

    /// Empties every ring into `relaid` (the non-empty buckets' chains, still allocated).
    fn collect_buckets(&mut self) {
        for ring in &mut self.rings {
            for bucket in ring.buckets.iter_mut().filter(|bucket| bucket.len > 0) {
                self.relaid.push(std::mem::replace(bucket, EMPTY));
            }
            ring.len = 0;
        }
    }

    /// Sets the width, and the horizons so that the first bucket of the finest ring is the one
    /// `from` falls in, or the next when `from` is not at its start, and each ring reaches to
    /// the end of the bucket of the ring above that holds its horizon. The rings must be empty.
    fn lay_out(&mut self, shift: u32, from: u64, seq: u64) {
        self.shift = shift;
        let mut horizon = (from >> shift) + u64::from(from & ((1 << shift) - 1) != 0);
        for (ring, bits) in self.rings.iter_mut().zip(RING_BITS) {
            ring.horizon = horizon;
            horizon = (horizon >> bits) + 1;
        }
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
                // `BLOCK` chunks, so the conversion to an array cannot fail.
                let block = vec![blank; BLOCK].into_boxed_slice();
                self.blocks
                    .push(block.try_into().unwrap_or_else(|_| unreachable!()));
            }
            self.links.push(NONE);
            (self.links.len() - 1) as u32
        };
        self.links[id as usize] = NONE;
        id
    }

    /// Starts loading chunk `id` (its eight lines). A spread reads a chain written long ago (a
    /// top-ring bucket: think times written up to a minute before), one chunk at a time, each
    /// somewhere else in memory; loading the next while the events of this one are inserted
    /// took the k = 100 run to 0.962× and 0.963× the time (two sets of 32 pairs, the order
    /// swapped). An earlier try, with 8 pairs and prefetching the moves into the heap too, had
    /// looked like noise.
    fn prefetch(&self, id: u32) {
        let chunk: *const Chunk<E> = self.chunk(id);
        super::slab::prefetch_lines(chunk.cast(), std::mem::size_of::<Chunk<E>>());
    }

    /// Puts chunk `id` on the free list; returns the chunk it was linked to.
    fn give_back(&mut self, id: u32) -> u32 {
        let next = std::mem::replace(&mut self.links[id as usize], self.free);
        self.free = id;
        next
    }
}

/// Where bucket number `number` of ring `level` is in it.
#[inline(always)]
fn bucket_index(number: u64, level: usize) -> usize {
    number as usize & ((1 << RING_BITS[level]) - 1)
}

/// The shift of the largest power-of-two width not above `width` nanoseconds (at least 1 ns, at
/// most about 9 minutes, so bucket numbers stay far from overflowing).
fn shift_for(width: f64) -> u32 {
    let width = width.clamp(1.0, (1u64 << 39) as f64) as u64;
    63 - width.leading_zeros()
}
