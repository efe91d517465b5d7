//! `[workload]`: how sessions arrive (a constant rate, a schedule, a day, a spike, or a closed
//! loop of users) and what each session does.

use super::super::schema::{
    DiurnalFile, SchedulePointFile, ScheduleShape, SpikeFile, TraceFile, WorkloadFile,
};
use super::super::*;
use super::Resolver;
use crate::engine::SimTime;

/// Above this the mean gap between arrivals is under 10 ns, below the clock's useful resolution.
const MAX_RATE: f64 = 1e8;
/// The most closed-loop users (each holds a session or a pending start).
const MAX_USERS: u32 = 10_000_000;
/// A diurnal cycle is drawn as this many linear pieces per period: the largest gap to the
/// sinusoid is (2π/96)²/8 ≈ 0.05% of its swing.
const DIURNAL_PIECES: u32 = 96;
/// The most pieces a diurnal rate is drawn with (each run keeps them: 32 MB at this bound).
const MAX_DIURNAL_PIECES: f64 = 1e6;

impl Resolver<'_> {
    pub(super) fn workload(&mut self, w: &WorkloadFile, duration: SimTime) -> Workload {
        let arrivals = self.arrivals(w, duration);
        Workload {
            arrivals,
            requests_per_session: self.dist(
                w.requests_per_session.as_ref(),
                Quantity::Count,
                "workload.requests_per_session",
                Dist::constant(1.0),
            ),
            think_time: self.dist(
                w.think_time.as_ref(),
                Quantity::Time,
                "workload.think_time",
                Dist::zero(),
            ),
            service_time: self.dist(
                Some(&w.service_time),
                Quantity::Time,
                "workload.service_time",
                Dist::zero(),
            ),
            request_bytes: self.dist(
                w.request_bytes.as_ref(),
                Quantity::Bytes,
                "workload.request_bytes",
                Dist::zero(),
            ),
            response_bytes: self.dist(
                w.response_bytes.as_ref(),
                Quantity::Bytes,
                "workload.response_bytes",
                Dist::zero(),
            ),
            on_session_lost: w.on_session_lost.unwrap_or(OnSessionLost::Abandon),
            idempotent: w.idempotent.unwrap_or(false),
        }
    }

    /// Exactly one of `sessions_per_second`, `schedule`, `diurnal` and `users` says how sessions
    /// start; `spike` multiplies an open rate over its window.
    fn arrivals(&mut self, w: &WorkloadFile, duration: SimTime) -> Arrivals {
        let problems_before = self.problems.len();
        let given: Vec<&str> = [
            ("sessions_per_second", w.sessions_per_second.is_some()),
            ("schedule", w.schedule.is_some()),
            ("diurnal", w.diurnal.is_some()),
            ("users", w.users.is_some()),
            ("trace", w.trace.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| key)
        .collect();
        if given.len() > 1 {
            self.check(
                false,
                format!("workload.{}", given[1]),
                format!(
                    "cannot be combined with workload.{}: give one of sessions_per_second, \
                     schedule, diurnal, users or trace",
                    given[0]
                ),
            );
        }
        if w.between_sessions.is_some() && w.users.is_none() {
            self.check(
                false,
                "workload.between_sessions",
                "applies only to a closed loop (workload.users)",
            );
        }
        if w.schedule_shape.is_some() && w.schedule.is_none() {
            self.check(
                false,
                "workload.schedule_shape",
                "applies only to workload.schedule",
            );
        }
        if let Some(trace) = &w.trace {
            for (given, key) in [
                (w.spike.is_some(), "spike"),
                (w.requests_per_session.is_some(), "requests_per_session"),
                (w.think_time.is_some(), "think_time"),
            ] {
                self.check(
                    !given,
                    format!("workload.{key}"),
                    "comes from the replayed trace (workload.trace): remove it",
                );
            }
            self.check(
                w.on_session_lost != Some(OnSessionLost::Relogin),
                "workload.on_session_lost",
                "a replayed trace cannot log users in again (\"relogin\"): its sessions are the \
                 log's",
            );
            return match self.trace(trace) {
                Some(trace) => Arrivals::Trace(trace),
                None => Arrivals::Constant {
                    sessions_per_second: 1.0,
                },
            };
        }
        let arrivals = if let Some(users) = w.users {
            self.check(
                (1..=MAX_USERS).contains(&users),
                "workload.users",
                format!("must be between 1 and {MAX_USERS} users, got {users}"),
            );
            if w.spike.is_some() {
                self.check(
                    false,
                    "workload.spike",
                    "applies to an open rate, not to a closed loop (workload.users)",
                );
            }
            let between_sessions = self.dist(
                w.between_sessions.as_ref(),
                Quantity::Time,
                "workload.between_sessions",
                Dist::zero(),
            );
            return Arrivals::Users {
                users,
                between_sessions,
            };
        } else if let Some(points) = &w.schedule {
            self.schedule(points, w.schedule_shape.unwrap_or_default())
        } else if let Some(diurnal) = &w.diurnal {
            self.diurnal(diurnal, duration)
        } else if let Some(rate) = w.sessions_per_second {
            self.rate(rate, "workload.sessions_per_second");
            Arrivals::Constant {
                sessions_per_second: rate,
            }
        } else {
            self.check(
                false,
                "workload",
                "says nowhere how sessions start: give sessions_per_second, schedule, diurnal or \
                 users",
            );
            Arrivals::Constant {
                sessions_per_second: 1.0,
            }
        };
        let arrivals = match &w.spike {
            Some(spike) => self.spike(arrivals, spike, duration),
            None => arrivals,
        };
        if let Some(rate) = arrivals.mean_rate(duration)
            && self.problems.len() == problems_before
        {
            self.check(
                rate > 0.0,
                "workload",
                "starts no session before the run ends (every rate is 0)",
            );
        }
        arrivals
    }

    /// The trace file, read once through to check it (columns, numbers, time order) and count
    /// its sessions; the runs read it again as a stream.
    fn trace(&mut self, file: &TraceFile) -> Option<Trace> {
        let path = match super::super::dist::readable_file(
            &file.file,
            "workload.trace.file",
            &self.context,
        ) {
            Ok(path) => path,
            Err(problem) => {
                self.problems.push(problem);
                return None;
            }
        };
        let gap = file.session_gap.map_or(SimTime::from_secs(1800), |g| g.0);
        self.check(
            gap > SimTime::ZERO,
            "workload.trace.session_gap",
            "must be longer than 0",
        );
        let columns = crate::fit::LogColumns {
            timestamp: file.timestamp.clone().unwrap_or_else(|| "timestamp".into()),
            session: file.session.clone().unwrap_or_else(|| "session".into()),
            service_time: file.service_time.clone(),
            timestamp_unit: file.timestamp_unit.map_or(1.0, |u| u.seconds()),
            service_time_unit: file.service_time_unit.map_or(1e-3, |u| u.seconds()),
            request_bytes: file.request_bytes.clone(),
            response_bytes: file.response_bytes.clone(),
        };
        match count_trace(&path, &columns, gap.as_secs_f64()) {
            Ok(counts) if counts.requests > 0 => Some(Trace {
                path,
                columns,
                session_gap: gap,
                requests: counts.requests,
                sessions: counts.sessions,
                span_seconds: counts.span_seconds,
                mean_session_seconds: counts.mean_session_seconds,
            }),
            Ok(_) => {
                self.check(false, "workload.trace.file", "the trace has no rows");
                None
            }
            Err(error) => {
                self.check(false, "workload.trace.file", error.to_string());
                None
            }
        }
    }

    /// A rate of `path`: finite, at least 0, at most [`MAX_RATE`]; a constant rate must be
    /// positive.
    fn rate(&mut self, rate: f64, path: &str) {
        let constant = path == "workload.sessions_per_second";
        let ok = rate.is_finite() && (rate > 0.0 || (!constant && rate == 0.0));
        self.check(
            ok,
            path,
            if constant {
                format!("must be a positive, finite rate, got {rate}")
            } else {
                format!("must be a finite rate of at least 0, got {rate}")
            },
        );
        self.check(
            !rate.is_finite() || rate <= MAX_RATE,
            path,
            "at most 100000000 sessions per second are supported",
        );
    }

    fn schedule(&mut self, points: &[SchedulePointFile], shape: ScheduleShape) -> Arrivals {
        if points.is_empty() {
            self.check(false, "workload.schedule", "needs at least one point");
            return Arrivals::Constant {
                sessions_per_second: 1.0,
            };
        }
        for (index, pair) in points.windows(2).enumerate() {
            let (earlier, later) = (pair[0].at.0, pair[1].at.0);
            self.check(
                later > earlier,
                format!("workload.schedule[{}].at", index + 1),
                format!(
                    "the schedule's points must be in time order: {} comes after {}",
                    units::format_duration(later),
                    units::format_duration(earlier)
                ),
            );
        }
        for (index, point) in points.iter().enumerate() {
            self.rate(
                point.sessions_per_second,
                &format!("workload.schedule[{index}].sessions_per_second"),
            );
        }
        let knots: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.at.0.as_secs_f64(), p.sessions_per_second))
            .collect();
        Arrivals::Scheduled(schedule_through(&knots, shape))
    }

    fn diurnal(&mut self, diurnal: &DiurnalFile, duration: SimTime) -> Arrivals {
        self.rate(diurnal.trough, "workload.diurnal.trough");
        self.rate(diurnal.peak, "workload.diurnal.peak");
        self.check(
            diurnal.peak > 0.0 && diurnal.peak >= diurnal.trough,
            "workload.diurnal.peak",
            format!(
                "must be positive and at least the trough ({}), got {}",
                diurnal.trough, diurnal.peak
            ),
        );
        let period = diurnal.period.map_or(SimTime::from_secs(86_400), |p| p.0);
        self.check(
            period >= SimTime::from_secs(1),
            "workload.diurnal.period",
            "must be at least 1s",
        );
        let period = period.as_secs_f64().max(1.0);
        let pieces = duration.as_secs_f64() / period * f64::from(DIURNAL_PIECES);
        if pieces > MAX_DIURNAL_PIECES {
            self.check(
                false,
                "workload.diurnal.period",
                format!(
                    "is too short for this run: {} periods of {DIURNAL_PIECES} pieces each, more \
                     than the {MAX_DIURNAL_PIECES} a rate is drawn with",
                    (duration.as_secs_f64() / period).ceil()
                ),
            );
            return Arrivals::Constant {
                sessions_per_second: 1.0,
            };
        }
        let piece = period / f64::from(DIURNAL_PIECES);
        let (trough, peak) = (diurnal.trough, diurnal.peak);
        let peak_at = diurnal.peak_at.0.as_secs_f64();
        let rate = |t: f64| {
            let phase = std::f64::consts::TAU * (t - peak_at) / period;
            trough + (peak - trough) * (1.0 + phase.cos()) / 2.0
        };
        let pieces = (duration.as_secs_f64() / piece).ceil() as u64 + 1;
        let knots: Vec<(f64, f64)> = (0..=pieces)
            .map(|k| {
                let t = k as f64 * piece;
                (t, rate(t))
            })
            .collect();
        Arrivals::Scheduled(schedule_through(&knots, ScheduleShape::Linear))
    }

    /// The rate times `factor` over the spike's window, on top of whatever the rate is.
    fn spike(&mut self, arrivals: Arrivals, spike: &SpikeFile, duration: SimTime) -> Arrivals {
        self.check(
            spike.factor.is_finite() && (0.0..=1e6).contains(&spike.factor),
            "workload.spike.factor",
            format!("must be between 0 and 1000000, got {}", spike.factor),
        );
        self.check(
            spike.duration.0 > SimTime::ZERO,
            "workload.spike.duration",
            "must be longer than 0",
        );
        let end = spike.at.0.saturating_add(spike.duration.0);
        self.check(
            end <= duration,
            "workload.spike.duration",
            format!(
                "the spike ends at {}, after the run (duration = {})",
                units::format_duration(end),
                units::format_duration(duration)
            ),
        );
        let schedule = match arrivals {
            Arrivals::Constant {
                sessions_per_second,
            } => schedule_through(&[(0.0, sessions_per_second)], ScheduleShape::Step),
            Arrivals::Scheduled(schedule) => schedule,
            Arrivals::Users { .. } | Arrivals::Trace(_) => return arrivals,
        };
        let window = (spike.at.0.as_secs_f64(), end.as_secs_f64());
        let spiked = multiply_over(&schedule, window, spike.factor);
        if spiked.peak_rate() > MAX_RATE {
            self.check(
                false,
                "workload.spike.factor",
                "takes the rate above 100000000 sessions per second",
            );
        }
        Arrivals::Scheduled(spiked)
    }
}

/// A trace's requests, sessions (a session's next request later than `gap` after its last
/// starts a new one) and span in seconds. Memory holds the sessions active within the gap.
fn count_trace(
    path: &std::path::Path,
    columns: &crate::fit::LogColumns,
    gap: f64,
) -> Result<TraceCounts, crate::fit::FitError> {
    let mut log = crate::fit::LogReader::open(path, columns)?;
    // Each active session's first and last request.
    let mut active: std::collections::HashMap<String, (f64, f64)> =
        std::collections::HashMap::new();
    let (mut requests, mut sessions, mut span, mut lengths) = (0u64, 0u64, 0.0, 0.0);
    while let Some(row) = log.next_row()? {
        requests += 1;
        span = row.at;
        match active.get_mut(&row.session) {
            Some((_, last)) if row.at - *last <= gap => *last = row.at,
            Some((first, last)) => {
                lengths += *last - *first;
                (*first, *last) = (row.at, row.at);
                sessions += 1;
            }
            None => {
                active.insert(row.session, (row.at, row.at));
                sessions += 1;
            }
        }
        if requests.is_multiple_of(65_536) {
            active.retain(|_, (first, last)| {
                let over = span - *last > gap;
                if over {
                    lengths += *last - *first;
                }
                !over
            });
        }
    }
    lengths += active
        .values()
        .map(|(first, last)| last - first)
        .sum::<f64>();
    Ok(TraceCounts {
        requests,
        sessions,
        span_seconds: span,
        mean_session_seconds: lengths / sessions.max(1) as f64,
    })
}

struct TraceCounts {
    requests: u64,
    sessions: u64,
    span_seconds: f64,
    mean_session_seconds: f64,
}

/// The schedule through `knots` (time in seconds, rate), in time order: the first rate before
/// the first knot, the last for ever after the last.
fn schedule_through(knots: &[(f64, f64)], shape: ScheduleShape) -> RateSchedule {
    let mut segments = Vec::with_capacity(knots.len() + 1);
    let (first_at, first_rate) = knots[0];
    if first_at > 0.0 {
        segments.push(RateSegment {
            start: 0.0,
            end: first_at,
            from: first_rate,
            to: first_rate,
        });
    }
    for pair in knots.windows(2) {
        let ((start, from), (end, next)) = (pair[0], pair[1]);
        let to = match shape {
            ScheduleShape::Linear => next,
            ScheduleShape::Step => from,
        };
        segments.push(RateSegment {
            start,
            end,
            from,
            to,
        });
    }
    let (last_at, last_rate) = knots[knots.len() - 1];
    segments.push(RateSegment {
        start: last_at,
        end: f64::INFINITY,
        from: last_rate,
        to: last_rate,
    });
    RateSchedule { segments }
}

/// `schedule` with its rate multiplied by `factor` over `[from, to)`: segments are cut at the
/// window's edges (the rate jumps there).
fn multiply_over(schedule: &RateSchedule, (from, to): (f64, f64), factor: f64) -> RateSchedule {
    let mut segments = Vec::with_capacity(schedule.segments.len() + 2);
    for segment in &schedule.segments {
        let rate = |t: f64| segment.from + segment.slope() * (t - segment.start);
        let cuts = [segment.start, from, to, segment.end];
        let mut edges: Vec<f64> = cuts
            .into_iter()
            .filter(|t| (segment.start..=segment.end).contains(t))
            .collect();
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        for pair in edges.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            let scale = if start >= from && start < to {
                factor
            } else {
                1.0
            };
            let last = end.is_infinite();
            segments.push(RateSegment {
                start,
                end,
                from: rate(start) * scale,
                to: if last { rate(start) } else { rate(end) } * scale,
            });
        }
    }
    RateSchedule { segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linear_schedule_integrates_to_its_trapezoids_and_holds_its_ends() {
        let schedule = schedule_through(&[(10.0, 100.0), (20.0, 200.0)], ScheduleShape::Linear);
        // 100/s before 10 s, a ramp to 200/s by 20 s, 200/s after.
        assert_eq!(schedule.expected_sessions(0.0, 10.0), 1000.0);
        assert_eq!(schedule.expected_sessions(10.0, 20.0), 1500.0);
        assert_eq!(schedule.expected_sessions(20.0, 25.0), 1000.0);
        assert_eq!(schedule.rate_at(15.0), 150.0);
        let step = schedule_through(&[(10.0, 100.0), (20.0, 200.0)], ScheduleShape::Step);
        assert_eq!(step.expected_sessions(10.0, 20.0), 1000.0);
    }

    #[test]
    fn a_spike_multiplies_the_rate_over_its_window_only() {
        let base = schedule_through(&[(0.0, 10.0), (100.0, 110.0)], ScheduleShape::Linear);
        let spiked = multiply_over(&base, (40.0, 60.0), 4.0);
        assert_eq!(
            spiked.expected_sessions(0.0, 40.0),
            base.expected_sessions(0.0, 40.0)
        );
        assert!(
            (spiked.expected_sessions(40.0, 60.0) - 4.0 * base.expected_sessions(40.0, 60.0)).abs()
                < 1e-9
        );
        assert_eq!(
            spiked.expected_sessions(60.0, 200.0),
            base.expected_sessions(60.0, 200.0)
        );
        assert_eq!(spiked.rate_at(50.0), 4.0 * base.rate_at(50.0));
    }
}
