//! The pending-event set: a min-heap ordered by `(time, sequence)`.
//!
//! The sequence number is the insertion counter, so two events at the same instant pop in the order
//! they were scheduled. That makes every run reproducible without relying on the heap's tie-breaking.
//!
//! The heap is 4-ary and implicit (one `Vec`): its tree is half as deep as a binary heap's, and the
//! four children of a node sit in one or two cache lines. Time and sequence are packed into one
//! `u128` key, so ordering two entries is a single comparison. Sifting moves a hole instead of
//! swapping. The pop order, and so every result, is the same as with std's `BinaryHeap`.

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

/// A deterministic future-event list.
pub struct EventQueue<E> {
    heap: Vec<Entry<E>>,
    next_seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// Events are small `Copy` values (handles into the world's slabs), so entries move by copy.
impl<E: Copy> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: Vec::with_capacity(1024),
            next_seq: 0,
        }
    }

    pub fn push(&mut self, time: SimTime, event: E) {
        let key = (u128::from(time.nanos()) << 64) | u128::from(self.next_seq);
        self.next_seq += 1;
        self.heap.push(Entry { key, event });
        self.sift_up(self.heap.len() - 1);
    }

    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let last = self.heap.pop()?;
        if self.heap.is_empty() {
            return Some((last.time(), last.event));
        }
        let top = std::mem::replace(&mut self.heap[0], last);
        self.sift_down(0);
        Some((top.time(), top.event))
    }

    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.first().map(Entry::time)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Moves the entry at `index` up to its place. Parents move down into the hole, and the entry
    /// is written once, at the end (cheaper than swapping at every level).
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
        let heap = &mut self.heap[..];
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn drain<E: Copy>(queue: &mut EventQueue<E>) -> Vec<(SimTime, E)> {
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

    /// Against a sorted reference, with pushes and pops interleaved as in a simulation (each pop
    /// schedules events no earlier than itself) and many ties.
    #[test]
    fn matches_a_stable_sort_under_interleaved_pushes_and_pops() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut queue = EventQueue::new();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, seq), kept unsorted
        let mut seq = 0;
        let mut popped = Vec::new();
        let mut expected = Vec::new();
        let mut now = 0;
        for _ in 0..20_000 {
            if rng.random_bool(0.55) || reference.is_empty() {
                let time = now + rng.random_range(0..20u64);
                queue.push(SimTime(time), seq);
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
        }
        assert_eq!(popped, expected);
        assert_eq!(queue.len(), reference.len());
        assert_eq!(
            queue.peek_time().map(SimTime::nanos),
            reference.iter().min().map(|e| e.0)
        );
    }
}
