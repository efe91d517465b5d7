//! Gray failures: a server that is up and serves badly. `slow` multiplies its work by a factor;
//! `pauses` stops it for `pause` every `every` (a stop-the-world garbage collector); both pass
//! their probes. `partition` cuts it off from the store, the balancer or its replica peers
//! (`CUT_*` flags on the server; the paths that cross the cut test them).
//!
//! Neither needs an event per request or per pause. A compute step's end is computed when it
//! starts: its work (times the slow factor in force then) is laid over the server's pause clock,
//! skipping the pauses, in closed form ([`PauseClock::finish`]). A step that starts during a
//! pause starts when it ends; a pause that falls inside a step stretches it. Requests still
//! arrive and queue meanwhile. A factor applies to the steps that start while it is in force.

use super::{Event, World};
use crate::engine::{SimTime, rng};
use crate::scenario::{Fault, PartitionSide};
use rand::RngExt;

/// A server cut off from the store (its store operations fail).
pub const CUT_STORE: u8 = 1;
/// ... from the balancer (requests to it and its answers are lost; its probes time out).
pub const CUT_BALANCER: u8 = 2;
/// ... from its replica peers (sync writes fail; async writes stop reaching the replica).
pub const CUT_PEERS: u8 = 4;

/// When a server pauses: for `pause` from `first`, `first + every`, ... while a pause starts
/// before `until`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PauseClock {
    pub first: SimTime,
    pub every: SimTime,
    pub pause: SimTime,
    pub until: SimTime,
}

impl PauseClock {
    /// The pause that holds `t` or, failing that, the next one: (start, end).
    fn pause_from(&self, t: SimTime) -> Option<(u64, u64)> {
        let (first, every, pause) = (self.first.nanos(), self.every.nanos(), self.pause.nanos());
        let t = t.nanos();
        let k = if t < first { 0 } else { (t - first) / every };
        let mut start = first + k * every;
        if t >= start + pause {
            start += every;
        }
        (start < self.until.nanos()).then_some((start, start + pause))
    }

    /// When `work` done from `now` is finished, the pauses skipped. Whole periods are taken in
    /// one step, so the cost does not grow with the work's length.
    pub fn finish(&self, now: SimTime, work: SimTime) -> SimTime {
        let (every, pause) = (self.every.nanos(), self.pause.nanos());
        let running = every - pause; // validation: pause < every
        let (mut t, mut left) = (now.nanos(), work.nanos());
        loop {
            let Some((start, end)) = self.pause_from(SimTime::from_nanos(t)) else {
                return SimTime::from_nanos(t.saturating_add(left));
            };
            if t < start {
                let before = start - t;
                if left <= before {
                    return SimTime::from_nanos(t + left);
                }
                left -= before;
            }
            // At a pause's end: each whole period ahead does `running` of the work. Keep at least
            // 1 ns of it for the exact finish, and stop short of the last pause.
            t = end;
            let periods_left = self.until.nanos().saturating_sub(t) / every;
            let whole = ((left - 1) / running).min(periods_left.saturating_sub(1));
            t += whole * every;
            left -= whole * running;
        }
    }
}

impl World<'_> {
    /// Each server's pause clock for the `pauses` faults that cover it (a new server gets those
    /// that cover every server). The phase is a keyed draw per server, the same in every
    /// topology.
    pub(super) fn install_pause_clock(&mut self, server: u32) {
        for (index, fault) in self.scenario.faults.iter().enumerate() {
            let Fault::Pauses {
                at,
                server: covered,
                every,
                pause,
                ..
            } = fault
            else {
                continue;
            };
            if covered.is_some_and(|s| s != server) {
                continue;
            }
            let u: f64 =
                rng::keyed(self.seeds.pause_phase, u64::from(server), index as u64).random();
            let phase = SimTime::from_nanos_f64(every.nanos() as f64 * u);
            self.servers[server as usize].pauses = Some(PauseClock {
                first: at.saturating_add(phase),
                every: *every,
                pause: *pause,
                until: fault.ends_at().unwrap_or(SimTime::MAX).min(self.end),
            });
        }
    }

    /// A `slow` or `pauses` fault begins: its faults.csv rows open (one per server it covers),
    /// and a slow factor takes effect.
    pub(super) fn gray_failure_begins(&mut self, fault: u32) {
        for server in self.gray_servers(fault) {
            if self.servers[server as usize].is_running() {
                self.open_fault_on(fault, server);
            }
            self.apply_faults_in_force(server);
        }
    }

    /// It ends: its rows close, the factor goes. A server the balancer marked unhealthy during
    /// a partition from it recovers when its probes pass again, which closes its row.
    pub(super) fn on_fault_end(&mut self, fault: u32) {
        let from_balancer = matches!(
            self.scenario.faults[fault as usize],
            Fault::Partition {
                from: PartitionSide::Balancer,
                ..
            }
        );
        for server in self.gray_servers(fault) {
            self.apply_faults_in_force(server);
            if !from_balancer || self.balancer.is_healthy(server) {
                self.close_fault_on(fault, server);
            }
        }
    }

    /// Opens the faults.csv row of `fault` on `server`. The server's failures are charged to it
    /// unless another fault of the server already has them.
    fn open_fault_on(&mut self, fault: u32, server: u32) {
        let record = self.open_fault_record(fault, Some(server));
        self.servers[server as usize]
            .open_fault
            .get_or_insert(record);
    }

    /// Closes the open faults.csv row of `fault` on `server`, if it has one.
    fn close_fault_on(&mut self, fault: u32, server: u32) {
        let open = self.recorder.faults.iter().rposition(|record| {
            record.fault == fault && record.server == Some(server) && record.recovered.is_none()
        });
        if let Some(record) = open {
            let record = record as u32;
            self.close_fault_record(record);
            let slot = &mut self.servers[server as usize].open_fault;
            if *slot == Some(record) {
                *slot = None;
            }
        }
    }

    fn gray_servers(&self, fault: u32) -> Vec<u32> {
        match self.scenario.faults[fault as usize] {
            Fault::Slow { server, .. }
            | Fault::Partition { server, .. }
            | Fault::Pauses {
                server: Some(server),
                ..
            } => vec![server],
            _ => (0..self.servers.len() as u32).collect(),
        }
    }

    /// The server's slow factor (the product of the slow faults in force now) and what it is
    /// cut off from (the partitions in force now).
    fn apply_faults_in_force(&mut self, server: u32) {
        let now = self.now;
        let in_force = |fault: &Fault| fault.at() <= now && fault.ends_at().is_none_or(|e| now < e);
        let mut factor = 1.0;
        let mut cut = 0;
        for fault in self.scenario.faults.iter().filter(|f| in_force(f)) {
            match fault {
                Fault::Slow {
                    server: s,
                    factor: f,
                    ..
                } if *s == server => factor *= f,
                Fault::Partition {
                    server: s, from, ..
                } if *s == server => {
                    cut |= match from {
                        PartitionSide::Store => CUT_STORE,
                        PartitionSide::Balancer => CUT_BALANCER,
                        PartitionSide::Peers => CUT_PEERS,
                    }
                }
                _ => {}
            }
        }
        let state = &mut self.servers[server as usize];
        state.slow_factor = factor;
        if cut & CUT_PEERS == 0 {
            state.replication_stalled_since = None;
        } else if state.cut_from & CUT_PEERS == 0 {
            state.replication_stalled_since = Some(now);
        }
        state.cut_from = cut;
    }

    /// When a compute step of `work` that starts now on `server` ends.
    pub(super) fn gray_finish(&self, server: u32, work: SimTime) -> SimTime {
        let server = &self.servers[server as usize];
        let work = if server.slow_factor == 1.0 {
            work
        } else {
            SimTime::from_nanos_f64(work.nanos() as f64 * server.slow_factor)
        };
        match &server.pauses {
            Some(clock) => clock.finish(self.now, work),
            None => self.now.saturating_add(work),
        }
    }

    /// Schedules the end of each fault that has a duration of its own.
    pub(super) fn schedule_fault_ends(&mut self) {
        for (index, fault) in self.scenario.faults.iter().enumerate() {
            if let Some(end) = fault.ends_at()
                && end <= self.end
            {
                self.queue.push(end, Event::FaultEnd(index as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> SimTime {
        SimTime::from_millis(value)
    }

    /// Pauses of 100 ms every second, from 1 s.
    fn clock() -> PauseClock {
        PauseClock {
            first: ms(1000),
            every: ms(1000),
            pause: ms(100),
            until: SimTime::MAX,
        }
    }

    #[test]
    fn work_skips_the_pauses_it_meets() {
        let c = clock();
        assert_eq!(c.finish(ms(0), ms(10)), ms(10), "before the first pause");
        assert_eq!(
            c.finish(ms(995), ms(10)),
            ms(1105),
            "a pause stretches the step"
        );
        assert_eq!(
            c.finish(ms(1050), ms(10)),
            ms(1110),
            "a step waits for the pause to end"
        );
        assert_eq!(
            c.finish(ms(1100), ms(900)),
            ms(2000),
            "ends just as the next pause begins"
        );
        assert_eq!(c.finish(ms(1100), ms(901)), ms(2101));
        // 10 s of work from a pause's end: 11 whole periods of 900 ms plus 100 ms.
        assert_eq!(c.finish(ms(1100), ms(10_000)), ms(1100 + 11_000 + 100));
    }

    #[test]
    fn no_pause_starts_after_until() {
        let c = PauseClock {
            until: ms(2500),
            ..clock()
        };
        assert_eq!(
            c.finish(ms(2050), ms(2000)),
            ms(4100),
            "the pause at 2 s, none at 3 s"
        );
        assert_eq!(
            c.finish(ms(1100), ms(10_000)),
            ms(11_200),
            "one pause, then none"
        );
    }

    #[test]
    fn the_closed_form_matches_a_walk_through_every_pause() {
        let c = PauseClock {
            first: ms(3),
            every: ms(7),
            pause: ms(2),
            until: ms(200),
        };
        for start in 0..120 {
            for work in 1..80 {
                // Walk 1 ms at a time: a millisecond of work is done in each running one.
                let (mut t, mut left) = (start, work);
                while left > 0 {
                    let paused = t >= 3 && (t - 3) % 7 < 2 && (t - 3) / 7 * 7 + 3 < 200;
                    if !paused {
                        left -= 1;
                    }
                    t += 1;
                }
                assert_eq!(
                    c.finish(ms(start), ms(work)),
                    ms(t),
                    "from {start} ms, {work} ms of work"
                );
            }
        }
    }
}
