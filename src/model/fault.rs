//! Faults and fleet changes, and how the balancer finds out: crashes, hangs, random failures and
//! repairs, deploys with draining, scaling (scheduled or by the autoscaler), store outages, and
//! the periodic health checks that are the balancer's only window on the servers.

use super::balancer_retry::TryFailure;
use super::gray::CUT_BALANCER;
use super::server::{Condition, Server};
use super::{Event, Outcome, Phase, World};
use crate::engine::rng;
use crate::engine::{Handle, SimTime};
use crate::metrics::LossCause;
use crate::scenario::{Fault, State};
use rand::RngExt;

impl World<'_> {
    pub(super) fn on_fault(&mut self, index: usize) {
        let fault = index as u32;
        match self.scenario.faults[index] {
            Fault::Crash {
                server,
                restart_after,
                ..
            } => {
                // A server that is not running (starting, already down, retired) has nothing to
                // crash: no row either, or it would stay open for the rest of the run.
                if self.servers[server as usize].is_running() {
                    self.open_server_fault(fault, server);
                    self.crash(server, LossCause::Crash);
                    self.schedule_restart(server, restart_after);
                }
            }
            Fault::Hang {
                server,
                restart_after,
                ..
            } => {
                if self.servers[server as usize].condition == Condition::Up {
                    self.open_server_fault(fault, server);
                    self.hang(server);
                    self.schedule_restart(server, restart_after);
                }
            }
            Fault::RollingRestart { .. } => self.on_rolling_batch(fault, 0),
            Fault::Scale {
                count,
                drain,
                startup,
                ..
            } => self.resize_fleet(count, drain, startup, fault),
            Fault::StoreOutage {
                duration,
                failover,
                wipes,
                shard,
                ..
            } => self.store_down(fault, failover.unwrap_or(duration), wipes, shard),
            Fault::Slow { .. } | Fault::Pauses { .. } | Fault::Partition { .. } => {
                self.gray_failure_begins(fault)
            }
            Fault::ZoneOutage {
                zone,
                duration,
                store_failover,
                ..
            } => self.zone_outage(fault, zone, duration, store_failover),
            Fault::RandomCrashes { .. } => {
                unreachable!("random crashes are scheduled per server, not as one event")
            }
        }
    }

    pub(super) fn schedule_restart(&mut self, server: u32, after: Option<SimTime>) {
        if let Some(delay) = after {
            self.queue
                .push(self.now.saturating_add(delay), Event::Restart(server));
        }
    }

    /// Opens the faults.csv row of `fault` on `server` (unless one is open already).
    pub(super) fn open_server_fault(&mut self, fault: u32, server: u32) -> u32 {
        if let Some(record) = self.servers[server as usize].open_fault {
            return record;
        }
        let record = self.open_fault_record(fault, Some(server));
        self.servers[server as usize].open_fault = Some(record);
        record
    }

    /// The server stops: connections reset, its memory (session state) is gone, and every request
    /// it holds fails. The balancer is not told; it finds out through health checks.
    pub(super) fn crash(&mut self, server: u32, cause: LossCause) {
        let condition = self.servers[server as usize].condition;
        if !matches!(condition, Condition::Up | Condition::Hung) {
            return;
        }
        // Sessions first, so the clients whose requests fail below already see the loss.
        self.lose_sessions_on(server, cause);
        self.servers[server as usize].wipe_memory(&mut self.lingering_chunks);
        if condition == Condition::Up {
            self.leave_service(server);
        }
        self.servers[server as usize].condition = Condition::Down;
        self.fail_held_requests(server);
    }

    /// The server freezes: it keeps accepting connections and answers nothing. Its sessions are
    /// out of reach (it will only come back by a restart, empty); what it holds is black-holed.
    fn hang(&mut self, server: u32) {
        if self.servers[server as usize].condition != Condition::Up {
            return;
        }
        self.lose_sessions_on(server, LossCause::Hang);
        self.servers[server as usize].wipe_memory(&mut self.lingering_chunks);
        self.leave_service(server);
        self.servers[server as usize].condition = Condition::Hung;
        let held = self.requests_held_by(server);
        for handle in held {
            if let Some(request) = self.requests.get_mut(handle) {
                request.phase = Phase::BlackHoled;
                self.start_server_timeout(handle);
            }
        }
    }

    /// The requests a server is working on or queueing (not those on the wire to or from it).
    fn requests_held_by(&self, server: u32) -> Vec<Handle> {
        self.requests
            .iter()
            .filter(|(_, r)| {
                r.server == server
                    && matches!(
                        r.phase,
                        Phase::Queued
                            | Phase::StoreRead
                            | Phase::Compute
                            | Phase::StoreWrite
                            | Phase::BlackHoled
                    )
            })
            .map(|(handle, _)| handle)
            .collect()
    }

    /// Every request the server holds fails with a connection reset (which the balancer may
    /// retry elsewhere).
    fn fail_held_requests(&mut self, server: u32) {
        for request in self.requests_held_by(server) {
            self.try_failed(request, Outcome::Failed, TryFailure::Reset);
        }
    }

    /// The server stops serving: its workers and queue are gone from the capacity.
    fn leave_service(&mut self, server: u32) {
        let workers = i64::from(self.topology.servers.workers);
        let target = &mut self.servers[server as usize];
        target.queue.clear();
        let busy = std::mem::take(&mut target.busy);
        target.busy_workers.add(self.now, -i64::from(busy));
        let rec = &mut self.recorder;
        rec.busy_workers.add(self.now, -i64::from(busy));
        rec.worker_capacity.add(self.now, -workers);
        rec.servers_up.add(self.now, -1);
    }

    fn enter_service(&mut self, server: u32) {
        self.servers[server as usize].condition = Condition::Up;
        let workers = i64::from(self.topology.servers.workers);
        let rec = &mut self.recorder;
        rec.worker_capacity.add(self.now, workers);
        rec.servers_up.add(self.now, 1);
    }

    pub(super) fn on_restart(&mut self, server: u32) {
        let condition = self.servers[server as usize].condition;
        if !matches!(condition, Condition::Down | Condition::Hung) {
            return;
        }
        if condition == Condition::Hung {
            // Killing the frozen process resets the connections it was sitting on.
            self.fail_held_requests(server);
        }
        // It comes back empty: a new incarnation with no sessions, idle workers and no queue.
        self.servers[server as usize].wipe_memory(&mut self.lingering_chunks);
        self.enter_service(server);
        if self.balancer.is_healthy(server) {
            // Back before the balancer noticed anything: serving again is the recovery.
            self.close_server_fault(server);
        }
    }

    /// The fault on `server` is over: it serves again (as far as the balancer knows).
    fn close_server_fault(&mut self, server: u32) {
        if let Some(record) = self.servers[server as usize].open_fault.take() {
            self.close_fault_record(record);
        }
    }

    // ---- random crashes ----

    pub(super) fn schedule_random_failure(&mut self, fault: u32, server: u32) {
        let Fault::RandomCrashes { mtbf, .. } = &self.scenario.faults[fault as usize] else {
            return;
        };
        let occurrence = u64::from(self.servers[server as usize].failures);
        let key = (u64::from(fault) << 32) | u64::from(server);
        let time_to_failure = Self::draw_time(mtbf, self.seeds.random_crashes, key, occurrence * 2);
        let at = self.now.saturating_add(time_to_failure);
        if at < self.end {
            self.queue.push(at, Event::RandomFailure { fault, server });
        }
    }

    pub(super) fn on_random_failure(&mut self, fault: u32, server: u32) {
        let target = &self.servers[server as usize];
        match target.condition {
            Condition::Retired => return,
            Condition::Up => {}
            // Already out for another reason: this failure finds nothing to break.
            _ => {
                self.servers[server as usize].failures += 1;
                self.schedule_random_failure(fault, server);
                return;
            }
        }
        self.open_server_fault(fault, server);
        self.crash(server, LossCause::Crash);
        let Fault::RandomCrashes { mttr, .. } = &self.scenario.faults[fault as usize] else {
            return;
        };
        let occurrence = u64::from(self.servers[server as usize].failures);
        let key = (u64::from(fault) << 32) | u64::from(server);
        let repair = Self::draw_time(mttr, self.seeds.random_crashes, key, occurrence * 2 + 1);
        self.servers[server as usize].failures += 1;
        self.queue.push(
            self.now.saturating_add(repair),
            Event::RandomRepair { fault, server },
        );
    }

    pub(super) fn on_random_repair(&mut self, fault: u32, server: u32) {
        if self.servers[server as usize].condition == Condition::Retired {
            return;
        }
        self.on_restart(server);
        self.schedule_random_failure(fault, server);
    }

    // ---- health checks ----

    /// Starts a server's probe chain. Its first probe goes at a uniformly random point of the interval (its own keyed
    /// draw, the same in every topology): a real balancer's probe phase has nothing to do with
    /// when a server will fail, so the time to detect a crash varies from run to run.
    pub(super) fn schedule_first_health_check(&mut self, server: u32) {
        let interval = self.topology.balancer.health_check.interval;
        let u: f64 = rng::keyed(self.seeds.probe_phase, u64::from(server), 0).random();
        let offset = SimTime::from_nanos_f64(interval.nanos() as f64 * u);
        self.queue
            .push(self.now.saturating_add(offset), Event::HealthCheck(server));
    }

    pub(super) fn on_health_check(&mut self, server: u32) {
        let check = &self.topology.balancer.health_check;
        match self.servers[server as usize].condition {
            Condition::Retired => return, // deregistered: no more probes
            Condition::Starting => {}
            // A server cut off from the balancer does not answer its probes either.
            Condition::Up if self.servers[server as usize].cut_off(CUT_BALANCER) => {
                let at = self.now.saturating_add(check.timeout);
                self.queue.push(at, Event::ProbeTimedOut(server));
            }
            Condition::Up => self.observe_probe(server, true),
            Condition::Down => self.observe_probe(server, false), // connection refused
            Condition::Hung => {
                let at = self.now.saturating_add(check.timeout);
                self.queue.push(at, Event::ProbeTimedOut(server));
            }
        }
        let next = self.now.saturating_add(check.interval);
        if next <= self.end {
            self.queue.push(next, Event::HealthCheck(server));
        }
    }

    /// A probe's result reaches the balancer; a flip to unhealthy is the fault's detection, a
    /// flip back its recovery.
    pub(super) fn observe_probe(&mut self, server: u32, passed: bool) {
        if !self.balancer.observe_health_check(server, passed) {
            return;
        }
        if passed {
            self.close_server_fault(server);
        } else if let Some(record) = self.servers[server as usize].open_fault {
            let record = &mut self.recorder.faults[record as usize];
            record.detected.get_or_insert(self.now);
        }
    }

    // ---- fleet changes: deploys, scaling, the autoscaler ----

    /// Launches a new server; it joins the balancer after `startup`. `record` is the faults.csv
    /// row its start closes.
    fn launch_server(&mut self, startup: SimTime, record: Option<u32>) -> u32 {
        let cache = match &self.topology.state {
            State::Store { cache, .. } => cache.as_ref(),
            _ => None,
        };
        let mut server = Server::new(cache);
        server.condition = Condition::Starting;
        server.replaces = record;
        self.servers.push(server);
        self.replica_map.stale = true;
        let index = (self.servers.len() - 1) as u32;
        if self.needs.gray {
            self.install_pause_clock(index);
        }
        self.balancer.add_server();
        self.recorder.servers_provisioned.add(self.now, 1);
        self.queue
            .push(self.now.saturating_add(startup), Event::Started(index));
        index
    }

    pub(super) fn on_started(&mut self, server: u32) {
        if self.servers[server as usize].condition != Condition::Starting {
            return;
        }
        self.enter_service(server);
        self.balancer.register(server);
        if let Some(record) = self.servers[server as usize].replaces.take() {
            self.close_fault_record(record);
        }
        self.schedule_first_health_check(server);
        for (fault, kind) in self.scenario.faults.iter().enumerate() {
            if matches!(kind, Fault::RandomCrashes { .. }) {
                self.schedule_random_failure(fault as u32, server);
            }
        }
    }

    /// Takes a server out of rotation for new sessions; after `drain` it is terminated, and the
    /// sessions still homed on it are lost with `cause` (unless their state survives elsewhere).
    fn drain_server(&mut self, server: u32, drain: SimTime, fault: u32, cause: LossCause) -> u32 {
        let record = self.open_server_fault(fault, server);
        // Deregistration is immediate: the balancer knows at once (unless the server's row is an
        // earlier fault's, already detected or not).
        let now = self.now;
        self.recorder.faults[record as usize]
            .detected
            .get_or_insert(now);
        let target = &mut self.servers[server as usize];
        target.drain_cause = Some(cause);
        self.balancer.deregister(server);
        self.queue
            .push(self.now.saturating_add(drain), Event::DrainEnd(server));
        record
    }

    pub(super) fn on_drain_end(&mut self, server: u32) {
        let target = &self.servers[server as usize];
        let condition = target.condition;
        if condition == Condition::Retired {
            return;
        }
        let cause = target.drain_cause.unwrap_or(LossCause::Drain);
        if matches!(condition, Condition::Up | Condition::Hung) {
            self.lose_sessions_on(server, cause);
            if condition == Condition::Up {
                self.leave_service(server);
            }
            self.fail_held_requests(server);
        }
        // A removal without a replacement is complete when the server is gone; a replaced one
        // recovers when its replacement starts.
        let record = self.servers[server as usize].open_fault.take();
        if let Some(record) = record
            && cause == LossCause::ScaleIn
        {
            self.close_fault_record(record);
        }
        let target = &mut self.servers[server as usize];
        target.wipe_memory(&mut self.lingering_chunks);
        target.condition = Condition::Retired;
        self.replica_map.stale = true;
        self.balancer.detach(server);
        self.recorder.servers_provisioned.add(self.now, -1);
    }

    pub(super) fn on_rolling_batch(&mut self, fault: u32, batch: u32) {
        let Fault::RollingRestart {
            batch: size,
            interval,
            drain,
            startup,
            ..
        } = self.scenario.faults[fault as usize]
        else {
            return;
        };
        if batch == 0 {
            // The deploy replaces the fleet as it is when it begins, in index order.
            self.rollouts[fault as usize] = self.fleet();
        }
        let plan = &self.rollouts[fault as usize];
        let first = (batch as usize * size as usize).min(plan.len());
        let last = (first + size as usize).min(plan.len());
        let chunk: Vec<u32> = plan[first..last].to_vec();
        let more = last < plan.len();
        for old in chunk {
            // A server removed since the deploy began (scaled in, or already on its way out)
            // has nothing left to replace.
            let server = &self.servers[old as usize];
            if server.condition == Condition::Retired || server.drain_cause.is_some() {
                continue;
            }
            let record = self.drain_server(old, drain, fault, LossCause::Drain);
            self.launch_server(startup, Some(record));
        }
        if more {
            self.queue.push(
                self.now.saturating_add(interval),
                Event::RollingBatch {
                    fault,
                    batch: batch + 1,
                },
            );
        }
    }

    /// The servers that make up the fleet: not terminated and not on their way out.
    fn fleet(&self) -> Vec<u32> {
        (0..self.servers.len() as u32)
            .filter(|&s| {
                let server = &self.servers[s as usize];
                server.condition != Condition::Retired && server.drain_cause.is_none()
            })
            .collect()
    }

    /// Grows the fleet to `target` servers with new ones, or shrinks it by draining the newest.
    fn resize_fleet(&mut self, target: u32, drain: SimTime, startup: SimTime, fault: u32) {
        let fleet = self.fleet();
        let current = fleet.len() as u32;
        if target > current {
            for _ in current..target {
                let record = self.open_fault_record(fault, None);
                let server = self.launch_server(startup, Some(record));
                self.recorder.faults[record as usize].server = Some(server);
            }
        } else {
            for &server in fleet.iter().rev().take((current - target) as usize) {
                self.drain_server(server, drain, fault, LossCause::ScaleIn);
            }
        }
    }

    /// A Kubernetes-HPA-like control loop: desired = ceil(fleet × utilisation / target) outside a
    /// 10% tolerance (kube-controller-manager's default); a scale-down takes the highest
    /// recommendation of the stabilization window.
    pub(super) fn on_autoscale_tick(&mut self) {
        let Some(autoscale) = &self.scenario.autoscale else {
            return;
        };
        let busy = self.recorder.busy_workers.area(self.now);
        let capacity = self.recorder.worker_capacity.area(self.now);
        let (previous_busy, previous_capacity) =
            std::mem::replace(&mut self.autoscale_areas, (busy, capacity));
        let next = self.now.saturating_add(autoscale.sync_period);
        if next <= self.end {
            self.queue.push(next, Event::AutoscaleTick);
        }
        if capacity == previous_capacity {
            return; // nothing was serving during the period: no measurement
        }
        let period = autoscale.sync_period.nanos() as f64;
        let mean_busy = (busy - previous_busy) as f64 / period;
        let current = self.fleet().len() as u32;
        // As the HPA does when scaling up, servers not yet ready count as idle: the fleet's
        // utilisation is the busy workers over every fleet server's workers. Without this, each
        // sync during a startup would add servers for the same load again.
        let workers = f64::from(current) * f64::from(self.topology.servers.workers);
        let utilization = mean_busy / workers;
        let ratio = utilization / autoscale.target_utilization;
        let mut desired = if (ratio - 1.0).abs() <= 0.1 {
            current
        } else {
            (f64::from(current) * ratio).ceil() as u32
        };
        desired = desired.clamp(autoscale.min, autoscale.max);
        let window_start = self.now.saturating_sub(autoscale.scale_down_stabilization);
        self.recommendations.push_back((self.now, desired));
        while self
            .recommendations
            .front()
            .is_some_and(|(at, _)| *at < window_start)
        {
            self.recommendations.pop_front();
        }
        if desired < current {
            let highest = self.recommendations.iter().map(|(_, d)| *d).max();
            desired = highest.unwrap_or(desired).min(current);
        }
        if desired != current {
            let autoscaler = self.scenario.faults.len() as u32;
            self.resize_fleet(desired, autoscale.drain, autoscale.startup, autoscaler);
        }
    }
}
