//! The pending-event set, popped in `(time, sequence)` order.
//!
//! The sequence number is the insertion counter, so two events at the same instant pop in the order
//! they were scheduled. That makes every run reproducible without relying on the heap's tie-breaking.
//!
//! Up to sixteen pending events are kept unordered, with the index of the earliest: an insertion
//! keeps it with one select, and taking the earliest out finds the next by comparing them all
//! with selects (only the first eight slots while there are no more), never with a branch that
//! depends on the data. Beyond sixteen they form a heap: 4-ary and implicit (one `Vec`), its tree
//! half as deep as a binary heap's, the four children of a node in one or two cache lines. Time
//! and sequence are packed into one `u128` key, so ordering two entries is a single comparison.
//! Sifting moves a hole instead of swapping. Keys are unique, so the pop order, and so every
//! result, is the same as with std's `BinaryHeap`.
//!
//! A large model (thousands of sessions thinking) would make that heap deep and cold: past
//! `CALENDAR_FROM` pending events, the ones not due in the current time bucket wait in a calendar
//! of buckets (`calendar.rs`) and move into the heap a bucket at a time, in the same order.

use super::SimTime;
use super::calendar::Calendar;

#[derive(Clone, Copy)]
pub(super) struct Entry<E> {
    /// `time << 64 | seq`: comparing keys compares times first, then insertion order.
    pub(super) key: u128,
    pub(super) event: E,
}

impl<E: Copy> Entry<E> {
    #[inline(always)]
    pub(super) fn time(&self) -> SimTime {
        SimTime((self.key >> 64) as u64)
    }
}

const ARITY: usize = 4;
/// Up to this many pending events (besides the lane) are kept unordered and found by a scan: of
/// the first eight slots while there are at most eight, of all sixteen above.
const SMALL: usize = 16;
/// The key of the unused slots below `SMALL`: no event has it (sequence numbers never reach
/// `u64::MAX`), so a scan never picks one.
const PADDING_KEY: u128 = u128::MAX;
/// With this many events in the heap, the calendar takes the ones not due soon. Below it a heap
/// fits in the caches and a calendar would only add work; above it each pop of a heap sifts
/// through levels that do not.
const CALENDAR_FROM: usize = 4096;

/// A deterministic future-event list.
pub struct EventQueue<E> {
    /// The events due soonest (all of them while the calendar is off).
    near: Heap<E>,
    /// The pending event of the one stream that schedules its own successor each time it fires
    /// (session arrivals). Kept beside the heap, it costs one comparison per pop instead of a
    /// push and a pop on the heap; it still carries its sequence number, so the order of events
    /// is exactly what it would be if it were in the heap.
    lane: Option<Entry<E>>,
    /// Events not due soon, in time buckets, once the heap has outgrown `CALENDAR_FROM`: every
    /// one of them is later than every event in `near`, and a bucket moves into the heap whole
    /// before any of its events is due, so the order stays exactly (time, seq).
    far: Calendar<E>,
    /// `CALENDAR_FROM` while the calendar is off, `usize::MAX` while it is on: the one
    /// comparison on the push path that decides to turn it on.
    calendar_at: usize,
    /// Whether a pop has moved events out of the calendar (see [`EventQueue::refilled`]).
    refilled: bool,
    next_seq: u64,
}

/// The pending events in `slots[..len]`. While there are at most `SMALL`, they are unordered and
/// `slots[len..SMALL]` holds padding; above that, `slots[..len]` is a 4-ary heap.
///
/// A small model (a few servers, no think times) has a handful of pending events, and which of
/// them comes next is a coin toss for a heap's comparisons, each a likely branch misprediction.
/// A scan compares them all with selects instead of branches, and an insertion compares nothing.
pub(super) struct Heap<E> {
    slots: Vec<Entry<E>>,
    pub(super) len: usize,
    /// Where the earliest pending event is: found by the scan when one is taken, and kept by a
    /// select on each insertion, so a pop that takes the lane's event instead scans nothing
    /// (half the pops of the M/M/c benchmark). Padding while there are none; 0 in a heap.
    top: usize,
}

impl<E: Copy + Default> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// Events are small `Copy` values (handles into the world's slabs), so entries move by copy.
impl<E: Copy + Default> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            near: Heap::new(),
            lane: None,
            far: Calendar::new(),
            calendar_at: CALENDAR_FROM,
            refilled: false,
            next_seq: 0,
        }
    }

    #[inline(always)]
    fn entry(&mut self, time: SimTime, event: E) -> Entry<E> {
        let key = (u128::from(time.nanos()) << 64) | u128::from(self.next_seq);
        self.next_seq += 1;
        Entry { key, event }
    }

    /// Inlined, like everything on the push path: 3% of a whole M/M/c run. As a call, the entry
    /// went through the stack, and `perf annotate` put a third of the push's samples on reading
    /// it back.
    #[inline(always)]
    pub fn push(&mut self, time: SimTime, event: E) {
        let entry = self.entry(time, event);
        self.schedule(entry);
    }

    /// Schedules the next event of the self-renewing stream (see `lane`). Meant to be called
    /// when that stream's previous event has fired; if one is still pending it moves to the heap,
    /// so the result is correct either way.
    pub fn push_next_in_lane(&mut self, time: SimTime, event: E) {
        let entry = self.entry(time, event);
        if let Some(pending) = self.lane.replace(entry) {
            self.schedule(pending);
        }
    }

    /// Into the calendar when it is on and the event is not due before its horizon (one
    /// comparison: while it is off, no time passes it), into the heap otherwise.
    #[inline(always)]
    fn schedule(&mut self, entry: Entry<E>) {
        if self.far.takes(entry.time()) {
            self.far.insert(entry);
        } else if self.near.len < SMALL {
            self.near.push_small(entry);
        } else if self.near.len < self.calendar_at {
            self.near.push_heap(entry);
        } else {
            self.start_calendar(entry);
        }
    }

    /// The heap has outgrown the caches: the calendar takes every event not due in the first
    /// bucket.
    #[cold]
    #[inline(never)]
    fn start_calendar(&mut self, entry: Entry<E>) {
        self.near.push_heap(entry);
        self.far.start(&mut self.near, self.next_seq);
        self.calendar_at = usize::MAX;
    }

    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.near.len == 0 && self.far.len() > 0 {
            self.refill();
        }
        let near = &mut self.near;
        let top = near.top;
        if self
            .lane
            .as_ref()
            .is_some_and(|lane| lane.key < near.slots[top].key)
        {
            return self.lane.take().map(|entry| (entry.time(), entry.event));
        }
        if near.len == 0 {
            return None;
        }
        let first = near.take(top);
        Some((first.time(), first.event))
    }

    /// Whether a pop has moved the calendar's next bucket into the heap since
    /// [`EventQueue::clear_refilled`] was last called.
    #[inline(always)]
    pub fn refilled(&self) -> bool {
        self.refilled
    }

    /// Clears [`EventQueue::refilled`], once what the refill asked for is done.
    pub fn clear_refilled(&mut self) {
        self.refilled = false;
    }

    /// Hands `visit` the events the next refill will move into the heap: the calendar's next
    /// bucket, as it stands (events scheduled later may still join it). Asked right after a
    /// refill, they fire after the heap's, about 8 events from now. A large model's events touch
    /// records anywhere in memory (a session among a million): that is time enough to load what
    /// they will need (see `World::warm_next_bucket`).
    pub fn for_each_in_next_bucket(&self, mut visit: impl FnMut(&E)) {
        self.far.for_each_next(|entry| visit(&entry.event));
    }

    /// The heap ran dry: the calendar's next bucket moves into it, or, when few events are
    /// left, all of them and the calendar goes off until the heap outgrows the caches again.
    #[cold]
    #[inline(never)]
    fn refill(&mut self) {
        if self.far.len() < CALENDAR_FROM / 4 {
            self.far.stop(&mut self.near);
            self.calendar_at = CALENDAR_FROM;
        } else {
            self.far.move_next_bucket(&mut self.near, self.next_seq);
        }
        self.refilled = true;
    }

    pub fn peek_time(&self) -> Option<SimTime> {
        let near = (self.near.len > 0).then(|| self.near.slots[self.near.top].key);
        // The calendar holds only events later than the heap's.
        let soonest = near.or_else(|| self.far.min_key());
        let lane = self.lane.as_ref().map(|entry| entry.key);
        let key = match (soonest, lane) {
            (Some(soonest), Some(lane)) => Some(soonest.min(lane)),
            (soonest, lane) => soonest.or(lane),
        };
        key.map(|key| SimTime((key >> 64) as u64))
    }

    pub fn len(&self) -> usize {
        self.near.len + usize::from(self.lane.is_some()) + self.far.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<E: Copy + Default> Heap<E> {
    fn new() -> Self {
        let padding = Entry {
            key: PADDING_KEY,
            event: E::default(),
        };
        let mut slots = Vec::with_capacity(1024);
        slots.resize(SMALL, padding);
        Heap {
            slots,
            len: 0,
            top: 0,
        }
    }

    /// Adds an event, as an unordered slot or into the heap.
    #[inline(always)]
    pub(super) fn push(&mut self, entry: Entry<E>) {
        if self.len < SMALL {
            self.push_small(entry);
        } else {
            self.push_heap(entry);
        }
    }

    /// Adds a run of events (a calendar bucket's), leaving the set exactly as [`Heap::push`] of
    /// each in turn would: the share that fits the unordered small set in one copy and one scan
    /// for the earliest, instead of a select and two stores per event (a third of a refill's
    /// instructions at k = 100 of the scale benchmark).
    pub(super) fn push_all(&mut self, entries: &[Entry<E>]) {
        let room = SMALL.saturating_sub(self.len).min(entries.len());
        let (small, rest) = entries.split_at(room);
        if !small.is_empty() {
            self.slots[self.len..self.len + room].copy_from_slice(small);
            self.len += room;
            self.top = self.scan();
        }
        for entry in rest {
            self.push(*entry);
        }
    }

    #[inline(always)]
    fn push_small(&mut self, entry: Entry<E>) {
        let earliest = self.slots[self.top].key;
        self.slots[self.len] = entry;
        self.top = if entry.key < earliest {
            self.len
        } else {
            self.top
        };
        self.len += 1;
    }

    #[inline(always)]
    fn push_heap(&mut self, entry: Entry<E>) {
        if self.len == SMALL {
            self.heapify();
        }
        if self.slots.len() == self.len {
            self.slots.push(entry);
        } else {
            self.slots[self.len] = entry;
        }
        self.len += 1;
        self.sift_up(self.len - 1);
        self.top = 0;
    }

    /// Orders the slots as a heap when there are more than `SMALL`, pads the unused small slots
    /// otherwise: after the entries were changed wholesale.
    pub(super) fn rebuild(&mut self) {
        if self.len > SMALL {
            self.heapify();
        } else {
            for slot in &mut self.slots[self.len..SMALL] {
                slot.key = PADDING_KEY;
            }
        }
        self.top = self.scan();
    }

    /// Removes the entries `keep` refuses, handing each to `moved`, and restores the order.
    pub(super) fn split_off(
        &mut self,
        mut keep: impl FnMut(&Entry<E>) -> bool,
        mut moved: impl FnMut(Entry<E>),
    ) {
        let mut kept = 0;
        for index in 0..self.len {
            let entry = self.slots[index];
            if keep(&entry) {
                self.slots[kept] = entry;
                kept += 1;
            } else {
                moved(entry);
            }
        }
        self.len = kept;
        self.rebuild();
    }

    /// The earliest time among the pending events (the heap's top once it is one).
    pub(super) fn earliest(&self) -> Option<SimTime> {
        (self.len > 0).then(|| self.slots[self.top].time())
    }

    /// Orders the unordered small set as a heap, before it grows past `SMALL`.
    #[cold]
    fn heapify(&mut self) {
        for index in (0..self.len.div_ceil(ARITY)).rev() {
            self.sift_down(index);
        }
    }

    /// Finds where the earliest pending event is: by a scan of the small set, the root of a heap.
    #[inline(always)]
    fn scan(&self) -> usize {
        let Some(slots) = self.slots.first_chunk::<SMALL>() else {
            unreachable!("the small set's slots are allocated at creation");
        };
        if self.len <= SMALL / 2 {
            smallest_of_eight(slots)
        } else if self.len <= SMALL {
            smallest_of_sixteen(slots)
        } else {
            0
        }
    }

    /// Removes the earliest entry, at `top`, and returns it.
    #[inline(always)]
    fn take(&mut self, top: usize) -> Entry<E> {
        let small = self.len <= SMALL;
        let first = self.slots[top];
        self.len -= 1;
        let last = self.slots[self.len];
        if small {
            // Any order will do: the last entry fills the hole, and padding fills its old slot.
            self.slots[top] = last;
            self.slots[self.len].key = PADDING_KEY;
            self.top = self.scan();
        } else {
            // The slot given up is past the small set's, so it needs no padding; the earliest
            // stays at the root even when the heap shrinks to the small set's size.
            self.slots[0] = last;
            self.sift_down(0);
        }
        first
    }

    /// Moves the entry at `index` up to its place. Parents move down into the hole, and the entry
    /// is written once, at the end (cheaper than swapping at every level).
    #[inline(always)]
    fn sift_up(&mut self, mut index: usize) {
        let entry = self.slots[index];
        while index > 0 {
            let parent = (index - 1) / ARITY;
            if entry.key >= self.slots[parent].key {
                break;
            }
            self.slots[index] = self.slots[parent];
            index = parent;
        }
        self.slots[index] = entry;
    }

    /// Moves the entry at `index` down to its place, promoting the smallest child into the hole.
    /// A full family's smallest is found by a tournament of selects on the keys alone (which
    /// child wins a level is a coin toss, so a branch per child would often be mispredicted,
    /// and carrying the whole entry through each comparison cost a third of the pop); only the
    /// winner is copied.
    fn sift_down(&mut self, mut index: usize) {
        let heap = &mut self.slots[..self.len];
        let entry = heap[index];
        loop {
            let first_child = ARITY * index + 1;
            let smallest = if let Some(family) = heap.get(first_child..first_child + ARITY) {
                let at = |i: usize| (first_child + i, family[i].key);
                pick(pick(at(0), at(1)), pick(at(2), at(3)))
            } else if let Some(family) = heap.get(first_child..) {
                // The last, partly filled family (or none).
                match family
                    .iter()
                    .enumerate()
                    .map(|(i, child)| (first_child + i, child.key))
                    .reduce(pick)
                {
                    Some(smallest) => smallest,
                    None => break,
                }
            } else {
                break;
            };
            if smallest.1 >= entry.key {
                break;
            }
            heap[index] = heap[smallest.0];
            index = smallest.0;
        }
        heap[index] = entry;
    }

    /// Every entry, in no order.
    pub(super) fn entries(&self) -> &[Entry<E>] {
        &self.slots[..self.len]
    }
}

/// The position of the smaller of two (position, key) pairs: a select, not a branch.
#[inline(always)]
fn pick(a: (usize, u128), b: (usize, u128)) -> (usize, u128) {
    if b.1 < a.1 { b } else { a }
}

/// The smallest key among the four slots from `first`, by a tournament of selects: no branch
/// depends on which one it is.
#[inline(always)]
fn smallest_of_four<E>(slots: &[Entry<E>; SMALL], first: usize) -> (usize, u128) {
    let at = |i: usize| (i, slots[i].key);
    pick(
        pick(at(first), at(first + 1)),
        pick(at(first + 2), at(first + 3)),
    )
}

/// The position of the smallest key among the first eight slots.
#[inline(always)]
fn smallest_of_eight<E>(slots: &[Entry<E>; SMALL]) -> usize {
    pick(smallest_of_four(slots, 0), smallest_of_four(slots, 4)).0
}

/// The position of the smallest key among all sixteen slots.
#[inline(always)]
fn smallest_of_sixteen<E>(slots: &[Entry<E>; SMALL]) -> usize {
    let low = pick(smallest_of_four(slots, 0), smallest_of_four(slots, 4));
    let high = pick(smallest_of_four(slots, 8), smallest_of_four(slots, 12));
    pick(low, high).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn drain<E: Copy + Default>(queue: &mut EventQueue<E>) -> Vec<(SimTime, E)> {
        std::iter::from_fn(|| queue.pop()).collect()
    }

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut queue = EventQueue::new();
        queue.push(SimTime(5), 'a');
        queue.push(SimTime(1), 'b');
        queue.push(SimTime(5), 'c');
        queue.push(SimTime(1), 'd');
        let order: Vec<char> = drain(&mut queue).into_iter().map(|(_, e)| e).collect();
        assert_eq!(order, vec!['b', 'd', 'a', 'c']);
    }

    /// A run added at once leaves the set exactly as adding its events one by one does (the
    /// calendar's refills rely on it): from every starting size around the small set's widths,
    /// for runs up to past the small set.
    #[test]
    fn push_all_is_push_one_by_one() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut seq = 0u64;
        let mut entry = |rng: &mut Xoshiro256PlusPlus| {
            seq += 1;
            let time = u128::from(rng.random_range(0..50u64));
            Entry {
                key: (time << 64) | u128::from(seq),
                event: seq as u32,
            }
        };
        for before in 0..=SMALL + 2 {
            for run in 0..=SMALL + 3 {
                let mut one_by_one = Heap::new();
                let mut at_once = Heap::new();
                for _ in 0..before {
                    let e = entry(&mut rng);
                    one_by_one.push(e);
                    at_once.push(e);
                }
                let added: Vec<Entry<u32>> = (0..run).map(|_| entry(&mut rng)).collect();
                for e in &added {
                    one_by_one.push(*e);
                }
                at_once.push_all(&added);
                let keys = |heap: &Heap<u32>| -> Vec<(u128, u32)> {
                    heap.slots[..heap.len.max(SMALL)]
                        .iter()
                        .map(|e| (e.key, e.event))
                        .collect()
                };
                assert_eq!(keys(&at_once), keys(&one_by_one), "{before} + {run}");
                assert_eq!(
                    (at_once.len, at_once.top),
                    (one_by_one.len, one_by_one.top),
                    "{before} + {run}"
                );
            }
        }
    }

    #[test]
    fn the_lane_keeps_time_and_insertion_order() {
        let mut queue = EventQueue::new();
        queue.push(SimTime(5), 'a');
        queue.push_next_in_lane(SimTime(5), 'b');
        queue.push(SimTime(5), 'c');
        queue.push_next_in_lane(SimTime(1), 'd'); // 'b' is still pending: it moves to the heap
        assert_eq!(queue.len(), 4);
        assert_eq!(queue.peek_time(), Some(SimTime(1)));
        let order: Vec<char> = drain(&mut queue).into_iter().map(|(_, e)| e).collect();
        assert_eq!(order, vec!['d', 'a', 'b', 'c']);
        assert!(queue.is_empty());
    }

    /// Against a sorted reference, with pushes (to the heap and to the lane) and pops interleaved
    /// as in a simulation (each pop schedules events no earlier than itself). Pushes are more
    /// likely while fewer than `pending(step)` events wait, so the queue grows to that size and
    /// keeps crossing it both ways. `delay(rng, step)` draws how far ahead an event is.
    fn check_against_a_stable_sort(
        steps: usize,
        seed: u64,
        pending: impl Fn(usize) -> usize,
        delay: impl Fn(&mut Xoshiro256PlusPlus, usize) -> u64,
    ) -> CalendarUse {
        let mut used = CalendarUse::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut queue = EventQueue::new();
        let mut reference = std::collections::BTreeSet::new(); // (time, seq)
        let mut seq = 0;
        let mut now = 0u64;
        let mut lane = None;
        // What the last refill showed of the next bucket.
        let mut shown = std::collections::BTreeSet::new();
        for step in 0..steps {
            let push_chance = if reference.len() < pending(step) {
                0.55
            } else {
                0.45
            };
            if rng.random_bool(push_chance) || reference.is_empty() {
                let time = now.saturating_add(delay(&mut rng, step));
                if rng.random_bool(0.3) {
                    queue.push_next_in_lane(SimTime(time), seq);
                    lane = Some(seq);
                } else {
                    queue.push(SimTime(time), seq);
                }
                reference.insert((time, seq));
                seq += 1;
            } else {
                let (time, event) = queue.pop().expect("not empty");
                let expected = reference.pop_first().expect("not empty");
                assert_eq!((time.nanos(), event), expected, "at step {step}");
                now = time.nanos();
                lane = lane.filter(|&pending| pending != event);
                if queue.refilled() {
                    used.refills += 1;
                    check_moved(&queue, &reference, lane, event, &shown);
                    queue.clear_refilled();
                    assert!(!queue.refilled());
                    shown.clear();
                    queue.for_each_in_next_bucket(|&event| {
                        shown.insert(event);
                    });
                    used.shown += shown.len();
                }
            }
            assert_eq!(queue.len(), reference.len());
            used.observe(&queue.far);
            if step % 97 == 0 {
                assert_eq!(
                    queue.peek_time().map(SimTime::nanos),
                    reference.first().map(|e| e.0)
                );
            }
        }
        used
    }

    /// Right after a refill: the heap holds exactly the events pending before the calendar's
    /// earliest but the lane's (and `popped` has just left it), and every event the refill
    /// before showed as the next bucket's is among them.
    fn check_moved(
        queue: &EventQueue<usize>,
        reference: &std::collections::BTreeSet<(u64, usize)>,
        lane: Option<usize>,
        popped: usize,
        shown: &std::collections::BTreeSet<usize>,
    ) {
        let calendar_from = queue
            .far
            .min_key()
            .map_or(u64::MAX, |key| (key >> 64) as u64);
        let moved: std::collections::BTreeSet<usize> = queue.near.slots[..queue.near.len]
            .iter()
            .map(|entry| entry.event)
            .collect();
        let expected: std::collections::BTreeSet<usize> = reference
            .iter()
            .filter(|&&(time, event)| time < calendar_from && lane != Some(event))
            .map(|&(_, event)| event)
            .collect();
        assert_eq!(moved, expected);
        assert!(
            shown
                .iter()
                .all(|event| moved.contains(event) || *event == popped),
            "shown {shown:?}, moved {moved:?} and {popped}"
        );
    }

    /// What a run made of the calendar, so that a test can tell it was exercised.
    #[derive(Default)]
    struct CalendarUse {
        refills: usize,
        /// Events shown as the next bucket's, over all refills.
        shown: usize,
        most_held: usize,
        widths: std::collections::BTreeSet<u32>,
        stops: usize,
        was_on: bool,
        /// The coarsest ring (or `LEVELS`, the overflow) that held events.
        deepest: usize,
    }

    impl CalendarUse {
        fn observe(&mut self, far: &Calendar<usize>) {
            let on = far.is_on();
            self.stops += usize::from(self.was_on && !on);
            self.was_on = on;
            self.most_held = self.most_held.max(far.len());
            self.deepest = self.deepest.max(far.deepest().unwrap_or(0));
            if on {
                self.widths.insert(far.shift());
            }
        }
    }

    fn up_to(bound: u64) -> impl Fn(&mut Xoshiro256PlusPlus, usize) -> u64 {
        move |rng, _| rng.random_range(0..bound)
    }

    #[test]
    fn matches_a_stable_sort_under_interleaved_pushes_and_pops() {
        check_against_a_stable_sort(20_000, 9, |_| 2_000, up_to(20));
    }

    /// Around eight pending events the scan changes width; around sixteen, small set and heap
    /// take turns.
    #[test]
    fn matches_a_stable_sort_when_crossing_between_scan_widths_and_the_heap() {
        for seed in 0..20 {
            check_against_a_stable_sort(20_000, seed, |_| SMALL / 2 + 2, up_to(20));
            check_against_a_stable_sort(20_000, seed, |_| SMALL + 2, up_to(20));
        }
    }

    /// Enough pending events for the calendar: spread out, with ties, and around the size at
    /// which it starts (and, below a quarter of it, stops).
    #[test]
    fn matches_a_stable_sort_with_the_calendar() {
        for seed in 0..4 {
            let spread = check_against_a_stable_sort(200_000, seed, |_| 20_000, up_to(1_000_000));
            assert!(spread.most_held > 15_000);
            assert!(spread.refills > 100, "refilled {} times", spread.refills);
            assert!(spread.shown > 100, "showed {} events", spread.shown);
            let ties = check_against_a_stable_sort(100_000, seed, |_| 20_000, up_to(50));
            assert!(ties.most_held > 5_000, "held {}", ties.most_held);
            check_against_a_stable_sort(100_000, seed, |_| CALENDAR_FROM + 50, up_to(10_000));
        }
        // Grows, drains below where the calendar stops, grows again.
        let waves = |step: usize| {
            if (step / 150_000).is_multiple_of(2) {
                12_000
            } else {
                0
            }
        };
        let used = check_against_a_stable_sort(600_000, 7, waves, up_to(100_000));
        assert!(used.stops >= 2, "stopped {} times", used.stops);
    }

    /// The width adapts when delays change scale by a thousand either way; some events wait far
    /// beyond the ring (and at the end of time), and some are due at once.
    #[test]
    fn matches_a_stable_sort_when_delays_change_scale_or_reach_far() {
        let shifting = |rng: &mut Xoshiro256PlusPlus, step: usize| {
            let scale = [1_000_000, 1_000, 1_000_000_000][(step / 60_000) % 3];
            match rng.random_range(0..100) {
                0 => u64::MAX,
                1 => rng.random_range(0..scale * 1_000),
                2 => 0,
                _ => rng.random_range(0..scale),
            }
        };
        for seed in 0..3 {
            let used = check_against_a_stable_sort(240_000, seed, |_| 10_000, shifting);
            assert!(used.widths.len() >= 3, "widths {:?}", used.widths);
            assert_eq!(
                used.deepest,
                super::super::calendar::LEVELS,
                "the overflow held none"
            );
        }
    }
}
