//! When sessions start. Open arrivals are a Poisson process: at a constant rate each gap is a
//! unit exponential times the mean gap; under a schedule the next start is where the integrated
//! rate has grown by a unit exponential since the last one (inversion of the integrated rate),
//! so every topology sees the same sessions at the same instants whatever the rate does.
//! Closed-loop users start their next session a `between_sessions` draw after the last ended.

use super::{Event, World};
use crate::engine::SimTime;
use crate::scenario::{Arrivals, RateSegment};
use rand::RngExt;
use rand_distr::Exp1;

/// How the next session start is found.
pub enum ArrivalProcess {
    /// A constant rate (its gap is `World::constant_gap_ns`).
    Constant,
    Scheduled(Box<ScheduleClock>),
    /// Each user's starts are their own events ([`Event::UserSession`]), not one stream.
    Users {
        users: u32,
    },
    /// Starts come from a log (model/trace.rs, [`Event::LogSession`]).
    Trace,
}

impl ArrivalProcess {
    pub fn new(arrivals: &Arrivals) -> ArrivalProcess {
        match arrivals {
            Arrivals::Constant { .. } => ArrivalProcess::Constant,
            Arrivals::Scheduled(schedule) => ArrivalProcess::Scheduled(Box::new(ScheduleClock {
                segments: schedule.segments.clone(),
                current: 0,
                at: 0.0,
            })),
            Arrivals::Users { users, .. } => ArrivalProcess::Users { users: *users },
            Arrivals::Trace(_) => ArrivalProcess::Trace,
        }
    }
}

/// A position on a rate schedule: the time of the last arrival and the segment it is in.
pub struct ScheduleClock {
    segments: Vec<RateSegment>,
    current: usize,
    /// Seconds.
    at: f64,
}

impl ScheduleClock {
    /// The time (seconds) at which the integrated rate has grown by `unit` since the last
    /// arrival; None when the rate stays 0 from some point on. Kept out of line: inlined into
    /// the arrival path, it cost the constant rate's arrivals 8 instructions each.
    #[inline(never)]
    pub fn next(&mut self, unit: f64) -> Option<f64> {
        let mut needed = unit;
        loop {
            let segment = self.segments[self.current];
            let slope = segment.slope();
            let rate = segment.from + slope * (self.at - segment.start);
            if segment.end.is_infinite() {
                // The last rate holds for ever.
                if rate <= 0.0 {
                    return None;
                }
                self.at += needed / rate;
                return Some(self.at);
            }
            let end_rate = segment.from + slope * (segment.end - segment.start);
            let left = (rate + end_rate) / 2.0 * (segment.end - self.at);
            if needed <= left && rate + end_rate > 0.0 {
                // rate·τ + slope·τ²/2 = needed, solved in the form that does not cancel.
                let root = (rate * rate + 2.0 * slope * needed).max(0.0).sqrt();
                let step = 2.0 * needed / (rate + root);
                self.at = (self.at + step).min(segment.end);
                return Some(self.at);
            }
            needed -= left.max(0.0);
            self.at = segment.end;
            self.current += 1;
        }
    }
}

impl World<'_> {
    /// Schedules the open stream's next session start (nothing for a closed loop or a log).
    pub(super) fn schedule_next_arrival(&mut self) {
        let unit: f64 = self.arrivals.sample(Exp1);
        // A constant rate is tested first, on a plain field: one comparison per arrival, where
        // matching the process enum cost 7 instructions (callgrind, M/M/c).
        let gap_ns = self.constant_gap_ns;
        let at = if !gap_ns.is_nan() {
            self.now
                .saturating_add(SimTime::from_nanos_f64(unit * gap_ns))
        } else {
            match self.scheduled_arrival(unit) {
                Some(at) => at,
                None => return,
            }
        };
        if at < self.end {
            self.queue.push_next_in_lane(at, Event::SessionArrival);
        }
    }

    #[cold]
    #[inline(never)]
    fn scheduled_arrival(&mut self, unit: f64) -> Option<SimTime> {
        match &mut self.arrival_process {
            ArrivalProcess::Scheduled(clock) => clock.next(unit).map(SimTime::from_secs_f64),
            _ => None,
        }
    }

    /// Each closed-loop user's first session starts a `between_sessions` draw after time 0.
    pub(super) fn schedule_first_user_sessions(&mut self) {
        if let ArrivalProcess::Users { users } = self.arrival_process {
            for user in 0..u64::from(users) {
                self.schedule_user_session(user);
            }
        }
    }

    /// A closed-loop user's session `id` ended (completed, or abandoned when lost): the user
    /// starts the next one a `between_sessions` draw later. Session ids run user by user:
    /// `k × users + user` is the user's k-th session, so its workload draws are the same in every
    /// topology.
    #[cold]
    #[inline(never)]
    pub(super) fn user_session_over(&mut self, id: u64) {
        if let ArrivalProcess::Users { users } = self.arrival_process {
            self.schedule_user_session(id + u64::from(users));
        }
    }

    fn schedule_user_session(&mut self, id: u64) {
        let crate::scenario::Arrivals::Users {
            between_sessions, ..
        } = &self.scenario.workload.arrivals
        else {
            return;
        };
        let gap = Self::draw_time(between_sessions, self.seeds.between_sessions, id, 0);
        let at = self.now.saturating_add(gap);
        if at < self.end {
            self.queue.push(at, Event::UserSession(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(segments: &[(f64, f64, f64, f64)]) -> ScheduleClock {
        ScheduleClock {
            segments: segments
                .iter()
                .map(|&(start, end, from, to)| RateSegment {
                    start,
                    end,
                    from,
                    to,
                })
                .collect(),
            current: 0,
            at: 0.0,
        }
    }

    #[test]
    fn the_clock_inverts_the_integrated_rate() {
        // 10/s for 1 s, a ramp from 0 to 20/s over [1, 3), then 5/s for ever.
        let mut c = clock(&[
            (0.0, 1.0, 10.0, 10.0),
            (1.0, 3.0, 0.0, 20.0),
            (3.0, f64::INFINITY, 5.0, 5.0),
        ]);
        assert!((c.next(5.0).unwrap() - 0.5).abs() < 1e-12);
        // 5 more in the first segment, then 10τ²/2 = 1.25 in the ramp: τ = 0.5.
        assert!((c.next(6.25).unwrap() - 1.5).abs() < 1e-12);
        // The ramp's rest holds 20 − 1.25 = 18.75; 2.5 more at 5/s takes 0.5 s.
        assert!((c.next(21.25).unwrap() - 3.5).abs() < 1e-12);
    }

    #[test]
    fn a_rate_that_falls_to_zero_ends_the_arrivals() {
        let mut c = clock(&[(0.0, 2.0, 1.0, 1.0), (2.0, f64::INFINITY, 0.0, 0.0)]);
        assert!((c.next(1.5).unwrap() - 1.5).abs() < 1e-12);
        assert_eq!(c.next(1.0), None);
        // A segment of rate 0 in the middle is skipped over.
        let mut c = clock(&[
            (0.0, 1.0, 0.0, 0.0),
            (1.0, 2.0, 0.0, 0.0),
            (2.0, f64::INFINITY, 2.0, 2.0),
        ]);
        assert!((c.next(1.0).unwrap() - 2.5).abs() < 1e-12);
    }
}
