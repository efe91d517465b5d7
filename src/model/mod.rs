//! The simulated world: clients and their sessions, the balancer, servers, the state store and
//! faults. One [`World`] owns every component; handlers are methods taking `&mut self` that update
//! state and schedule follow-up events. A request's path:
//!
//! ```text
//! client ─net─▶ balancer ─net─▶ server queue ─▶ worker: [store read] + demand + [store write] ─▶ net ─▶ client
//! ```
//!
//! A client may retry a failed attempt (client.rs); servers come and go through faults, deploys
//! and the autoscaler (fault.rs), and the balancer only learns of it through health checks.

mod arrivals;
mod balancer;
mod balancer_retry;
mod client;
mod extras;
mod fault;
mod gray;
mod limits;
mod recency;
mod saturation;
mod server;
mod store;
mod trace;
mod zone;

use crate::engine::rng::{self, StreamRng};
use crate::engine::{EventQueue, ExpiryChunks, Handle, SimTime, Slab};
use crate::metrics::series::{Levels, SeriesRecorder};
use crate::metrics::{Counters, LatencyRecorder, RunResult, ServerRow, TimeAverage, Traffic};
use crate::scenario::{Arrivals, Dist, Fault, HourlyUse, Replication, Scenario, State, Topology};
use arrivals::ArrivalProcess;
use balancer::Balancer;
pub use client::backoff_wait;
pub use limits::{GUARD_INTERVAL, Limits, Stopped};
use server::{Condition, Server};
use std::collections::HashMap;
use std::num::NonZeroU32;
use store::StoreStation;

/// Everything that can happen. Small and `Copy`; the data lives in the world's slabs.
#[derive(Clone, Copy, Debug, Default)]
enum Event {
    /// (The default only fills the event queue's unused slots.)
    #[default]
    SessionArrival,
    /// A closed-loop user starts its session of this id.
    UserSession(u64),
    /// A replayed log's session of this number starts.
    LogSession(u64),
    /// The client sends its session's next request (after the think time).
    SendRequest(Handle),
    /// The client sends another attempt of its session's current request (after the backoff).
    Retry(Handle),
    AtBalancer(Handle),
    /// The balancer sends a failed try again: to another server when `redispatch`.
    BalancerRetry {
        request: Handle,
        redispatch: bool,
    },
    AtServer(Handle),
    /// The balancer's `server_timeout` for a try on a hung server.
    ServerTimeout(Handle),
    /// The request's compute step (verification + service demand) finished on its worker.
    ComputeDone(Handle),
    AtStore(Handle),
    /// A store worker finished an operation (frees the worker even if the request is gone),
    /// unless an outage reset the store since (`epoch`).
    StoreOpDone {
        request: Handle,
        epoch: u32,
    },
    /// The store's answer is back at the server.
    StoreReply(Handle),
    /// A response (or an error) reaches the client.
    AtClient(Handle),
    ClientTimeout(Handle),
    HealthCheck(u32),
    /// A probe sent `timeout` ago to a hung server got no answer.
    ProbeTimedOut(u32),
    Fault(u32),
    /// A fault with a duration of its own (`slow`, `pauses`) ends.
    FaultEnd(u32),
    /// A server's outlier ejection is over.
    Unejected(u32),
    /// A hedge reaches the balancer (routed away from the first attempt's server).
    HedgeAtBalancer(Handle),
    /// `client.hedge_after` has passed since request `index` of the session was sent.
    Hedge {
        session: Handle,
        index: u32,
    },
    Restart(u32),
    /// Random crashes (fault `fault`): the server fails, or its repair ends.
    RandomFailure {
        fault: u32,
        server: u32,
    },
    RandomRepair {
        fault: u32,
        server: u32,
    },
    /// A new server finished starting and joins the balancer.
    Started(u32),
    /// A draining server's drain ended: it is terminated.
    DrainEnd(u32),
    /// Batch `batch` of rolling restart `fault` begins.
    RollingBatch {
        fault: u32,
        batch: u32,
    },
    /// A store outage of this shard ends.
    StoreUp(u32),
    AutoscaleTick,
    /// The measurement window opens: sessions alive now are measured from here on.
    WarmupEnd,
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
    /// On a hung server: it will never be answered.
    BlackHoled,
    /// On the way back to the client with `Request::outcome`.
    Returning,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Rejected,
    Failed,
    StoreUnavailable,
    /// The client gave up waiting (never sent by a server: the client decides it).
    TimedOut,
}

/// Where a session's state must be fetched from before its next request is served, after its
/// home was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recovery {
    /// From a replica on another server (one server-to-server round trip).
    Replica,
    /// From the external store (a store read).
    Store,
}

/// One attempt of a request: the client's request is retried as new attempts. (`Copy`, as a
/// slab's values are: plain data, nothing to drop.)
#[derive(Clone, Copy)]
struct Request {
    session: Handle,
    /// The session's workload id (see [`Session::id`]), for keyed draws.
    session_id: u64,
    /// Position of the request within its session (0-based).
    index: u32,
    /// Key for this attempt's non-workload draws (network, store): differs per session life and
    /// attempt.
    draw_key: u64,
    /// When the client sent the first attempt of this request (client-seen latency).
    first_sent_at: SimTime,
    sent_at: SimTime,
    in_window: bool,
    phase: Phase,
    server: u32,
    outcome: Outcome,
    /// The client stopped waiting; the attempt still runs to completion on the servers.
    timed_out: bool,
    demand: SimTime,
    writes_state: bool,
    /// The session's state must be fetched (after a failover) before the work.
    fetch: Option<Recovery>,
    /// Tries the balancer made after the first (its retries of this attempt).
    balancer_tries: u8,
    /// Routed by affinity (its sticky home, or consistent hashing): retried on the same server.
    by_affinity: bool,
}

#[derive(Clone, Copy)]
struct Session {
    /// Workload identity (arrival ordinal): keys every workload draw, the same in every topology.
    id: u64,
    started_at: SimTime,
    /// The current request's first send.
    request_sent_at: SimTime,
    /// How many times the client logged in again after losing this session.
    life: u32,
    requests: u32,
    next_request: u32,
    /// The stamp of its last use (`recency.rs`), kept in the session's own cache line: a stamp
    /// in a table beside the slab was another memory read per request in a large model.
    touched: u32,
    /// The balancer's sticky target (`home()`), stored plus one so that it takes 4 bytes.
    home_plus_one: Option<NonZeroU32>,
    /// The server (plus one) and incarnation holding this session's state (`state = "server"`;
    /// `state_at()`): 8 bytes instead of 12.
    state_at_plus_one: Option<(NonZeroU32, u32)>,
    /// The current request's attempts so far (at most `client.max_attempts`, 100, and a hedge).
    attempts: u16,
    /// Yes-or-no facts, a bit each (`flags::*`, read and set by the methods named after them):
    /// six bools took six bytes of a record a large fleet holds a million of.
    flags: u8,
    /// Set when the home was lost but the state survives elsewhere.
    recovery: Option<Recovery>,
    // Fields only some topologies use (the previous backoff, the last write and its version)
    // live in `World::extras`, by slot; those only a lost session has, in `World::lost_in` and
    // `World::redo_until`.
}

/// The bits of `Session::flags`.
mod flags {
    /// The session started inside the measurement window.
    pub const IN_WINDOW: u8 = 1;
    pub const LOST: u8 = 1 << 1;
    /// A failed attempt of the current request waits for its retry.
    pub const RETRY_PENDING: u8 = 1 << 2;
    /// The current request is not settled yet (no answer won, no final failure).
    pub const AWAITING: u8 = 1 << 3;
    /// The current request has sent its hedge.
    pub const HEDGED: u8 = 1 << 4;
    /// The current request was first sent inside the window.
    pub const REQUEST_IN_WINDOW: u8 = 1 << 5;
}

/// A getter and a setter for each bit of `Session::flags`.
macro_rules! session_flags {
    ($($get:ident, $set:ident, $bit:path;)*) => {
        impl Session {
            $(
                #[inline(always)]
                fn $get(&self) -> bool {
                    self.flags & $bit != 0
                }

                #[inline(always)]
                fn $set(&mut self, on: bool) {
                    if on {
                        self.flags |= $bit;
                    } else {
                        self.flags &= !$bit;
                    }
                }
            )*
        }
    };
}

session_flags! {
    in_window, set_in_window, flags::IN_WINDOW;
    lost, set_lost, flags::LOST;
    retry_pending, set_retry_pending, flags::RETRY_PENDING;
    awaiting, set_awaiting, flags::AWAITING;
    hedged, set_hedged, flags::HEDGED;
    request_in_window, set_request_in_window, flags::REQUEST_IN_WINDOW;
}

impl Session {
    /// The balancer's sticky target.
    fn home(&self) -> Option<u32> {
        self.home_plus_one.map(|server| server.get() - 1)
    }

    fn set_home(&mut self, server: Option<u32>) {
        self.home_plus_one = server.and_then(plus_one);
    }

    /// The server and incarnation holding this session's state (`state = "server"`).
    fn state_at(&self) -> Option<(u32, u32)> {
        self.state_at_plus_one
            .map(|(server, incarnation)| (server.get() - 1, incarnation))
    }

    fn set_state_at(&mut self, at: Option<(u32, u32)>) {
        self.state_at_plus_one =
            at.and_then(|(server, incarnation)| Some((plus_one(server)?, incarnation)));
    }
}

/// A server's index plus one, never zero (fleets are far smaller than `u32::MAX`, so `+ 1`
/// cannot wrap; an add, not a saturating one, on the balancer's per-request path).
#[inline(always)]
fn plus_one(server: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(server + 1)
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
    net_replica: u64,
    backoff: u64,
    random_crashes: u64,
    probe_phase: u64,
    between_sessions: u64,
    pause_phase: u64,
    store_shard: u64,
    client_zone: u64,
    net_cross_zone: u64,
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
            net_replica: s("network.server_server"),
            probe_phase: s("balancer.health_check.phase"),
            backoff: s("client.backoff"),
            random_crashes: s("fault.random_crashes"),
            between_sessions: s("workload.between_sessions"),
            pause_phase: s("fault.pauses.phase"),
            store_shard: s("store.shard"),
            client_zone: s("client.zone"),
            net_cross_zone: s("network.cross_zone"),
        }
    }
}

/// Level trackers and accumulators filled during the run.
struct Recorder {
    counters: Counters,
    latency: LatencyRecorder,
    /// Per-attempt latency, kept only when clients retry (otherwise it equals `latency`).
    attempt_latency: Option<LatencyRecorder>,
    latency_sum_ns: f64,
    ok_in_window: u64,
    busy_workers: TimeAverage,
    /// Workers of the servers that are up (the capacity utilisation is measured against).
    worker_capacity: TimeAverage,
    busy_store_workers: TimeAverage,
    active_sessions: TimeAverage,
    servers_up: TimeAverage,
    servers_provisioned: TimeAverage,
    /// Each level's area when the measurement window opened, in the order of [`Recorder::levels`].
    areas_at_warmup: [i128; 6],
    session_duration_sum_secs: f64,
    traffic: Traffic,
    /// Each server's tries in the window, added up bucket by bucket (a bucket that ends after
    /// the warm-up counts).
    dispatched_in_window: Vec<u64>,
    /// (latency sum in ns, count) of ok requests per second of simulated time, when a warm-up
    /// pilot asks for it.
    per_second: Option<Vec<(f64, u64)>>,
    series: SeriesRecorder,
    faults: Vec<FaultRecord>,
    /// Fault records not yet recovered; while any is, responses count as "during faults".
    open_faults: u32,
    /// Latency of ok requests completed while a fault was open, and after the first fault while
    /// none was (both within the window).
    latency_during_faults: LatencyRecorder,
    latency_after_faults: LatencyRecorder,
    fault_started: bool,
    /// Retries sent, against the retry budget (of `World::requests_simulated`).
    retries_sent: u64,
}

impl Recorder {
    fn levels(&self) -> [&TimeAverage; 6] {
        [
            &self.busy_workers,
            &self.worker_capacity,
            &self.busy_store_workers,
            &self.active_sessions,
            &self.servers_up,
            &self.servers_provisioned,
        ]
    }
}

/// The optional steps of a request in this topology.
#[derive(Clone, Copy, Debug)]
struct Needs {
    /// Session state in server memory (placement, release, failover).
    server_state: bool,
    /// A store read may precede the work (a store topology, or a backup read after a failover).
    store_path: bool,
    /// State replication may add time to the work.
    replication: bool,
    /// A token is verified on the worker.
    verification: bool,
    /// A compute step may take more than its demand: verification, replication, or a gray
    /// failure (one test on the request path for all three).
    compute_extras: bool,
    /// A scenario with `slow` or `pauses` faults.
    gray: bool,
    /// The balancer ejects outliers: it watches every answer.
    outlier: bool,
    /// A scenario with `partition` faults: the paths that cross a cut test for it.
    partitions: bool,
    /// `client.hedge_after`: a request may have two attempts out, and the later answer is
    /// discarded.
    hedging: bool,
    /// More than one zone: hops may cross zones.
    zones: bool,
    /// The balancer prefers the client's zone.
    zone_affinity: bool,
    /// An answer's way back may be cut, watched or cross zones: partitions, outlier ejection
    /// or zones (one test on the answer path for all three).
    answer_extras: bool,
}

/// One row of faults.csv while it is being filled.
struct FaultRecord {
    /// Index into the scenario's faults (the autoscaler is one past the last).
    fault: u32,
    server: Option<u32>,
    start: SimTime,
    detected: Option<SimTime>,
    recovered: Option<SimTime>,
    requests_failed: u64,
    sessions_lost: u64,
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
    /// How the next session start is found (model/arrivals.rs).
    arrival_process: ArrivalProcess,
    /// 1 / rate, in ns, for a constant rate (a multiply per arrival instead of a divide); NaN
    /// for any other arrival process.
    constant_gap_ns: f64,
    /// Users start sessions when theirs end (`workload.users`).
    closed_loop: bool,
    /// The log being replayed (`workload.trace`).
    replay: Option<Box<trace::TraceReplay>>,
    /// Where each request sent goes, when the run writes a request log (`run --request-log`).
    request_log: Option<&'s mut dyn FnMut(LoggedRequest)>,
    /// A replay or a request log looks at each attempt (one flag for both on the hot path).
    request_hooks: bool,
    balancer: Balancer,
    servers: Vec<Server>,
    /// The chunks the servers' idle states' expiry times are stored in, shared by all of them.
    lingering_chunks: ExpiryChunks,
    /// The store's shards (empty without a store).
    stores: Vec<StoreStation>,
    sessions: Slab<Session>,
    /// The faults.csv row of the fault that lost a session, charged with the requests that fail
    /// for it, while the session lives (few sessions are lost, and a record of a million holds
    /// none).
    lost_in: HashMap<Handle, u32>,
    /// A session logged in again after a loss replays its requests from the first; those below
    /// this index were already sent by an earlier life (so the map holds only such sessions).
    redo_until: HashMap<Handle, u32>,
    requests: Slab<Request>,
    next_session_id: u64,
    recorder: Recorder,
    /// Whether anything can take a server away (health checks are simulated only then).
    servers_can_fail: bool,
    /// What the topology needs per request, decided once so the common path skips the rest.
    needs: Needs,
    /// What drawing a request owes the topology's state (client.rs).
    state_draws: client::StateDraws,
    /// When the current timeseries bucket ends (a copy, checked before every event).
    next_bucket: SimTime,
    /// Sessions a server's memory holds (`memory_mb / session_bytes`), when it is limited.
    memory_capacity: Option<u64>,
    /// The order of use of the sessions homed on each server, when memory is limited.
    recency: recency::Recency,
    /// Per-session fields kept only when the topology uses them.
    extras: extras::Extras,
    /// Copies of each session kept in other servers' memory (replication's replicas).
    replica_copies: u32,
    /// Which servers hold whose replicas (model/zone.rs).
    replica_map: zone::ReplicaMap,
    /// The zone whose servers are crashing at this instant (a `zone_outage`).
    zone_down: Option<u32>,
    /// Overload detection (model/saturation.rs): each server's and store shard's watch, and
    /// what was found saturated first.
    server_watches: Vec<saturation::Watch>,
    store_watches: Vec<saturation::Watch>,
    saturations: saturation::Saturations,
    /// The servers each rolling restart replaces, in order (filled at its first batch).
    rollouts: Vec<Vec<u32>>,
    /// The autoscaler's recent recommendations (time, servers), for the scale-down window.
    recommendations: std::collections::VecDeque<(SimTime, u32)>,
    /// The faults.csv row of a store outage in a topology without a store.
    storeless_outage: Option<u32>,
    /// In a topology without a store, store outages begun and not yet over (its row closes
    /// when the last one ends).
    storeless_outages_open: u32,
    /// Busy and capacity areas at the previous autoscaler tick.
    autoscale_areas: (i128, i128),
    events: u64,
    requests_simulated: u64,
    /// What the run may use, and the state of its checks (model/limits.rs).
    limits: &'s Limits,
    guard: limits::Guard,
    /// Why the run stopped early, if it did.
    stopped: Option<Stopped>,
}

/// The session memory a server holds at steady state, by Little's law: sessions arrive at the
/// measured rate and each keeps its state for its life plus `session_ttl`, in as many copies as
/// replication makes (1 + replicas for sync, 2 for async), spread over the servers up. What a
/// run shows at its end is less when the run is shorter than a session's state lives; this is
/// what a server must hold after hours. Zero where servers keep no sessions.
fn steady_session_memory(topology: &Topology, run: &RunResult) -> f64 {
    let State::Server {
        session_bytes,
        session_ttl,
        replication,
        ..
    } = &topology.state
    else {
        return 0.0;
    };
    let copies = 1.0 + f64::from(replication.peer_copies());
    let c = &run.counters;
    let arrival_rate = c.sessions_started as f64 / run.window_secs;
    let life = run.session_duration_sum_secs / c.sessions_completed.max(1) as f64;
    let held = arrival_rate * (life + session_ttl.as_secs_f64());
    held * session_bytes * copies / run.mean_servers_up.max(1.0)
}

/// Runs one topology of a scenario for one replication, with no limit.
pub fn simulate(scenario: &Scenario, topology: &Topology, replication: u32) -> RunResult {
    let unlimited = Limits::unlimited();
    match simulate_within(scenario, topology, replication, &unlimited) {
        Ok(result) => result,
        Err(stopped) => unreachable!("an unlimited run cannot stop early: {stopped}"),
    }
}

/// [`simulate`] within `limits`: stops early, with the reason, when the run outgrows them.
pub fn simulate_within(
    scenario: &Scenario,
    topology: &Topology,
    replication: u32,
    limits: &Limits,
) -> Result<RunResult, Stopped> {
    let mut world = World::new(scenario, topology, replication, limits);
    world.run()?;
    Ok(world.finish())
}

/// One request of a run as a log line: when the client sent it (seconds), its session, and the
/// service time it asks of a worker (seconds); what `workload.trace` and `statesim fit` read.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedRequest {
    pub at: f64,
    /// The session's number and, after a relogin, which life of it.
    pub session: u64,
    pub life: u32,
    pub service: f64,
}

/// Runs one topology of a scenario for one replication and hands each request the clients send
/// (first attempts, in time order) to `log`.
pub fn simulate_with_request_log(
    scenario: &Scenario,
    topology: &Topology,
    replication: u32,
    limits: &Limits,
    log: &mut dyn FnMut(LoggedRequest),
) -> Result<RunResult, Stopped> {
    let mut world = World::new(scenario, topology, replication, limits);
    world.request_log = Some(log);
    world.request_hooks = true;
    world.run()?;
    world.request_log = None;
    Ok(world.finish())
}

/// The mean latency (ms) of ok requests in each second of a run, for warm-up detection; seconds
/// without a completed request are left out.
pub fn latency_per_second(
    scenario: &Scenario,
    topology: &Topology,
    replication: u32,
    limits: &Limits,
) -> Result<Vec<f64>, Stopped> {
    let mut world = World::new(scenario, topology, replication, limits);
    world.recorder.per_second = Some(Vec::new());
    world.run()?;
    let seconds = world.recorder.per_second.take().unwrap_or_default();
    Ok(seconds
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(sum, count)| sum / count as f64 / 1e6)
        .collect())
}

/// Session slots beyond which the calendar's next bucket is warmed (see [`warm`]):
/// about a second-level cache. Smaller models find their sessions in the caches anyway, and the
/// scale benchmark at k = 1 (576 KB of sessions) ran 2.3% more instructions warming them.
const WARM_FROM_BYTES: usize = 1 << 20;

/// Starts loading what an event from the calendar will touch when it fires (see
/// `World::warm_next_bucket`): its session or its request. In a large model a session is one of
/// a million and in no cache: reading its line was 60% of the event loop's time at k = 100 on
/// the scale benchmark. A reply's session is found through its request now (a read that may
/// miss too, but requests in flight are few).
fn warm(sessions: &Slab<Session>, requests: &Slab<Request>, event: &Event) {
    match *event {
        Event::SendRequest(session) | Event::Retry(session) => sessions.prefetch(session),
        Event::AtClient(request) => {
            if let Some(request) = requests.get(request) {
                sessions.prefetch(request.session);
            }
        }
        Event::AtBalancer(request) | Event::AtServer(request) | Event::ComputeDone(request) => {
            requests.prefetch(request);
        }
        _ => {}
    }
}

impl<'s> World<'s> {
    fn new(
        scenario: &'s Scenario,
        topology: &'s Topology,
        replication: u32,
        limits: &'s Limits,
    ) -> World<'s> {
        let seed = scenario.seed;
        let servers = topology.servers.count;
        let stores: Vec<StoreStation> = topology
            .store()
            .map(|config| {
                (0..config.shards)
                    .map(|_| StoreStation::new(config))
                    .collect()
            })
            .unwrap_or_default();
        let memory_capacity = match (&topology.state, topology.servers.memory_mb) {
            (State::Server { session_bytes, .. }, Some(memory_mb)) if *session_bytes > 0.0 => {
                Some((memory_mb * 1024.0 * 1024.0 / session_bytes).floor() as u64)
            }
            _ => None,
        };
        let cache = match &topology.state {
            State::Store { cache, .. } => cache.as_ref(),
            _ => None,
        };
        let state_draws = client::StateDraws::of(&topology.state);
        let mut world = World {
            scenario,
            topology,
            replication,
            now: SimTime::ZERO,
            warmup: scenario.warmup,
            end: scenario.duration,
            queue: EventQueue::new(),
            seeds: Seeds::new(seed, replication),
            arrivals: rng::stream(seed, replication, "workload.arrivals"),
            arrival_process: ArrivalProcess::new(&scenario.workload.arrivals),
            constant_gap_ns: match scenario.workload.arrivals {
                Arrivals::Constant {
                    sessions_per_second,
                } => 1e9 / sessions_per_second,
                _ => f64::NAN,
            },
            closed_loop: matches!(scenario.workload.arrivals, Arrivals::Users { .. }),
            request_log: None,
            request_hooks: matches!(scenario.workload.arrivals, Arrivals::Trace(_)),
            replay: match &scenario.workload.arrivals {
                Arrivals::Trace(log) => Some(Box::new(trace::TraceReplay::new(log))),
                _ => None,
            },
            balancer: Balancer::new(
                &topology.balancer,
                servers,
                &topology.servers.zones,
                rng::stream(seed, replication, "balancer"),
            ),
            servers: (0..servers).map(|_| Server::new(cache)).collect(),
            lingering_chunks: ExpiryChunks::default(),
            stores,
            sessions: Slab::new(),
            lost_in: HashMap::new(),
            redo_until: HashMap::new(),
            requests: Slab::new(),
            next_session_id: 0,
            recorder: Recorder {
                counters: Counters::default(),
                latency: LatencyRecorder::new(),
                attempt_latency: (scenario.client.max_attempts > 1).then(LatencyRecorder::new),
                latency_sum_ns: 0.0,
                ok_in_window: 0,
                busy_workers: TimeAverage::new(),
                worker_capacity: TimeAverage::new(),
                busy_store_workers: TimeAverage::new(),
                active_sessions: TimeAverage::new(),
                servers_up: TimeAverage::new(),
                servers_provisioned: TimeAverage::new(),
                areas_at_warmup: [0; 6],
                session_duration_sum_secs: 0.0,
                traffic: Traffic::default(),
                dispatched_in_window: Vec::new(),
                per_second: None,
                series: SeriesRecorder::new(scenario.bucket, scenario.duration),
                faults: Vec::new(),
                open_faults: 0,
                latency_during_faults: LatencyRecorder::new(),
                latency_after_faults: LatencyRecorder::new(),
                fault_started: false,
                retries_sent: 0,
            },
            servers_can_fail: !scenario.faults.is_empty() || scenario.autoscale.is_some(),
            state_draws,
            needs: Needs {
                server_state: matches!(topology.state, State::Server { .. }),
                store_path: matches!(topology.state, State::Store { .. })
                    || matches!(
                        topology.state,
                        State::Server {
                            replication: Replication::StoreBackup(_),
                            ..
                        }
                    ),
                replication: matches!(state_draws, client::StateDraws::Replicated { .. }),
                verification: matches!(state_draws, client::StateDraws::Token { .. }),
                compute_extras: false,
                gray: scenario.faults.iter().any(|f| {
                    matches!(
                        f,
                        Fault::Slow { .. } | Fault::Pauses { .. } | Fault::Partition { .. }
                    )
                }),
                outlier: topology.balancer.outlier.is_some(),
                partitions: scenario
                    .faults
                    .iter()
                    .any(|f| matches!(f, Fault::Partition { .. })),
                hedging: scenario.client.hedge_after.is_some(),
                zones: topology.servers.zones.count > 1,
                zone_affinity: topology.balancer.zone_affinity && topology.servers.zones.count > 1,
                answer_extras: false,
            },
            next_bucket: scenario.bucket,
            memory_capacity,
            recency: recency::Recency::default(),
            extras: extras::Extras::new(
                memory_capacity.is_some(),
                scenario.client.max_attempts > 1,
                cache.is_some()
                    || matches!(
                        topology.state,
                        State::Server {
                            replication: Replication::Async { .. },
                            ..
                        }
                    ),
            ),
            replica_copies: match &topology.state {
                State::Server { replication, .. } => replication.peer_copies(),
                _ => 0,
            },
            replica_map: zone::ReplicaMap::unbuilt(),
            zone_down: None,
            server_watches: Vec::new(),
            store_watches: vec![
                saturation::Watch::default();
                topology.store().map_or(0, |s| s.shards as usize)
            ],
            saturations: saturation::Saturations::default(),
            rollouts: vec![Vec::new(); scenario.faults.len()],
            recommendations: std::collections::VecDeque::new(),
            autoscale_areas: (0, 0),
            storeless_outage: None,
            storeless_outages_open: 0,
            events: 0,
            requests_simulated: 0,
            limits,
            guard: limits::Guard::new(),
            stopped: None,
        };
        let up = i64::from(servers);
        let recorder = &mut world.recorder;
        recorder
            .worker_capacity
            .add(SimTime::ZERO, up * i64::from(topology.servers.workers));
        recorder.servers_up.add(SimTime::ZERO, up);
        recorder.servers_provisioned.add(SimTime::ZERO, up);
        let needs = &mut world.needs;
        needs.compute_extras = needs.verification || needs.replication || needs.gray;
        needs.answer_extras = needs.partitions || needs.outlier || needs.zones;
        if world.needs.gray {
            for server in 0..servers {
                world.install_pause_clock(server);
            }
        }
        world.refresh_replica_map();
        world
    }

    fn schedule_initial_events(&mut self) {
        self.schedule_next_arrival();
        self.schedule_first_user_sessions();
        self.schedule_next_log_session();
        if self.servers_can_fail {
            for server in 0..self.servers.len() as u32 {
                self.schedule_first_health_check(server);
            }
        }
        if self.warmup > SimTime::ZERO {
            self.queue.push(self.warmup, Event::WarmupEnd);
        }
        for (index, fault) in self.scenario.faults.iter().enumerate() {
            match fault {
                Fault::RandomCrashes { .. } => {
                    for server in 0..self.servers.len() as u32 {
                        self.schedule_random_failure(index as u32, server);
                    }
                }
                _ => self.queue.push(fault.at(), Event::Fault(index as u32)),
            }
        }
        self.schedule_fault_ends();
        if let Some(autoscale) = &self.scenario.autoscale {
            // The fleet as configured counts as the controller's standing recommendation, so it
            // does not scale in before a whole stabilization window has been observed.
            let initial = self.servers.len() as u32;
            self.recommendations.push_back((SimTime::ZERO, initial));
            self.queue.push(autoscale.sync_period, Event::AutoscaleTick);
        }
    }

    fn run(&mut self) -> Result<(), Stopped> {
        self.schedule_initial_events();
        while let Some((time, event)) = self.queue.pop() {
            if self.queue.refilled() {
                self.warm_next_bucket();
            }
            if time > self.end {
                break;
            }
            if time >= self.next_bucket {
                self.close_buckets_before(time);
            }
            self.now = time;
            self.events += 1;
            self.handle(event);
        }
        if let Some(stopped) = self.stopped.take() {
            return Err(stopped);
        }
        self.now = self.end;
        self.report_progress();
        self.close_buckets_before(self.end);
        if self.recorder.series.start() < self.end {
            self.close_bucket(self.end);
        }
        Ok(())
    }

    /// In a large model, right after a refill, starts loading what the events of the calendar's
    /// next bucket will touch (see [`warm`]): they fire after the ~8 just moved into the heap,
    /// so the loads have those events' time to arrive. Warming the bucket just moved instead
    /// gave the first of its events almost none, and warming both was slower still: at k = 100
    /// on the scale benchmark, next bucket only 0.981× and 0.980× the time of the moved bucket
    /// only (two sets of 32 pairs, the order swapped), both 1.025×, the bucket after next 1.019×
    /// the time of the next (more lead did not help). An event scheduled into the
    /// next bucket after the refill goes unwarmed; most that need it are replies and think
    /// times, scheduled long before. Asked for after the pop, by a flag, and out of line: the
    /// M/M/c benchmark never comes here and pays the flag's test, +0.3% instructions. Doing the
    /// refill in the loop itself, or passing the pop a closure, changed how the compiler laid
    /// out the small pending set's selects there: +1.3%.
    #[cold]
    #[inline(never)]
    fn warm_next_bucket(&mut self) {
        self.queue.clear_refilled();
        if self.sessions.slots() * Slab::<Session>::slot_bytes() > WARM_FROM_BYTES {
            self.queue
                .for_each_in_next_bucket(|event| warm(&self.sessions, &self.requests, event));
        }
    }

    // Inlined into the event loop: left to itself the compiler stopped inlining it when the
    // closed-loop and trace events were added, which cost the M/M/c bench 3% more instructions.
    #[inline(always)]
    fn handle(&mut self, event: Event) {
        match event {
            Event::SessionArrival => self.on_session_arrival(),
            Event::UserSession(id) => self.on_user_session(id),
            Event::LogSession(number) => self.on_log_session(number),
            Event::SendRequest(session) => self.send_request(session),
            Event::Retry(session) => self.send_retry(session),
            Event::AtBalancer(request) => self.on_balancer(request),
            Event::BalancerRetry {
                request,
                redispatch,
            } => self.on_balancer_retry(request, redispatch),
            Event::AtServer(request) => self.on_server(request),
            Event::ServerTimeout(request) => self.on_server_timeout(request),
            Event::ComputeDone(request) => self.on_compute_done(request),
            Event::AtStore(request) => self.on_store(request),
            Event::StoreOpDone { request, epoch } => self.on_store_op_done(request, epoch),
            Event::StoreReply(request) => self.on_store_reply(request),
            Event::AtClient(request) => self.on_client(request),
            Event::ClientTimeout(request) => self.on_client_timeout(request),
            Event::HealthCheck(server) => self.on_health_check(server),
            Event::ProbeTimedOut(server) => self.observe_probe(server, false),
            // The handlers that may launch or retire servers: the replica lists are rebuilt once
            // after them, not at each server (a fleet scaled by thousands at one instant).
            Event::Fault(index) => {
                self.on_fault(index as usize);
                self.refresh_replica_map();
            }
            Event::FaultEnd(index) => self.on_fault_end(index),
            Event::Unejected(server) => self.balancer.unejected(server),
            Event::Hedge { session, index } => self.on_hedge(session, index),
            Event::HedgeAtBalancer(request) => self.on_hedge_at_balancer(request),
            Event::Restart(server) => self.on_restart(server),
            Event::RandomFailure { fault, server } => self.on_random_failure(fault, server),
            Event::RandomRepair { fault, server } => self.on_random_repair(fault, server),
            Event::Started(server) => self.on_started(server),
            Event::DrainEnd(server) => {
                self.on_drain_end(server);
                self.refresh_replica_map();
            }
            Event::RollingBatch { fault, batch } => {
                self.on_rolling_batch(fault, batch);
                self.refresh_replica_map();
            }
            Event::StoreUp(shard) => self.on_store_up(shard),
            Event::AutoscaleTick => {
                self.on_autoscale_tick();
                self.refresh_replica_map();
            }
            Event::WarmupEnd => self.on_warmup_end(),
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
    ///
    /// Inlined, so that a constant (most of a model's sizes and network hops) is a test and a
    /// load where it is needed. As calls (the compiler's choice, without debug info; with it,
    /// it inlined them), the M/M/c benchmark's eight draws a request, seven of them constants,
    /// cost 61 more instructions a request, of 1,441 (callgrind, `--set duration=30s`).
    #[inline(always)]
    fn draw(dist: &Dist, seed: u64, a: u64, b: u64) -> f64 {
        match dist.as_constant() {
            Some(value) => value,
            None => Self::sample_keyed(dist, seed, a, b),
        }
    }

    /// [`World::draw`] for a time.
    #[inline(always)]
    fn draw_time(dist: &Dist, seed: u64, a: u64, b: u64) -> SimTime {
        match dist.as_constant_time() {
            Some(time) => time,
            None => SimTime::from_nanos_f64(Self::sample_keyed(dist, seed, a, b)),
        }
    }

    /// A keyed draw that is not a constant: an exponential by a function of its own, small
    /// enough to save few registers; the other families by one that inlines them all, so that
    /// a log-normal is one call (and libm's `exp`), not two.
    #[inline(always)]
    fn sample_keyed(dist: &Dist, seed: u64, a: u64, b: u64) -> f64 {
        if dist.is_exponential() {
            Self::keyed_exponential(dist, seed, a, b)
        } else {
            Self::keyed_other(dist, seed, a, b)
        }
    }

    #[inline(never)]
    fn keyed_exponential(dist: &Dist, seed: u64, a: u64, b: u64) -> f64 {
        dist.sample(&mut rng::keyed(seed, a, b))
    }

    #[inline(never)]
    fn keyed_other(dist: &Dist, seed: u64, a: u64, b: u64) -> f64 {
        dist.sample_any(&mut rng::keyed(seed, a, b))
    }

    fn in_window(&self) -> bool {
        self.now >= self.warmup
    }

    /// Closes every timeseries bucket that ended before `time` (nothing happened since the last
    /// event, so the levels now are the levels at each boundary).
    fn close_buckets_before(&mut self, time: SimTime) {
        while self.recorder.series.boundary() <= time {
            let boundary = self.recorder.series.boundary();
            self.close_bucket(boundary);
        }
    }

    fn close_bucket(&mut self, at: SimTime) {
        let rec = &self.recorder;
        let levels = Levels {
            active_sessions: rec.active_sessions.level(),
            healthy_servers: self.balancer.healthy_count(),
            servers_running: self.servers.iter().filter(|s| s.is_running()).count() as i64,
            busy_area: rec.busy_workers.area(at),
            capacity_area: rec.worker_capacity.area(at),
            store_busy_area: rec.busy_store_workers.area(at),
            store_workers: self.store_workers(),
            load_imbalance: self.load_imbalance(),
        };
        self.recorder.series.close(at, &levels);
        self.next_bucket = self.recorder.series.boundary();
        self.watch_saturation(at);
        let counts = &mut self.recorder.dispatched_in_window;
        counts.resize(self.servers.len(), 0);
        let in_window = at > self.warmup;
        for (server, count) in self.servers.iter_mut().zip(counts.iter_mut()) {
            if in_window {
                *count += u64::from(server.dispatched);
            }
            server.dispatched = 0;
        }
    }

    /// The busiest serving server's share of the bucket's requests over the mean share.
    fn load_imbalance(&self) -> f64 {
        let (mut count, mut total, mut most) = (0u64, 0u64, 0u32);
        for (index, server) in self.servers.iter().enumerate() {
            if server.condition == Condition::Up && self.balancer.in_service(index as u32) {
                count += 1;
                total += u64::from(server.dispatched);
                most = most.max(server.dispatched);
            }
        }
        if total == 0 {
            return f64::NAN;
        }
        f64::from(most) / (total as f64 / count as f64)
    }

    /// Workers over every shard of the store (0 without one).
    fn store_workers(&self) -> f64 {
        self.stores.iter().map(|s| f64::from(s.workers())).sum()
    }

    /// Opens a faults.csv row; returns its index.
    fn open_fault_record(&mut self, fault: u32, server: Option<u32>) -> u32 {
        self.recorder.faults.push(FaultRecord {
            fault,
            server,
            start: self.now,
            detected: None,
            recovered: None,
            requests_failed: 0,
            sessions_lost: 0,
        });
        self.recorder.open_faults += 1;
        self.recorder.fault_started = true;
        (self.recorder.faults.len() - 1) as u32
    }

    /// The fault of `record` is over now (its server or the store serves again, or the fleet
    /// change completed).
    fn close_fault_record(&mut self, record: u32) {
        let entry = &mut self.recorder.faults[record as usize];
        if entry.recovered.is_none() {
            entry.recovered = Some(self.now);
            self.recorder.open_faults -= 1;
        }
    }

    /// The busiest server's tries in the window over the mean server's: 1 is an even spread.
    /// Every server that existed counts (one added late by a scale-out brings the mean down, as
    /// it should: it did less).
    fn window_load_imbalance(&self) -> f64 {
        let counts = &self.recorder.dispatched_in_window;
        let mean = counts.iter().sum::<u64>() as f64 / counts.len().max(1) as f64;
        let busiest = counts.iter().copied().max().unwrap_or(0) as f64;
        if mean > 0.0 { busiest / mean } else { f64::NAN }
    }

    /// servers.csv's rows of this run: each server that existed, with its tries and
    /// utilisation over the window, the peak of its session memory and the sessions it lost.
    fn server_rows(&self, session_bytes: f64) -> Vec<ServerRow> {
        let workers = f64::from(self.topology.servers.workers);
        let dispatched = &self.recorder.dispatched_in_window;
        self.servers
            .iter()
            .enumerate()
            .map(|(index, server)| {
                let busy = server.busy_workers.average_since(
                    self.warmup,
                    server.busy_area_at_warmup,
                    self.end,
                );
                [
                    index as f64,
                    dispatched.get(index).copied().unwrap_or(0) as f64,
                    busy / workers,
                    server.peak_states as f64 * session_bytes / (1024.0 * 1024.0),
                    server.sessions_lost as f64,
                ]
            })
            .collect()
    }

    fn finish(mut self) -> RunResult {
        let end = self.end;
        let in_flight_attempts = self
            .requests
            .iter()
            .filter(|(_, r)| r.in_window && !r.timed_out && r.phase != Phase::BlackHoled)
            .count() as u64;
        let black_holed = self
            .requests
            .iter()
            .filter(|(_, r)| r.in_window && !r.timed_out && r.phase == Phase::BlackHoled)
            .count() as u64;
        let awaiting_retry = self
            .sessions
            .iter()
            .filter(|(_, s)| s.retry_pending() && s.request_in_window())
            .count() as u64;
        let active = self
            .sessions
            .iter()
            .filter(|(_, s)| s.in_window() && !s.lost())
            .count() as u64;
        let store_capacity = self.store_workers();
        let rec = &mut self.recorder;
        rec.counters.in_flight = if self.needs.hedging {
            // A request may have two attempts out, or one out beside a pending retry; and a
            // settled one may have its losing attempt still out: count requests, not attempts.
            self.sessions
                .iter()
                .filter(|(_, s)| s.awaiting() && s.request_in_window())
                .count() as u64
        } else {
            in_flight_attempts + black_holed + awaiting_retry
        };
        rec.counters.sessions_active = active;
        let topology = self.topology;
        let warmup = self.warmup;
        let [busy, capacity, store_busy, sessions, up, provisioned] = rec.areas_at_warmup;
        let latency = rec.latency.to_histogram();
        let attempt_latency = match &rec.attempt_latency {
            Some(attempts) => attempts.to_histogram(),
            None => latency.clone(),
        };
        let faults = rec
            .faults
            .iter()
            .map(|record| {
                let seconds = |t: Option<SimTime>| t.map_or(f64::NAN, SimTime::as_secs_f64);
                [
                    f64::from(record.fault),
                    record.server.map_or(f64::NAN, f64::from),
                    record.start.as_secs_f64(),
                    seconds(record.detected),
                    seconds(record.recovered),
                    record.requests_failed as f64,
                    record.sessions_lost as f64,
                ]
            })
            .collect();
        let series = std::mem::replace(&mut rec.series, SeriesRecorder::new(end, SimTime::ZERO));
        let session_bytes = match topology.state {
            State::Server { session_bytes, .. } => session_bytes,
            _ => 0.0,
        };
        let mut result = RunResult {
            topology: topology.name.clone(),
            replication: self.replication,
            counters: rec.counters.clone(),
            latency_during_faults: rec.latency_during_faults.to_histogram(),
            latency_after_faults: rec.latency_after_faults.to_histogram(),
            latency,
            attempt_latency,
            latency_sum_ns: rec.latency_sum_ns,
            window_secs: end.saturating_sub(warmup).as_secs_f64(),
            ok_in_window: rec.ok_in_window,
            mean_busy_workers: rec.busy_workers.average_since(warmup, busy, end),
            worker_capacity: rec.worker_capacity.average_since(warmup, capacity, end),
            mean_busy_store_workers: rec
                .busy_store_workers
                .average_since(warmup, store_busy, end),
            store_capacity,
            mean_servers_up: rec.servers_up.average_since(warmup, up, end),
            mean_servers_provisioned: rec.servers_provisioned.average_since(
                warmup,
                provisioned,
                end,
            ),
            mean_active_sessions: rec.active_sessions.average_since(warmup, sessions, end),
            session_duration_sum_secs: rec.session_duration_sum_secs,
            peak_session_bytes: self
                .servers
                .iter()
                .map(|s| s.peak_states)
                .max()
                .unwrap_or(0) as f64
                * session_bytes,
            traffic: rec.traffic.clone(),
            load_imbalance: self.window_load_imbalance(),
            session_memory_steady_bytes: f64::NAN,
            session_state_bytes: topology.state.state_bytes(),
            zones: topology.servers.zones.count,
            servers_saturated_at_s: self
                .saturations
                .servers
                .as_ref()
                .map(|d| d.since.as_secs_f64()),
            store_saturated_at_s: self
                .saturations
                .store
                .as_ref()
                .map(|d| d.since.as_secs_f64()),
            state_copies: topology.state.copies(),
            cost_per_hour: f64::NAN,
            events: self.events,
            requests_simulated: self.requests_simulated,
            series: series.into_rows(),
            faults,
            servers: self.server_rows(session_bytes),
        };
        // Servers as provisioned (a scaled fleet pays for what it ran), the store's nodes, and
        // the state traffic moved.
        result.session_memory_steady_bytes = steady_session_memory(topology, &result);
        let hours = result.window_secs / 3600.0;
        result.cost_per_hour = topology.cost.per_hour(HourlyUse {
            servers: result.mean_servers_provisioned,
            store_nodes: topology.store().map_or(0.0, |store| f64::from(store.nodes)),
            state_gigabytes: result.traffic.state() / 1e9 / hours,
            cross_zone_gigabytes: result.traffic.cross_zone / 1e9 / hours,
        });
        result
    }
}

#[cfg(test)]
mod size_tests {
    /// Every pending event is one queue entry: a larger Event costs every run cache space (the
    /// store's shard rides in its epoch's top bits to keep this).
    #[test]
    fn an_event_is_16_bytes() {
        assert_eq!(std::mem::size_of::<super::Event>(), 16);
    }

    /// A request in flight is one cache line.
    #[test]
    fn a_request_is_64_bytes() {
        assert_eq!(std::mem::size_of::<super::Request>(), 64);
    }

    /// A session in flight is what a large fleet's memory is made of (a million of them).
    #[test]
    fn a_session_is_56_bytes() {
        assert_eq!(std::mem::size_of::<super::Session>(), 56);
    }

    /// And its slot one cache line: the generation and `Option`'s tag fit beside it.
    #[test]
    fn a_session_slot_is_one_cache_line() {
        assert_eq!(crate::engine::Slab::<super::Session>::slot_bytes(), 64);
    }
}
