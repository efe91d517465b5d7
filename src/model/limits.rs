//! What one run may use, checked while it runs: a scenario is untrusted input, and an overloaded
//! system grows its queues without end. Every [`GUARD_INTERVAL`] requests the run compares its
//! live state with its memory share, the wall clock with `--time-limit`, the events of every run
//! with `--max-events`, and the clock with where it was (a run whose simulated time stands still
//! while millions of requests pass never ends). Per request rather than per event: every event
//! that can repeat without end leads to requests (probes and faults are bounded by validation),
//! and the check costs a third as much (measured on the M/M/c benchmark, 1.5% of instructions
//! per event against 0.3% per request).

use super::World;
use crate::engine::{SimTime, Slab};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Requests between two checks: rare enough to cost nothing per request (one test of a
/// counter), often enough that live state grows by at most a few thousand entities past its
/// budget.
pub const GUARD_INTERVAL: u64 = 4096;

/// Checks in a row at one simulated instant after which a run counts as making no progress
/// (1024 checks: 4.2 million requests at the same nanosecond, which no real workload sends).
const STALLED_CHECKS: u32 = 1024;

/// What runs may use; shared by every run of one command.
#[derive(Debug)]
pub struct Limits {
    /// Bytes of live state (sessions, requests, pending events) one run may hold.
    pub live_bytes_per_run: u64,
    /// `--time-limit`: when every run must have stopped.
    pub deadline: Option<Instant>,
    /// `--max-events`: events over all runs of the command.
    pub max_events: u64,
    events_used: AtomicU64,
    /// Simulated nanoseconds every run has got through, for the progress bar: added at each
    /// check and at a run's end.
    simulated_ns: AtomicU64,
    /// Set when one run stops, so the others stop too.
    cancelled: AtomicBool,
    /// `--stop-on-saturation`: a run whose server or store saturates stops there.
    pub stop_on_saturation: bool,
}

impl Limits {
    pub fn new(live_bytes_per_run: u64, deadline: Option<Instant>, max_events: u64) -> Limits {
        Limits {
            live_bytes_per_run,
            deadline,
            max_events,
            events_used: AtomicU64::new(0),
            simulated_ns: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            stop_on_saturation: false,
        }
    }

    /// No limit at all (tests, benchmarks, and library users who bound their own input).
    pub fn unlimited() -> Limits {
        Limits::new(u64::MAX, None, u64::MAX)
    }

    /// Events counted so far, over every run.
    pub fn events_used(&self) -> u64 {
        self.events_used.load(Ordering::Relaxed)
    }

    /// Simulated time got through so far, over every run: how far a command is, in the unit its
    /// length is known in before it runs.
    pub fn simulated_nanos(&self) -> u64 {
        self.simulated_ns.load(Ordering::Relaxed)
    }

    /// Tells the other runs to stop (one has).
    /// A run stopped: the others stop too, unless it stopped for a reason of its own model
    /// (`--stop-on-saturation`), which each run finds or not by itself, so that which run's
    /// saturation is reported (the first in job order) does not depend on thread timing.
    pub fn cancel_unless_own(&self, stopped: &Stopped) {
        if !matches!(stopped, Stopped::Saturated { .. }) {
            self.cancel();
        }
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::unlimited()
    }
}

/// Why a run stopped before its end.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Stopped {
    #[error(
        "{what} grew to {count} at {at} of simulated time, past this run's share of the memory \
         budget ({budget_mib} MiB): the system is overloaded at this load. Bound the queues \
         (servers.queue_limit, the store's queue_limit), add capacity or lower the load; or \
         raise --max-memory"
    )]
    Overloaded {
        what: String,
        count: String,
        at: String,
        budget_mib: u64,
    },
    #[error(
        "the run passed --max-events ({max} events over all runs); raise --max-events to let it \
         finish"
    )]
    EventBudget { max: u64 },
    #[error("the run was stopped by --time-limit before it finished; no results were written")]
    TimeLimit,
    #[error(
        "simulated time stood still at {at} for {requests} requests: the scenario loops \
         without time passing (zero service, think and network times?)"
    )]
    NoProgress { at: String, requests: u64 },
    #[error(
        "topology \"{topology}\": {station} is saturated: {evidence}, and the run stopped there \
         (--stop-on-saturation). Add capacity (servers.count, servers.workers, the store's workers \
         or shards), bound the queue (queue_limit) or lower the load"
    )]
    Saturated {
        topology: String,
        station: String,
        evidence: String,
    },
    #[error("another run stopped")]
    Cancelled,
}

/// A simulated instant for a message, to the millisecond ("2.797s").
fn simulated(time: SimTime) -> String {
    format!("{:.3}s", time.as_secs_f64())
}

/// The per-run state of the checks.
pub(super) struct Guard {
    last_time: SimTime,
    stalled: u32,
    /// Events already added to the shared count.
    events_counted: u64,
    /// Simulated time already added to the shared progress.
    time_reported: SimTime,
}

impl Guard {
    pub(super) fn new() -> Guard {
        Guard {
            last_time: SimTime::ZERO,
            stalled: 0,
            events_counted: 0,
            time_reported: SimTime::ZERO,
        }
    }
}

impl World<'_> {
    /// `--stop-on-saturation`: the run stops at the boundary where `station` was found saturated.
    #[cold]
    pub(super) fn stop_saturated(&mut self, station: String, found: super::saturation::Detected) {
        let grew = format!(
            "grew from {} to {} between {} and {} of simulated time",
            found.queue_from,
            found.queue_to,
            simulated(found.since),
            simulated(found.at)
        );
        let evidence = match found.behind {
            Some(server) => format!(
                "server {server}'s queue {grew} while every worker of the server and of the store \
                 was busy (a server waits for the store with a worker held)"
            ),
            None => format!("its queue {grew} while every worker was busy"),
        };
        self.stopped = Some(Stopped::Saturated {
            topology: self.topology.name.clone(),
            station,
            evidence,
        });
        self.end = SimTime::from_nanos(self.now.nanos().saturating_sub(1));
    }

    /// Bytes of the state that grows with load: sessions, requests, pending events. Slabs and
    /// queues grow by doubling, so what they hold is up to twice what they use.
    fn live_bytes(&self) -> u64 {
        let requests = self.requests.len() as u64;
        let bytes = self.sessions.len() as u64 * Slab::<super::Session>::slot_bytes() as u64
            + requests * Slab::<super::Request>::slot_bytes() as u64
            + self.queue.len() as u64 * 32;
        2 * bytes
    }

    /// Checks the limits; when one is passed, the run stops: nothing later than this instant
    /// runs (its end moves just before now), and `run` returns why.
    #[cold]
    #[inline(never)]
    pub(super) fn check_limits(&mut self) {
        if self.stopped.is_some() {
            return;
        }
        if let Err(stopped) = self.limits_hold() {
            self.stopped = Some(stopped);
            self.end = SimTime::from_nanos(self.now.nanos().saturating_sub(1));
        }
    }

    /// Adds the simulated time since the last report to the shared progress.
    pub(super) fn report_progress(&mut self) {
        let advanced = self
            .now
            .nanos()
            .saturating_sub(self.guard.time_reported.nanos());
        self.guard.time_reported = self.now;
        self.limits
            .simulated_ns
            .fetch_add(advanced, Ordering::Relaxed);
    }

    fn limits_hold(&mut self) -> Result<(), Stopped> {
        self.report_progress();
        let limits = self.limits;
        let new_events = self.events - self.guard.events_counted;
        self.guard.events_counted = self.events;
        let used = limits.events_used.fetch_add(new_events, Ordering::Relaxed) + new_events;
        if limits.cancelled.load(Ordering::Relaxed) {
            return Err(Stopped::Cancelled);
        }
        if used > limits.max_events {
            return Err(Stopped::EventBudget {
                max: limits.max_events,
            });
        }
        if limits
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Err(Stopped::TimeLimit);
        }
        if self.live_bytes() > limits.live_bytes_per_run {
            return Err(self.overloaded(limits));
        }
        let guard = &mut self.guard;
        if self.now == guard.last_time {
            guard.stalled += 1;
            if guard.stalled >= STALLED_CHECKS {
                return Err(Stopped::NoProgress {
                    at: simulated(self.now),
                    requests: u64::from(guard.stalled) * GUARD_INTERVAL,
                });
            }
        } else {
            guard.last_time = self.now;
            guard.stalled = 0;
        }
        Ok(())
    }

    /// Names what outgrew the budget: the longest queue, or the sessions themselves.
    fn overloaded(&self, limits: &Limits) -> Stopped {
        let store_queue = self
            .stores
            .iter()
            .map(|store| store.queue_len())
            .max()
            .unwrap_or(0);
        let (busiest, server_queue) = self
            .servers
            .iter()
            .enumerate()
            .map(|(index, server)| (index, server.queue.len()))
            .max_by_key(|(_, len)| *len)
            .unwrap_or((0, 0));
        let requests = self.requests.len();
        let (what, count, unit) = if store_queue >= server_queue && store_queue * 2 >= requests {
            ("the store queue".to_string(), store_queue, "requests")
        } else if server_queue > 0 && server_queue * 2 >= requests / self.servers.len().max(1) {
            (
                format!("server {busiest}'s queue"),
                server_queue,
                "requests",
            )
        } else if requests >= self.sessions.len() {
            ("the requests in flight".to_string(), requests, "requests")
        } else {
            (
                "the active sessions".to_string(),
                self.sessions.len(),
                "sessions",
            )
        };
        Stopped::Overloaded {
            what,
            count: format!("{count} {unit}"),
            at: simulated(self.now),
            budget_mib: limits.live_bytes_per_run / (1024 * 1024),
        }
    }
}
