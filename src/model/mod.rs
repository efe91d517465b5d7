//! The simulated world: clients and their sessions, the balancer, servers, the state store and
//! faults. One [`World`] owns every component; handlers are methods taking `&mut self` that update
//! state and schedule follow-up events. A request's path:
//!
//! ```text
//! client ─net─▶ balancer ─net─▶ server queue ─▶ worker: [store read] + demand + [store write] ─▶ net ─▶ client
//! ```

mod balancer;
mod client;
mod fault;
mod server;
mod store;

use crate::engine::rng::{self, StreamRng};
use crate::engine::{EventQueue, Handle, SimTime, Slab};
use crate::metrics::{Counters, RunResult, TimeAverage, new_latency_histogram};
use crate::scenario::{Dist, Scenario, State, Topology};
use balancer::Balancer;
use hdrhistogram::Histogram;
use server::Server;
use store::StoreStation;

/// Everything that can happen. Small and `Copy`; the data lives in the world's slabs.
#[derive(Clone, Copy, Debug)]
enum Event {
    SessionArrival,
    /// The client sends its session's next request (after the think time).
    SendRequest(Handle),
    AtBalancer(Handle),
    AtServer(Handle),
    /// The request's compute step (verification + service demand) finished on its worker.
    ComputeDone(Handle),
    AtStore(Handle),
    /// A store worker finished an operation (frees the worker even if the request is gone).
    StoreOpDone(Handle),
    /// The store's answer is back at the server.
    StoreReply(Handle),
    /// A response (or an error) reaches the client.
    AtClient(Handle),
    ClientTimeout(Handle),
    HealthCheck(u32),
    Fault(u32),
    Restart(u32),
    /// The measurement window opens: sessions alive now are measured from here on.
    WarmupEnd,
    /// An idle session's state times out on `server` (if it is still the same incarnation).
    StateExpired {
        server: u32,
        incarnation: u32,
    },
}

/// Where a request is on its way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    ToBalancer,
    ToServer,
    Queued,
    StoreRead,
    Compute,
    StoreWrite,
    /// On the way back to the client with `Request::outcome`.
    Returning,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Rejected,
    Failed,
}

struct Request {
    session: Handle,
    /// The session's workload id (see [`Session::id`]), for keyed draws.
    session_id: u64,
    /// Position of the request within its session (0-based).
    index: u32,
    /// Key for this request's non-workload draws (network, store): differs per session life.
    draw_key: u64,
    sent_at: SimTime,
    in_window: bool,
    phase: Phase,
    server: u32,
    outcome: Outcome,
    /// The client stopped waiting; the request still runs to completion on the servers.
    timed_out: bool,
    demand: SimTime,
    writes_state: bool,
}

struct Session {
    /// Workload identity (arrival ordinal): keys every workload draw, the same in every topology.
    id: u64,
    /// How many times the client logged in again after losing this session.
    life: u32,
    requests: u32,
    /// Requests below this index were already sent by an earlier, lost life of the session.
    redo_until: u32,
    next_request: u32,
    started_at: SimTime,
    in_window: bool,
    /// The balancer's sticky target.
    home: Option<u32>,
    /// The server and incarnation holding this session's state (`state = "server"`).
    state_at: Option<(u32, u32)>,
    lost: bool,
}

/// Per-purpose stream seeds, computed once per run.
struct Seeds {
    requests_per_session: u64,
    think_time: u64,
    service_time: u64,
    request_bytes: u64,
    response_bytes: u64,
    state_write: u64,
    net_request_in: u64,
    net_to_server: u64,
    net_response_to_balancer: u64,
    net_response_to_client: u64,
    net_to_store_read: u64,
    net_from_store_read: u64,
    net_to_store_write: u64,
    net_from_store_write: u64,
    store_read: u64,
    store_write: u64,
    verify: u64,
}

impl Seeds {
    fn new(seed: u64, replication: u32) -> Seeds {
        let s = |name| rng::stream_seed(seed, replication, name);
        Seeds {
            requests_per_session: s("workload.requests_per_session"),
            think_time: s("workload.think_time"),
            service_time: s("workload.service_time"),
            request_bytes: s("workload.request_bytes"),
            response_bytes: s("workload.response_bytes"),
            state_write: s("workload.state_write"),
            net_request_in: s("network.client_balancer.request"),
            net_to_server: s("network.balancer_server.request"),
            net_response_to_balancer: s("network.balancer_server.response"),
            net_response_to_client: s("network.client_balancer.response"),
            net_to_store_read: s("network.server_store.read.request"),
            net_from_store_read: s("network.server_store.read.response"),
            net_to_store_write: s("network.server_store.write.request"),
            net_from_store_write: s("network.server_store.write.response"),
            store_read: s("store.read"),
            store_write: s("store.write"),
            verify: s("token.verify"),
        }
    }
}

/// Level trackers and accumulators filled during the run.
struct Recorder {
    counters: Counters,
    latency: Histogram<u64>,
    latency_sum_ns: f64,
    ok_in_window: u64,
    busy_workers: TimeAverage,
    busy_store_workers: TimeAverage,
    active_sessions: TimeAverage,
    session_duration_sum_secs: f64,
    peak_session_bytes: f64,
    bytes_total: f64,
    /// (latency sum in ns, count) of ok requests per second of simulated time, when a warm-up
    /// pilot asks for it.
    per_second: Option<Vec<(f64, u64)>>,
}

pub struct World<'s> {
    scenario: &'s Scenario,
    topology: &'s Topology,
    replication: u32,
    now: SimTime,
    warmup: SimTime,
    end: SimTime,
    queue: EventQueue<Event>,
    seeds: Seeds,
    arrivals: StreamRng,
    /// 1 / sessions_per_second, in ns: a multiply per arrival instead of a divide.
    mean_arrival_gap_ns: f64,
    balancer: Balancer,
    servers: Vec<Server>,
    store: Option<StoreStation>,
    sessions: Slab<Session>,
    requests: Slab<Request>,
    next_session_id: u64,
    recorder: Recorder,
    events: u64,
    requests_simulated: u64,
}

/// Runs one topology of a scenario for one replication.
pub fn simulate(scenario: &Scenario, topology: &Topology, replication: u32) -> RunResult {
    let mut world = World::new(scenario, topology, replication);
    world.run();
    world.finish()
}

/// The mean latency (ms) of ok requests in each second of a run, for warm-up detection; seconds
/// without a completed request are left out.
pub fn latency_per_second(scenario: &Scenario, topology: &Topology, replication: u32) -> Vec<f64> {
    let mut world = World::new(scenario, topology, replication);
    world.recorder.per_second = Some(Vec::new());
    world.run();
    let seconds = world.recorder.per_second.take().unwrap_or_default();
    seconds
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(sum, count)| sum / count as f64 / 1e6)
        .collect()
}

impl<'s> World<'s> {
    fn new(scenario: &'s Scenario, topology: &'s Topology, replication: u32) -> World<'s> {
        let seed = scenario.seed;
        let servers = topology.servers.count;
        let store = match &topology.state {
            State::Store { store, .. } => Some(StoreStation::new(store)),
            _ => None,
        };
        World {
            scenario,
            topology,
            replication,
            now: SimTime::ZERO,
            warmup: scenario.warmup,
            end: scenario.duration,
            queue: EventQueue::new(),
            seeds: Seeds::new(seed, replication),
            arrivals: rng::stream(seed, replication, "workload.arrivals"),
            mean_arrival_gap_ns: 1e9 / scenario.workload.sessions_per_second,
            balancer: Balancer::new(
                &topology.balancer,
                servers,
                rng::stream(seed, replication, "balancer"),
            ),
            servers: (0..servers).map(|_| Server::new()).collect(),
            store,
            sessions: Slab::new(),
            requests: Slab::new(),
            next_session_id: 0,
            recorder: Recorder {
                counters: Counters::default(),
                latency: new_latency_histogram(),
                latency_sum_ns: 0.0,
                ok_in_window: 0,
                busy_workers: TimeAverage::new(scenario.warmup),
                busy_store_workers: TimeAverage::new(scenario.warmup),
                active_sessions: TimeAverage::new(scenario.warmup),
                session_duration_sum_secs: 0.0,
                peak_session_bytes: 0.0,
                bytes_total: 0.0,
                per_second: None,
            },
            events: 0,
            requests_simulated: 0,
        }
    }

    fn schedule_initial_events(&mut self) {
        self.schedule_next_arrival();
        self.schedule_health_checks();
        if self.warmup > SimTime::ZERO {
            self.queue.push(self.warmup, Event::WarmupEnd);
        }
        for (index, fault) in self.scenario.faults.iter().enumerate() {
            self.queue.push(fault.at(), Event::Fault(index as u32));
        }
    }

    /// Probes only matter when a server can go down: without faults every probe would find every
    /// server healthy, so none is simulated (each would only make the event heap deeper).
    fn schedule_health_checks(&mut self) {
        if self.scenario.faults.is_empty() {
            return;
        }
        let interval = self.topology.balancer.health_check.interval;
        let count = self.servers.len() as u64;
        for server in 0..self.servers.len() as u32 {
            // Stagger the probes across the interval, as independent probers would be.
            let offset = interval.nanos() / count * (u64::from(server) + 1);
            self.queue.push(SimTime(offset), Event::HealthCheck(server));
        }
    }

    fn run(&mut self) {
        self.schedule_initial_events();
        while let Some((time, event)) = self.queue.pop() {
            if time > self.end {
                break;
            }
            self.now = time;
            self.events += 1;
            self.handle(event);
        }
        self.now = self.end;
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::SessionArrival => self.on_session_arrival(),
            Event::SendRequest(session) => self.send_request(session),
            Event::AtBalancer(request) => self.on_balancer(request),
            Event::AtServer(request) => self.on_server(request),
            Event::ComputeDone(request) => self.on_compute_done(request),
            Event::AtStore(request) => self.on_store(request),
            Event::StoreOpDone(request) => self.on_store_op_done(request),
            Event::StoreReply(request) => self.on_store_reply(request),
            Event::AtClient(request) => self.on_client(request),
            Event::ClientTimeout(request) => self.on_client_timeout(request),
            Event::HealthCheck(server) => self.on_health_check(server),
            Event::Fault(index) => self.on_fault(index as usize),
            Event::Restart(server) => self.on_restart(server),
            Event::WarmupEnd => self.on_warmup_end(),
            Event::StateExpired {
                server,
                incarnation,
            } => self.on_state_expired(server, incarnation),
        }
    }

    /// Schedules `event` after `delay`; a zero delay runs it at once, which saves a queue round
    /// trip on zero-latency hops (events at the same instant would run next anyway).
    #[inline(always)]
    fn after(&mut self, delay: SimTime, event: Event) {
        if delay == SimTime::ZERO {
            // Inlined at each call site, where `event` is known: this match folds away into a
            // direct call, sparing the full dispatch in `handle`.
            match event {
                Event::AtBalancer(request) => self.on_balancer(request),
                Event::AtServer(request) => self.on_server(request),
                Event::AtStore(request) => self.on_store(request),
                Event::StoreReply(request) => self.on_store_reply(request),
                Event::AtClient(request) => self.on_client(request),
                other => self.handle(other),
            }
        } else {
            self.queue.push(self.now.saturating_add(delay), event);
        }
    }

    /// Draws from `dist` for the entity keyed `(a, b)` in the stream `seed`.
    fn draw(dist: &Dist, seed: u64, a: u64, b: u64) -> f64 {
        match dist.as_constant() {
            Some(value) => value,
            None => dist.sample(&mut rng::keyed(seed, a, b)),
        }
    }

    fn draw_time(dist: &Dist, seed: u64, a: u64, b: u64) -> SimTime {
        match dist.as_constant_time() {
            Some(time) => time,
            None => SimTime::from_nanos_f64(dist.sample(&mut rng::keyed(seed, a, b))),
        }
    }

    fn in_window(&self) -> bool {
        self.now >= self.warmup
    }

    fn finish(mut self) -> RunResult {
        let end = self.end;
        let in_flight = self
            .requests
            .iter()
            .filter(|(_, r)| r.in_window && !r.timed_out)
            .count() as u64;
        let active = self
            .sessions
            .iter()
            .filter(|(_, s)| s.in_window && !s.lost)
            .count() as u64;
        let rec = &mut self.recorder;
        rec.counters.in_flight = in_flight;
        rec.counters.sessions_active = active;
        let topology = self.topology;
        RunResult {
            topology: topology.name.clone(),
            replication: self.replication,
            counters: rec.counters.clone(),
            latency: std::mem::replace(&mut rec.latency, new_latency_histogram()),
            latency_sum_ns: rec.latency_sum_ns,
            window_secs: end.saturating_sub(self.warmup).as_secs_f64(),
            ok_in_window: rec.ok_in_window,
            mean_busy_workers: rec.busy_workers.average(end),
            worker_capacity: f64::from(topology.servers.count)
                * f64::from(topology.servers.workers),
            mean_busy_store_workers: rec.busy_store_workers.average(end),
            store_capacity: self.store.as_ref().map_or(0.0, |s| f64::from(s.workers())),
            mean_active_sessions: rec.active_sessions.average(end),
            session_duration_sum_secs: rec.session_duration_sum_secs,
            peak_session_bytes: rec.peak_session_bytes,
            bytes_total: rec.bytes_total,
            events: self.events,
            requests_simulated: self.requests_simulated,
        }
    }
}
