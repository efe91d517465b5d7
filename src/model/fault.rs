//! Faults and how the balancer finds out: crashes, restarts and periodic health checks.

use super::{Event, Outcome, Phase, World};
use crate::engine::Handle;
use crate::scenario::Fault;

impl World<'_> {
    pub(super) fn on_fault(&mut self, index: usize) {
        match self.scenario.faults[index] {
            Fault::Crash {
                server,
                restart_after,
                ..
            } => {
                self.crash(server);
                if let Some(delay) = restart_after {
                    self.queue
                        .push(self.now.saturating_add(delay), Event::Restart(server));
                }
            }
        }
    }

    /// The server stops: its memory (session state) is gone and every request it holds fails with
    /// a connection reset. The balancer is not told; it finds out through health checks.
    fn crash(&mut self, server: u32) {
        let target = &mut self.servers[server as usize];
        if !target.alive {
            return;
        }
        target.alive = false;
        target.incarnation += 1;
        target.session_bytes = 0.0;
        target.queue.clear();
        let busy = std::mem::take(&mut target.busy);
        self.recorder.busy_workers.add(self.now, -i64::from(busy));

        // Sessions first, so the clients whose requests fail below already see the loss.
        let homed: Vec<Handle> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.lost && s.state_at.is_some_and(|(home, _)| home == server))
            .map(|(handle, _)| handle)
            .collect();
        for session in homed {
            self.mark_session_lost(session);
        }
        let held: Vec<Handle> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                r.server == server
                    && matches!(
                        r.phase,
                        Phase::Queued | Phase::StoreRead | Phase::Compute | Phase::StoreWrite
                    )
            })
            .map(|(handle, _)| handle)
            .collect();
        for request in held {
            self.respond(request, Outcome::Failed);
        }
    }

    pub(super) fn on_restart(&mut self, server: u32) {
        // It comes back empty: a new incarnation with no sessions, idle workers and no queue.
        self.servers[server as usize].alive = true;
    }

    pub(super) fn on_health_check(&mut self, server: u32) {
        let passed = self.servers[server as usize].alive;
        self.balancer.observe_health_check(server, passed);
        let next = self
            .now
            .saturating_add(self.topology.balancer.health_check.interval);
        if next <= self.end {
            self.queue.push(next, Event::HealthCheck(server));
        }
    }
}
