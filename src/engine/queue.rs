//! The pending-event set, popped in `(time, sequence)` order.
//!
//! The sequence number is the insertion counter, so two events at the same instant pop in the order
//! they were scheduled. That makes every run reproducible without relying on the heap's tie-breaking.
//!
//! Up to sixteen pending events are kept unordered, and a pop finds the earliest by comparing them
//! all with selects (only the first eight slots while there are no more), never with a branch that
//! depends on the data. Beyond sixteen they form a heap: 4-ary and implicit (one `Vec`), its tree
//! half as deep as a binary heap's, the four children of a node in one or two cache lines. Time
//! and sequence are packed into one `u128` key, so ordering two entries is a single comparison.
//! Sifting moves a hole instead of swapping. Keys are unique, so the pop order, and so every
//! result, is the same as with std's `BinaryHeap`.

use super::SimTime;

#[derive(Clone, Copy)]
struct Entry<E> {
    /// `time << 64 | seq`: comparing keys compares times first, then insertion order.
    key: u128,
    event: E,
}

impl<E: Copy> Entry<E> {
    fn time(&self) -> SimTime {
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

/// A deterministic future-event list.
pub struct EventQueue<E> {
    /// The pending events in `heap[..len]`. While there are at most `SMALL`, they are unordered
    /// and `heap[len..SMALL]` holds padding; above that, `heap[..len]` is a 4-ary heap.
    ///
    /// A small model (a few servers, no think times) has a handful of pending events, and which
    /// of them comes next is a coin toss for a heap's comparisons, each a likely branch
    /// misprediction. A scan compares them all with selects instead of branches, and an insertion
    /// compares nothing.
    heap: Vec<Entry<E>>,
    len: usize,
    /// The pending event of the one stream that schedules its own successor each time it fires
    /// (session arrivals). Kept beside the heap, it costs one comparison per pop instead of a
    /// push and a pop on the heap; it still carries its sequence number, so the order of events
    /// is exactly what it would be if it were in the heap.
    lane: Option<Entry<E>>,
    next_seq: u64,
}

impl<E: Copy + Default> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// Events are small `Copy` values (handles into the world's slabs), so entries move by copy.
impl<E: Copy + Default> EventQueue<E> {
    pub fn new() -> Self {
        let padding = Entry {
            key: PADDING_KEY,
            event: E::default(),
        };
        let mut heap = Vec::with_capacity(1024);
        heap.resize(SMALL, padding);
        EventQueue {
            heap,
            len: 0,
            lane: None,
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
        self.push_to_heap(entry);
    }

    /// Schedules the next event of the self-renewing stream (see `lane`). Meant to be called
    /// when that stream's previous event has fired; if one is still pending it moves to the heap,
    /// so the result is correct either way.
    pub fn push_next_in_lane(&mut self, time: SimTime, event: E) {
        let entry = self.entry(time, event);
        if let Some(pending) = self.lane.replace(entry) {
            self.push_to_heap(pending);
        }
    }

    #[inline(always)]
    fn push_to_heap(&mut self, entry: Entry<E>) {
        if self.len < SMALL {
            self.heap[self.len] = entry;
            self.len += 1;
            return;
        }
        if self.len == SMALL {
            self.heapify();
        }
        if self.heap.len() == self.len {
            self.heap.push(entry);
        } else {
            self.heap[self.len] = entry;
        }
        self.len += 1;
        self.sift_up(self.len - 1);
    }

    /// Orders the unordered small set as a heap, before it grows past `SMALL`.
    #[cold]
    fn heapify(&mut self) {
        for index in (0..self.len.div_ceil(ARITY)).rev() {
            self.sift_down(index);
        }
    }

    /// Where the earliest pending event (besides the lane) is; padding when there is none.
    #[inline(always)]
    fn top_index(&self) -> usize {
        let Some(slots) = self.heap.first_chunk::<SMALL>() else {
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

    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let small = self.len <= SMALL;
        let top = self.top_index();
        if self
            .lane
            .as_ref()
            .is_some_and(|lane| lane.key < self.heap[top].key)
        {
            return self.lane.take().map(|entry| (entry.time(), entry.event));
        }
        if self.len == 0 {
            return None;
        }
        let first = self.heap[top];
        self.len -= 1;
        let last = self.heap[self.len];
        if small {
            // Any order will do: the last entry fills the hole, and padding fills its old slot.
            self.heap[top] = last;
            self.heap[self.len].key = PADDING_KEY;
        } else {
            // The slot given up is past the small set's, so it needs no padding.
            self.heap[0] = last;
            self.sift_down(0);
        }
        Some((first.time(), first.event))
    }

    pub fn peek_time(&self) -> Option<SimTime> {
        let heap = (self.len > 0).then(|| self.heap[self.top_index()].key);
        let lane = self.lane.as_ref().map(|entry| entry.key);
        let key = match (heap, lane) {
            (Some(heap), Some(lane)) => Some(heap.min(lane)),
            (heap, lane) => heap.or(lane),
        };
        key.map(|key| SimTime((key >> 64) as u64))
    }

    pub fn len(&self) -> usize {
        self.len + usize::from(self.lane.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the entry at `index` up to its place. Parents move down into the hole, and the entry
    /// is written once, at the end (cheaper than swapping at every level).
    #[inline(always)]
    fn sift_up(&mut self, mut index: usize) {
        let entry = self.heap[index];
        while index > 0 {
            let parent = (index - 1) / ARITY;
            if entry.key >= self.heap[parent].key {
                break;
            }
            self.heap[index] = self.heap[parent];
            index = parent;
        }
        self.heap[index] = entry;
    }

    /// Moves the entry at `index` down to its place, promoting the smallest child into the hole.
    fn sift_down(&mut self, mut index: usize) {
        let heap = &mut self.heap[..self.len];
        let entry = heap[index];
        loop {
            let first_child = ARITY * index + 1;
            let last_child = (first_child + ARITY).min(heap.len());
            // One bounds check for the whole family instead of one per child.
            let Some(children) = heap.get(first_child..last_child) else {
                break;
            };
            let mut offset = 0;
            let mut smallest = match children.first() {
                Some(child) => *child,
                None => break,
            };
            for (i, child) in children.iter().enumerate().skip(1) {
                if child.key < smallest.key {
                    smallest = *child;
                    offset = i;
                }
            }
            if smallest.key >= entry.key {
                break;
            }
            heap[index] = smallest;
            index = first_child + offset;
        }
        heap[index] = entry;
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
    /// as in a simulation (each pop schedules events no earlier than itself) and many ties.
    /// Pushes are more likely while fewer than `pending` events wait: with 2,000 the queue is
    /// mostly a heap; with a few more than a size that matters, it keeps crossing it both ways.
    fn check_against_a_stable_sort(pending: usize, seed: u64) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut queue = EventQueue::new();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, seq), kept unsorted
        let mut seq = 0;
        let mut popped = Vec::new();
        let mut expected = Vec::new();
        let mut now = 0;
        for _ in 0..20_000 {
            let push_chance = if reference.len() < pending {
                0.55
            } else {
                0.45
            };
            if rng.random_bool(push_chance) || reference.is_empty() {
                let time = now + rng.random_range(0..20u64);
                if rng.random_bool(0.3) {
                    queue.push_next_in_lane(SimTime(time), seq);
                } else {
                    queue.push(SimTime(time), seq);
                }
                reference.push((time, seq));
                seq += 1;
            } else {
                let (time, event) = queue.pop().expect("not empty");
                popped.push((time.nanos(), event));
                let min = reference.iter().copied().min().expect("not empty");
                reference.retain(|entry| *entry != min);
                expected.push(min);
                now = time.nanos();
            }
            assert_eq!(queue.len(), reference.len());
            assert_eq!(
                queue.peek_time().map(SimTime::nanos),
                reference.iter().min().map(|e| e.0)
            );
        }
        assert_eq!(popped, expected);
    }

    #[test]
    fn matches_a_stable_sort_under_interleaved_pushes_and_pops() {
        check_against_a_stable_sort(2_000, 9);
    }

    /// Around eight pending events the scan changes width; around sixteen, small set and heap
    /// take turns.
    #[test]
    fn matches_a_stable_sort_when_crossing_between_scan_widths_and_the_heap() {
        for seed in 0..20 {
            check_against_a_stable_sort(SMALL / 2 + 2, seed);
            check_against_a_stable_sort(SMALL + 2, seed);
        }
    }
}
