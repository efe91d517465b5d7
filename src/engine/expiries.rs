//! A first-in first-out list of nondecreasing times in 4 bytes each.
//!
//! A stateful server keeps the state of each finished session until its idle timeout; the
//! timeout is the same for all, so those expiry times come in order. A large fleet holds millions
//! of them (4.3 million in the 800-server scale benchmark). Each is stored as its gap from the one
//! before, which fits 32 bits unless sessions end more than 4.29 s apart on one server; a longer
//! gap takes three words (a marker, then the gap's two halves). The times are exact.

use std::collections::VecDeque;

use super::SimTime;

/// Marks a gap too long for one word: the next two words hold it.
const LONG: u32 = u32::MAX;

#[derive(Default)]
pub struct Expiries {
    /// Each time's gap from the previous one (the first's is not read).
    gaps: VecDeque<u32>,
    /// The first and the last time, while not empty.
    first: SimTime,
    last: SimTime,
    len: usize,
}

impl Expiries {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.gaps.clear();
        self.len = 0;
    }

    /// Adds a time, no earlier than the last one added.
    pub fn push_back(&mut self, time: SimTime) {
        let gap = if self.len == 0 {
            self.first = time;
            0
        } else {
            debug_assert!(time >= self.last, "expiry times come in order");
            time.nanos() - self.last.nanos()
        };
        match u32::try_from(gap) {
            Ok(short) if short != LONG => self.gaps.push_back(short),
            _ => {
                self.gaps.push_back(LONG);
                self.gaps.push_back((gap >> 32) as u32);
                self.gaps.push_back(gap as u32);
            }
        }
        self.last = time;
        self.len += 1;
    }

    pub fn front(&self) -> Option<SimTime> {
        (self.len > 0).then_some(self.first)
    }

    pub fn pop_front(&mut self) -> Option<SimTime> {
        let first = self.front()?;
        self.skip_gap();
        self.len -= 1;
        if self.len > 0 {
            self.first = SimTime::from_nanos(first.nanos() + self.front_gap());
        }
        Some(first)
    }

    /// Removes the times up to `now` (expired by then).
    pub fn drop_through(&mut self, now: SimTime) {
        while self.front().is_some_and(|time| time <= now) {
            self.pop_front();
        }
    }

    /// The first entry's gap.
    fn front_gap(&self) -> u64 {
        match self.gaps[0] {
            LONG => (u64::from(self.gaps[1]) << 32) | u64::from(self.gaps[2]),
            short => u64::from(short),
        }
    }

    /// Removes the first entry's gap.
    fn skip_gap(&mut self) {
        let words = if self.gaps[0] == LONG { 3 } else { 1 };
        self.gaps.drain(..words);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Against a plain `VecDeque<SimTime>`, with gaps of every length (none, short, just under
    /// and over 32 bits, and to the end of time) and pushes and pops interleaved.
    #[test]
    fn matches_a_plain_queue_of_times() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut compact = Expiries::default();
        let mut plain = VecDeque::new();
        let mut now = 0u64;
        for step in 0..50_000 {
            if rng.random_bool(0.52) {
                let gap = match rng.random_range(0..6) {
                    0 => 0,
                    1 => rng.random_range(0..1_000),
                    2 => u64::from(u32::MAX) - rng.random_range(0..3),
                    3 => u64::from(u32::MAX) + rng.random_range(0..3),
                    4 => rng.random_range(0..1u64 << 40),
                    _ => rng.random_range(0..1u64 << 20),
                };
                now = now.saturating_add(if step == 40_000 { u64::MAX } else { gap });
                compact.push_back(SimTime(now));
                plain.push_back(SimTime(now));
            } else {
                assert_eq!(compact.pop_front(), plain.pop_front());
            }
            assert_eq!(compact.len(), plain.len());
            assert_eq!(compact.front(), plain.front().copied());
        }
        compact.drop_through(SimTime(now / 2));
        plain.retain(|time| time.nanos() > now / 2);
        assert_eq!(compact.len(), plain.len());
        compact.clear();
        assert!(compact.is_empty() && compact.pop_front().is_none());
    }
}
