//! Routing at the balancer and the servers: admission to workers or the queue, the compute step,
//! session state in server memory (placement, memory limits, replication, failover), and
//! responses.

use super::balancer_retry::TryFailure;
use super::gray::{CUT_BALANCER, CUT_PEERS};
use super::{Event, Outcome, Phase, Recovery, Session, World, zone};
use crate::engine::{Expiries, ExpiryChunks, Handle, SimTime};
use crate::metrics::{LossCause, TimeAverage};
use crate::scenario::{Cache, MemoryFull, Replication, State};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// What a server is doing. A draining server is `Up`; the balancer knows it is draining.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Launched, not yet serving (`startup`).
    Starting,
    Up,
    /// Frozen: accepts connections, never answers.
    Hung,
    /// Crashed: refuses connections.
    Down,
    /// Terminated for good (replaced by a deploy, or scaled in).
    Retired,
}

pub struct Server {
    pub condition: Condition,
    /// Bumped whenever the server loses its memory: state tagged with an older one is gone.
    pub incarnation: u32,
    pub busy: u32,
    pub queue: VecDeque<Handle>,
    /// Sessions whose state lives here.
    pub homed: u64,
    /// When the states of sessions that ended (kept for the idle timeout) expire, oldest first:
    /// the timeout is the same for all, so they expire in the order they were made.
    pub lingering: Expiries,
    /// The least and most recently used of the sessions homed here, once memory is limited and
    /// has been half full (the list's links are in recency.rs).
    pub least_recent: Option<Handle>,
    pub most_recent: Option<Handle>,
    pub cache: Option<Box<SessionCache>>,
    /// The faults.csv row of what is happening to this server, until it is over.
    pub open_fault: Option<u32>,
    /// Requests routed here in the current timeseries bucket.
    pub dispatched: u32,
    /// Random-crash occurrences so far (they key the draws).
    pub failures: u32,
    /// The faults.csv row this server's start closes (it replaces a server, or adds one).
    pub replaces: Option<u32>,
    /// Set when the server is draining: what its remaining sessions are lost to at the end.
    pub drain_cause: Option<LossCause>,
    /// The most session states its memory held at once, replicas of its peers' included.
    pub peak_states: u64,
    /// Sessions of the window lost from its memory.
    pub sessions_lost: u64,
    /// Its busy workers over time (servers.csv's utilisation), and the area when the
    /// measurement window opened.
    pub busy_workers: TimeAverage,
    pub busy_area_at_warmup: i128,
    /// A `slow` fault's factor on its work (1 when none is in force).
    pub slow_factor: f64,
    /// A `pauses` fault's clock.
    pub pauses: Option<super::gray::PauseClock>,
    /// What a partition cuts it off from (`gray::CUT_*` flags).
    pub cut_from: u8,
    /// Since when a partition from its peers keeps its writes from its async replica.
    pub replication_stalled_since: Option<SimTime>,
}

impl Server {
    /// Whether a partition cuts it off from `side` (a `gray::CUT_*` flag).
    #[inline]
    pub fn cut_off(&self, side: u8) -> bool {
        self.cut_from & side != 0
    }

    pub fn new(cache: Option<&Cache>) -> Server {
        Server {
            condition: Condition::Up,
            incarnation: 0,
            busy: 0,
            queue: VecDeque::new(),
            homed: 0,
            lingering: Expiries::default(),
            least_recent: None,
            most_recent: None,
            cache: cache.map(|config| Box::new(SessionCache::new(config))),
            open_fault: None,
            dispatched: 0,
            failures: 0,
            replaces: None,
            drain_cause: None,
            peak_states: 0,
            sessions_lost: 0,
            busy_workers: TimeAverage::new(),
            busy_area_at_warmup: 0,
            slow_factor: 1.0,
            pauses: None,
            cut_from: 0,
            replication_stalled_since: None,
        }
    }

    /// Whether the process is running (serving, hung, or draining).
    pub fn is_running(&self) -> bool {
        matches!(self.condition, Condition::Up | Condition::Hung)
    }

    /// Forgets everything held in memory (a crash, a restart or a termination). `chunks` is
    /// the pool its idle states' expiry times are in.
    pub fn wipe_memory(&mut self, chunks: &mut ExpiryChunks) {
        self.incarnation += 1;
        self.homed = 0;
        self.lingering.clear(chunks);
        // The list's sessions are all lost or moved when memory is wiped; they unlink lazily.
        self.least_recent = None;
        self.most_recent = None;
        if let Some(cache) = &mut self.cache {
            cache.clear();
        }
    }
}

/// A per-server cache of sessions read from the store: least recently used entries go first, an
/// entry older than the TTL or of an older version (another server wrote the session since) is a
/// miss.
pub struct SessionCache {
    capacity: usize,
    ttl: SimTime,
    /// Session key → (recency stamp, cached at, version).
    entries: HashMap<u64, (u64, SimTime, u32)>,
    by_recency: BTreeMap<u64, u64>,
    stamps: u64,
}

impl SessionCache {
    fn new(config: &Cache) -> SessionCache {
        SessionCache {
            capacity: config.capacity as usize,
            ttl: config.ttl,
            entries: HashMap::new(),
            by_recency: BTreeMap::new(),
            stamps: 0,
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.by_recency.clear();
    }

    /// Whether a fresh copy of `version` is cached; a hit counts as a use.
    pub fn hit(&mut self, key: u64, version: u32, now: SimTime) -> bool {
        let Some(&(stamp, cached_at, cached_version)) = self.entries.get(&key) else {
            return false;
        };
        if cached_version != version || now.saturating_sub(cached_at) >= self.ttl {
            return false;
        }
        self.stamps += 1;
        self.by_recency.remove(&stamp);
        self.by_recency.insert(self.stamps, key);
        self.entries.insert(key, (self.stamps, cached_at, version));
        true
    }

    pub fn put(&mut self, key: u64, version: u32, now: SimTime) {
        if let Some((stamp, _, _)) = self.entries.remove(&key) {
            self.by_recency.remove(&stamp);
        } else if self.entries.len() >= self.capacity
            && let Some((_, oldest)) = self.by_recency.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.stamps += 1;
        self.by_recency.insert(self.stamps, key);
        self.entries.insert(key, (self.stamps, now, version));
    }
}

/// The key a session is known by at the balancer and in caches (a new login is a new session).
pub fn session_key(session: &Session) -> u64 {
    session.id ^ (u64::from(session.life) << 48)
}

impl World<'_> {
    /// Inlined, like `on_server` and `start_work`: with zero-delay hops (`after`) the request's
    /// way from the client to its worker is then one function, not four, each saving and
    /// restoring six registers (M/M/c benchmark: 1,203 -> 1,156 instructions a request).
    #[inline(always)]
    pub(super) fn on_balancer(&mut self, handle: Handle) {
        // One test for everything zones add, so that a fleet in one zone pays nothing more.
        if self.needs.zones {
            self.on_balancer_in_zones(handle);
        } else {
            self.route_and_forward::<false>(handle);
        }
    }

    #[cold]
    #[inline(never)]
    fn on_balancer_in_zones(&mut self, handle: Handle) {
        self.route_and_forward::<true>(handle);
    }

    /// The balancer picks the try's server (in the client's zone with zone affinity) and sends
    /// it on; `ZONES`: the fleet spans zones.
    #[inline(always)]
    fn route_and_forward<const ZONES: bool>(&mut self, handle: Handle) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(request.session) else {
            return;
        };
        if self.balancer.has_affinity() {
            request.by_affinity = self.balancer.routes_by_affinity(session.home());
        }
        let server = if ZONES && self.needs.zone_affinity {
            let zone = zone::client_zone(
                self.seeds.client_zone,
                &self.topology.servers.zones,
                session.id,
            );
            self.balancer
                .route_near(session_key(session), session.home(), zone)
        } else {
            self.balancer.route(session_key(session), session.home())
        };
        session.set_home(Some(server));
        request.server = server;
        request.phase = Phase::ToServer;
        let (session_id, draw_key) = (session.id, request.draw_key);
        self.forward_within::<ZONES>(handle, server, session_id, draw_key);
    }

    /// A hedge reaches the balancer: it goes elsewhere than the first attempt (to the session's
    /// home where the state lives in that server's memory), and leaves the session's home be.
    #[cold]
    #[inline(never)]
    pub(super) fn on_hedge_at_balancer(&mut self, handle: Handle) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        let Some(session) = self.sessions.get(request.session) else {
            return;
        };
        let key = session_key(session);
        // Not `route`: a second caller would stop it being inlined into `on_balancer`.
        let server = match session.home() {
            Some(home) if self.needs.server_state => home,
            Some(first) => self.balancer.redispatch(key, first),
            None => self.balancer.redispatch(key, u32::MAX),
        };
        request.server = server;
        request.phase = Phase::ToServer;
        let (session_id, draw_key) = (session.id, request.draw_key);
        self.forward(handle, server, session_id, draw_key);
    }

    /// The balancer sends a try on to `server` (a first try or its retry): one more
    /// outstanding there, then the hop.
    #[inline(always)]
    pub(super) fn forward(&mut self, handle: Handle, server: u32, session_id: u64, draw_key: u64) {
        if self.needs.zones {
            self.forward_within::<true>(handle, server, session_id, draw_key);
        } else {
            self.forward_within::<false>(handle, server, session_id, draw_key);
        }
    }

    /// `forward`, with `ZONES` known where it is called.
    #[inline(always)]
    fn forward_within<const ZONES: bool>(
        &mut self,
        handle: Handle,
        server: u32,
        session_id: u64,
        draw_key: u64,
    ) {
        self.balancer.dispatched(server);
        self.servers[server as usize].dispatched += 1;
        let mut hop = Self::draw_time(
            &self.topology.network.balancer_server,
            self.seeds.net_to_server,
            session_id,
            draw_key,
        );
        if ZONES {
            hop = hop.saturating_add(self.zone_hop_to_server(handle, server));
        }
        self.after(hop, Event::AtServer(handle));
    }

    #[inline(always)]
    pub(super) fn on_server(&mut self, handle: Handle) {
        let Some(request) = self.requests.get(handle) else {
            return;
        };
        let (server_index, session_handle, in_window) =
            (request.server as usize, request.session, request.in_window);
        if self.servers[server_index].condition != Condition::Up
            || (self.needs.partitions && self.servers[server_index].cut_off(CUT_BALANCER))
        {
            self.arrive_at_unavailable_server(handle, in_window);
            return;
        }
        if self.needs.server_state
            && !self.session_state_available(session_handle, server_index as u32)
        {
            self.misrouted(handle, session_handle, server_index as u32);
            return;
        }
        let workers = self.topology.servers.workers;
        let queue_limit = self.topology.servers.queue_limit;
        let server = &self.servers[server_index];
        let admit = server.busy < workers;
        if !admit && queue_limit.is_some_and(|limit| server.queue.len() >= limit as usize) {
            self.try_failed(handle, Outcome::Rejected, TryFailure::Status5xx);
            return;
        }
        if self.needs.server_state
            && !self.place_session_state(session_handle, handle, server_index as u32)
        {
            // No memory for another session: a 503.
            self.try_failed(handle, Outcome::Rejected, TryFailure::Status5xx);
            return;
        }
        let server = &mut self.servers[server_index];
        if admit {
            server.busy += 1;
            server.busy_workers.add(self.now, 1);
            self.recorder.busy_workers.add(self.now, 1);
            self.start_work(handle);
        } else {
            server.queue.push_back(handle);
            self.requests.get_mut(handle).expect("checked above").phase = Phase::Queued;
        }
    }

    /// A request reaches a server without its session's state: "session expired". A session
    /// still alive is lost here (non-sticky routing: its state is on its home); the failure is
    /// charged to the fault that lost the session, or to the one this server is going through.
    #[cold]
    #[inline(never)]
    fn misrouted(&mut self, handle: Handle, session_handle: Handle, server: u32) {
        let open_fault = self.servers[server as usize].open_fault;
        let home = self
            .sessions
            .get(session_handle)
            .and_then(|s| s.state_at())
            .map_or(server, |(home, _)| home);
        self.mark_session_lost(session_handle, LossCause::Misrouted, Some(home), open_fault);
        let charged = self.lost_in.get(&session_handle).copied().or(open_fault);
        if let Some(record) = charged {
            self.recorder.faults[record as usize].requests_failed += 1;
        }
        self.send_back(handle, Outcome::Failed);
    }

    /// A request reaches a server that is not serving: a hung one swallows it (only the client's
    /// timeout ends it), any other refuses the connection.
    #[cold]
    #[inline(never)]
    fn arrive_at_unavailable_server(&mut self, handle: Handle, in_window: bool) {
        if in_window {
            self.recorder.counters.requests_to_dead_server += 1;
        }
        let request = self.requests.get_mut(handle).expect("live request");
        let server = &self.servers[request.server as usize];
        // A hung server, or one the balancer cannot reach: the try is lost, not refused.
        if server.condition == Condition::Hung || server.cut_off(CUT_BALANCER) {
            request.phase = Phase::BlackHoled;
            self.start_server_timeout(handle);
        } else {
            self.try_failed(handle, Outcome::Failed, TryFailure::Refused);
        }
    }

    /// With server-held state, a request can only be served where its session lives (or anywhere,
    /// for the session's first accepted request, which creates the state, or after a failover).
    fn session_state_available(&self, session_handle: Handle, server: u32) -> bool {
        if !matches!(self.topology.state, State::Server { .. }) {
            return true;
        }
        let Some(session) = self.sessions.get(session_handle) else {
            return true;
        };
        match session.state_at() {
            _ if session.lost() => false,
            None => true,
            Some((home, incarnation)) => {
                home == server && incarnation == self.servers[server as usize].incarnation
            }
        }
    }

    /// Puts the session's state on `server` if it is not there yet (its first request, or the
    /// first after a failover, which must fetch it), and its replicas on the server's replica
    /// peers. Returns false when the server, or a peer for its replica, has no memory for it and
    /// refuses new sessions.
    fn place_session_state(
        &mut self,
        session_handle: Handle,
        request: Handle,
        server: u32,
    ) -> bool {
        if !matches!(self.topology.state, State::Server { .. }) {
            return true;
        }
        let Some(session) = self.sessions.get(session_handle) else {
            return true;
        };
        if session.state_at().is_some() {
            self.touch(session_handle, server);
            return true;
        }
        self.drop_expired_states(server);
        if let Some(capacity) = self.memory_capacity
            && !self.make_room_with_replicas(server, capacity)
        {
            return false;
        }
        let target = &mut self.servers[server as usize];
        target.homed += 1;
        let incarnation = target.incarnation;
        self.note_peak_memory(server);
        let session = self
            .sessions
            .get_mut(session_handle)
            .expect("checked above");
        session.set_state_at(Some((server, incarnation)));
        if let Some(recovery) = session.recovery.take() {
            // A replica always answers; a backup read counts once it succeeds (store.rs).
            if session.in_window() && recovery == Recovery::Replica {
                self.recorder.counters.sessions_failed_over += 1;
            }
            self.requests.get_mut(request).expect("live request").fetch = Some(recovery);
        }
        self.touch(session_handle, server);
        true
    }

    /// Forgets the idle states on `server` whose timeout has passed.
    fn drop_expired_states(&mut self, server: u32) {
        self.servers[server as usize]
            .lingering
            .drop_through(self.now, &mut self.lingering_chunks);
    }

    /// The states of its own sessions a server holds: homed, and idle ones not yet expired
    /// (the expired ones are forgotten on the way).
    fn own_states(&mut self, server: u32) -> u64 {
        self.drop_expired_states(server);
        let target = &self.servers[server as usize];
        target.homed + target.lingering.len() as u64
    }

    /// The session states a server's memory holds: its own, and the replicas of the sessions of
    /// the servers whose replica peer it is (their own states, idle ones included: a replica
    /// lives as long as its original).
    fn states_held(&mut self, server: u32) -> u64 {
        let mut held = self.own_states(server);
        for slot in 0..self.replica_map.sources(server).len() {
            let source = self.replica_map.sources(server)[slot];
            held += self.own_states(source);
        }
        held
    }

    /// Frees room on `server` for one more session and on each of its replica peers for its
    /// replica. A replica is a write like any other: a peer that refuses new sessions refuses
    /// it too, and the session is refused.
    fn make_room_with_replicas(&mut self, server: u32, capacity: u64) -> bool {
        if !self.make_room(server, capacity) {
            return false;
        }
        for slot in 0..self.replica_map.peers(server).len() {
            let peer = self.replica_map.peers(server)[slot];
            if !self.make_room(peer, capacity) {
                return false;
            }
        }
        true
    }

    /// Records the memory `server` and its replica peers now hold, for their peaks.
    fn note_peak_memory(&mut self, server: u32) {
        let mut most = self.states_held(server);
        let target = &mut self.servers[server as usize];
        target.peak_states = target.peak_states.max(most);
        for slot in 0..self.replica_map.peers(server).len() {
            let peer = self.replica_map.peers(server)[slot];
            let held = self.states_held(peer);
            let target = &mut self.servers[peer as usize];
            target.peak_states = target.peak_states.max(held);
            most = most.max(held);
        }
        if let Some(capacity) = self.memory_capacity {
            self.keep_lists_from(most, capacity);
        }
    }

    /// Takes the session's state off `server` again (its placement did not happen after all).
    pub(super) fn unplace_session_state(&mut self, session_handle: Handle, server: u32) {
        let incarnation = self.servers[server as usize].incarnation;
        let Some(session) = self.sessions.get_mut(session_handle) else {
            return;
        };
        if session.state_at() != Some((server, incarnation)) {
            return;
        }
        session.set_state_at(None);
        let target = &mut self.servers[server as usize];
        target.homed = target.homed.saturating_sub(1);
        if self.memory_capacity.is_some() {
            self.unlink(session_handle, server);
        }
    }

    /// Frees room for one more state on a full server: the oldest idle state goes first, then
    /// the least recently used live session (lost, unless a replica or the backup store holds
    /// it), unless the server refuses new sessions. The replicas it holds for its peers are
    /// never evicted: a server full of them refuses new sessions.
    fn make_room(&mut self, server: u32, capacity: u64) -> bool {
        while self.states_held(server) >= capacity {
            let target = &mut self.servers[server as usize];
            if target
                .lingering
                .pop_front(&mut self.lingering_chunks)
                .is_some()
            {
                continue;
            }
            if self.topology.servers.on_memory_full == MemoryFull::Refuse {
                return false;
            }
            let Some(victim) = target.least_recent else {
                return false; // nothing of its own left to evict
            };
            if self.sessions.get(victim).is_none() {
                // A list head that outlived its session would be evicted again and again: this
                // loop must end whatever state the list is in.
                self.servers[server as usize].least_recent = None;
                return false;
            }
            self.servers[server as usize].homed =
                self.servers[server as usize].homed.saturating_sub(1);
            self.unlink(victim, server);
            self.state_gone(victim, server, LossCause::Eviction);
        }
        true
    }

    /// A session no longer uses its state: it stays for the idle timeout (not at all without
    /// one), unless the server lost its memory since.
    #[inline]
    pub(super) fn release_session_state(&mut self, session: &Session, handle: Handle) {
        if self.needs.server_state {
            self.release_server_state(session, handle);
        }
    }

    fn release_server_state(&mut self, session: &Session, handle: Handle) {
        let State::Server { session_ttl, .. } = self.topology.state else {
            return;
        };
        let Some((server, incarnation)) = session.state_at() else {
            return;
        };
        let now = self.now;
        let target = &mut self.servers[server as usize];
        if target.incarnation != incarnation {
            return;
        }
        target.homed = target.homed.saturating_sub(1);
        if session_ttl > SimTime::ZERO {
            target
                .lingering
                .push_back(now.saturating_add(session_ttl), &mut self.lingering_chunks);
        }
        if self.memory_capacity.is_some() {
            self.unlink_released(handle, server);
        }
    }

    /// The server lost its memory (`cause`): each session homed there is lost, or, when its state
    /// survives elsewhere (a replica, the backup store), will be fetched by its next server.
    pub(super) fn lose_sessions_on(&mut self, server: u32, cause: LossCause) {
        if !matches!(self.topology.state, State::Server { .. }) {
            return;
        }
        self.refresh_replica_map();
        // One pass over the sessions for both kinds this loss reaches.
        let mut homed = Vec::new();
        let mut stranded = Vec::new();
        for (handle, session) in self.sessions.iter() {
            if session.lost() {
                continue;
            }
            match session.state_at() {
                Some((home, _)) if home == server => homed.push(handle),
                None if self.waits_for_replica_on(session, server) => stranded.push(handle),
                _ => {}
            }
        }
        for handle in homed {
            // The server's recency list goes with its memory.
            self.clear_link(handle);
            self.state_gone(handle, server, cause);
        }
        self.lose_stranded_recoveries(stranded, server, cause);
    }

    /// Whether `session`, whose home was lost earlier, waits to be fetched from a replica that
    /// `server` holds. (Such a session's `home` is still the dead server that lost it: a
    /// session is routed anew only with its next request.)
    fn waits_for_replica_on(&self, session: &Session, server: u32) -> bool {
        session.recovery == Some(Recovery::Replica)
            && session.home().is_some_and(|home| {
                !self.servers[home as usize].is_running()
                    && self.replica_map.peers(home).contains(&server)
            })
    }

    /// The `stranded` sessions lose their state with `server` when it held their last live
    /// replica: their next server has nothing left to fetch.
    fn lose_stranded_recoveries(&mut self, stranded: Vec<Handle>, server: u32, cause: LossCause) {
        let record = self.servers[server as usize].open_fault;
        for handle in stranded {
            let Some(home) = self.sessions.get(handle).and_then(|s| s.home()) else {
                continue;
            };
            if self.replica_alive_besides(home, server) {
                continue;
            }
            if let Some(session) = self.sessions.get_mut(handle) {
                session.recovery = None;
            }
            self.mark_session_lost(handle, cause, Some(home), record);
        }
    }

    /// A session's state is gone from its home `server` (to `cause`: a crash, an eviction…):
    /// its next server fetches it from where it survives, or the session is lost.
    fn state_gone(&mut self, handle: Handle, server: u32, cause: LossCause) {
        let survives = self.surviving_copy(handle, server, cause);
        let Some(session) = self.sessions.get_mut(handle) else {
            return;
        };
        session.set_state_at(None);
        match survives {
            Ok(recovery) => session.recovery = Some(recovery),
            Err(lost_to) => {
                let record = self.servers[server as usize].open_fault;
                self.mark_session_lost(handle, lost_to, Some(server), record);
            }
        }
    }

    /// Where the state of a session whose home `server` was lost (to `cause`) survives, or what
    /// it was lost to: `cause`, or the replication lag when the copy missed its last write.
    fn surviving_copy(
        &self,
        handle: Handle,
        server: u32,
        cause: LossCause,
    ) -> Result<Recovery, LossCause> {
        let State::Server { replication, .. } = &self.topology.state else {
            return Err(cause);
        };
        let session = self.sessions.get(handle).expect("live session");
        match replication {
            Replication::None => Err(cause),
            Replication::Sync { .. } => {
                if self.replica_alive(server) {
                    Ok(Recovery::Replica)
                } else {
                    Err(cause)
                }
            }
            Replication::Async { lag } => {
                let stalled = self.servers[server as usize]
                    .replication_stalled_since
                    .is_some_and(|since| self.extras.written(handle).at >= since);
                if !self.replica_alive(server) {
                    Err(cause)
                } else if stalled || self.now.saturating_sub(self.extras.written(handle).at) < *lag
                {
                    Err(LossCause::ReplicationLag)
                } else {
                    Ok(Recovery::Replica)
                }
            }
            Replication::StoreBackup(_) => {
                let shard = self.session_shard(session.id);
                if self.stores[shard].is_up() {
                    Ok(Recovery::Store)
                } else {
                    Err(cause)
                }
            }
        }
    }

    /// Whether one of the servers holding `server`'s replicas is up (and not in a zone going
    /// down at this instant).
    fn replica_alive(&self, server: u32) -> bool {
        self.replica_alive_besides(server, u32::MAX)
    }

    /// `replica_alive`, not counting `lost` (a server going down at this instant).
    fn replica_alive_besides(&self, server: u32, lost: u32) -> bool {
        self.replica_map
            .peers(server)
            .iter()
            .filter(|peer| **peer != lost)
            .any(|peer| {
                let peer_server = &self.servers[*peer as usize];
                peer_server.condition == Condition::Up
                    && !peer_server.cut_off(CUT_PEERS)
                    && !(self.needs.zones && self.in_zone_going_down(*peer))
            })
    }

    /// A worker has been assigned: begin with a store read (a store topology's session, on a cache
    /// miss; or a backup copy after a failover), or go straight to computing.
    #[inline(always)]
    fn start_work(&mut self, handle: Handle) {
        if self.needs.store_path {
            self.start_work_with_store(handle);
        } else {
            self.start_compute(handle);
        }
    }

    fn start_work_with_store(&mut self, handle: Handle) {
        let request = self.requests.get(handle).expect("live request");
        let read_store = match &self.topology.state {
            State::Store { .. } => !self.cache_hit(handle),
            State::Server { .. } => request.fetch == Some(Recovery::Store),
            _ => false,
        };
        if read_store {
            self.requests.get_mut(handle).expect("live request").phase = Phase::StoreRead;
            self.send_to_store(handle);
        } else {
            self.start_compute(handle);
        }
    }

    /// Looks the session up in the server's cache (a store topology with a cache).
    fn cache_hit(&mut self, handle: Handle) -> bool {
        let request = self.requests.get(handle).expect("live request");
        let server = request.server as usize;
        if self.servers[server].cache.is_none() {
            return false;
        }
        let Some(session) = self.sessions.get(request.session) else {
            return false;
        };
        let (key, version) = (
            session_key(session),
            self.extras.written(request.session).version,
        );
        let now = self.now;
        let hit = self.servers[server]
            .cache
            .as_mut()
            .is_some_and(|cache| cache.hit(key, version, now));
        if request.in_window {
            if hit {
                self.recorder.counters.cache_hits += 1;
            } else {
                self.recorder.counters.cache_misses += 1;
            }
        }
        hit
    }

    // The three `inline(always)` on the response path (here, `respond`, `continue_session`) are
    // measured: together 4-5% off the M/M/c run. Forcing every handler on the request path inline
    // instead made it 18% slower (and 6% more instructions), so each is kept only where it pays.
    #[inline(always)]
    pub(super) fn start_compute(&mut self, handle: Handle) {
        // Most topologies add nothing to the demand: skip the lookups they would need, and look
        // the request up once (a second lookup was 9 instructions a request of M/M/c).
        let with_extras = self
            .needs
            .compute_extras
            .then(|| self.compute_done_at(handle));
        let now = self.now;
        let request = self.requests.get_mut(handle).expect("live request");
        let done = with_extras.unwrap_or_else(|| now.saturating_add(request.demand));
        request.phase = Phase::Compute;
        // Always through the queue (never inline), so a run of zero-length steps cannot recurse.
        self.queue.push(done, Event::ComputeDone(handle));
    }

    /// When a compute step with extras ends: the demand, plus verification and replication,
    /// stretched by a gray failure of its server.
    fn compute_done_at(&self, handle: Handle) -> SimTime {
        let request = self.requests.get(handle).expect("live request");
        let extra = if self.needs.verification || self.needs.replication {
            self.compute_overhead(handle)
        } else {
            SimTime::ZERO
        };
        let work = request.demand.saturating_add(extra);
        if self.needs.gray {
            self.gray_finish(request.server, work)
        } else {
            self.now.saturating_add(work)
        }
    }

    /// What the worker spends besides the demand: token verification, replication.
    fn compute_overhead(&self, handle: Handle) -> SimTime {
        let request = self.requests.get(handle).expect("live request");
        let verify = match &self.topology.state {
            State::Token { verify_time, .. } => Self::draw_time(
                verify_time,
                self.seeds.verify,
                request.session_id,
                request.draw_key,
            ),
            _ => SimTime::ZERO,
        };
        let replication = if self.needs.replication {
            self.replication_delay(handle)
        } else {
            SimTime::ZERO
        };
        verify.saturating_add(replication)
    }

    /// Time the worker spends on replication: fetching the state from a replica after a
    /// failover, and for sync replication waiting for every replica to acknowledge a write (the
    /// slowest of `peers` round trips).
    fn replication_delay(&self, handle: Handle) -> SimTime {
        let State::Server { replication, .. } = &self.topology.state else {
            return SimTime::ZERO;
        };
        let request = self.requests.get(handle).expect("live request");
        let hop = &self.topology.network.server_server;
        let round_trip = |lane: u64| {
            let key = request.draw_key ^ (lane << 56);
            let seed = self.seeds.net_replica;
            Self::draw_time(hop, seed, request.session_id, key).saturating_add(Self::draw_time(
                hop,
                seed,
                request.session_id,
                key ^ 1 << 55,
            ))
        };
        let mut delay = SimTime::ZERO;
        if request.fetch == Some(Recovery::Replica) {
            delay = round_trip(0);
        }
        if let Replication::Sync { peers } = replication
            && request.writes_state
        {
            let to_peer = |lane: u64| {
                let mut trip = round_trip(lane);
                if self.needs.zones {
                    let (server, id, key) = (request.server, request.session_id, request.draw_key);
                    let slot = lane as usize - 1;
                    trip = trip.saturating_add(self.zone_round_trip_to_peer(server, slot, id, key));
                }
                trip
            };
            let slowest = (1..=u64::from(*peers)).map(to_peer).max();
            delay = delay.saturating_add(slowest.unwrap_or(SimTime::ZERO));
        }
        delay
    }

    pub(super) fn on_compute_done(&mut self, handle: Handle) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        if request.phase != Phase::Compute {
            return; // the server crashed or hung meanwhile
        }
        let server = request.server;
        if request.writes_state {
            // A store topology writes the session back; a store-backed one writes it through.
            if self.needs.store_path {
                request.phase = Phase::StoreWrite;
                self.send_to_store(handle);
                return;
            }
            let (session, in_window) = (request.session, request.in_window);
            if self.needs.partitions && self.sync_write_cut_off(server) {
                // The replicas never acknowledge: the write fails (a 5xx) and the state keeps
                // its last replicated version.
                self.count_failure_on_server(server);
                self.finish_work(handle, server, Outcome::Failed);
                return;
            }
            self.state_written(session);
            if in_window {
                self.recorder.traffic.replication += self.replica_copy_bytes();
                if self.needs.zones {
                    self.recorder.traffic.cross_zone += self.cross_zone_replica_bytes(server);
                }
            }
        }
        self.finish_work(handle, server, Outcome::Ok);
    }

    /// Whether a sync write on `server` cannot reach its replicas.
    fn sync_write_cut_off(&self, server: u32) -> bool {
        matches!(
            self.topology.state,
            State::Server {
                replication: Replication::Sync { .. },
                ..
            }
        ) && self.servers[server as usize].cut_off(CUT_PEERS)
    }

    /// Bytes a change of a session sends to its replicas: one copy per sync replica, one for
    /// the async replica.
    fn replica_copy_bytes(&self) -> f64 {
        match &self.topology.state {
            State::Server {
                replication,
                session_bytes,
                ..
            } => session_bytes * f64::from(replication.peer_copies()),
            _ => 0.0,
        }
    }

    /// The session's state changed now (async replicas lag behind this; caches of older versions
    /// are stale).
    pub(super) fn state_written(&mut self, session: Handle) {
        if self.sessions.get(session).is_some() {
            self.extras.write_state(session, self.now);
        }
    }

    /// The worker is done with the request on `server`: it moves on to the next queued request
    /// (or goes idle) and the outcome goes back; a failure (the store's, a 5xx) through the
    /// balancer, which may try again.
    ///
    /// Inlined into its four callers (the end of a compute step, of a store operation): as a
    /// call it saved and restored six registers on every request (M/M/c benchmark: 1,156 ->
    /// 1,133 instructions a request, 0.971x and 0.974x the time in two sets of 21 pairs).
    /// Every caller has the request's server at hand: looking the request up again here was 6
    /// instructions a request of M/M/c (1,133 -> 1,127) and 7 at k = 1 of the scale benchmark;
    /// wall time 0.999x, 0.998x and, at k = 100, 0.995x (15, 15 and 8 pairs).
    #[inline(always)]
    pub(super) fn finish_work(&mut self, handle: Handle, server: u32, outcome: Outcome) {
        let server_index = server as usize;
        match self.servers[server_index].queue.pop_front() {
            Some(next) => self.start_work(next),
            None => {
                let server = &mut self.servers[server_index];
                server.busy -= 1;
                server.busy_workers.add(self.now, -1);
                self.recorder.busy_workers.add(self.now, -1);
            }
        }
        if outcome == Outcome::Ok {
            self.respond(handle, outcome);
        } else {
            self.try_failed(handle, outcome, TryFailure::Status5xx);
        }
    }

    /// Sends the outcome back through the balancer to the client; a failure is charged to the
    /// fault its server is going through.
    #[inline(always)] // measured: see start_compute
    pub(super) fn respond(&mut self, handle: Handle, outcome: Outcome) {
        if outcome == Outcome::Failed
            && let Some(request) = self.requests.get(handle)
        {
            self.count_failure_on_server(request.server);
        }
        self.send_back(handle, outcome);
    }

    /// Sends the outcome back through the balancer to the client.
    #[inline(always)] // measured: see start_compute
    fn send_back(&mut self, handle: Handle, outcome: Outcome) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        request.phase = Phase::Returning;
        request.outcome = outcome;
        let (server, id, key) = (request.server, request.session_id, request.draw_key);
        let network = &self.topology.network;
        let seeds = &self.seeds;
        let to_balancer = Self::draw_time(
            &network.balancer_server,
            seeds.net_response_to_balancer,
            id,
            key,
        );
        let to_client = Self::draw_time(
            &network.client_balancer,
            seeds.net_response_to_client,
            id,
            key,
        );
        let mut back = to_balancer.saturating_add(to_client);
        if self.needs.answer_extras {
            match self.answer_extras(handle, server, outcome) {
                Some(across) => back = back.saturating_add(across),
                None => return,
            }
        }
        self.balancer.answered(server);
        self.after(back, Event::AtClient(handle));
    }

    /// What partitions, outlier ejection and zones add to an answer's way back: `None` when it
    /// cannot reach the balancer (which waits for its timeout), else the time it spends
    /// crossing zones. (An answer that gets through is a success for outlier ejection.)
    #[cold]
    #[inline(never)]
    fn answer_extras(&mut self, handle: Handle, server: u32, outcome: Outcome) -> Option<SimTime> {
        if self.needs.partitions && self.servers[server as usize].cut_off(CUT_BALANCER) {
            let request = self.requests.get_mut(handle).expect("live request");
            request.phase = Phase::BlackHoled;
            self.start_server_timeout(handle);
            return None;
        }
        if self.needs.outlier && outcome == Outcome::Ok {
            self.observe_answer(server, true);
        }
        Some(if self.needs.zones {
            self.zone_hop_from_server(handle)
        } else {
            SimTime::ZERO
        })
    }

    /// Charges a failed attempt to the fault the server is going through, if any.
    pub(super) fn count_failure_on_server(&mut self, server: u32) {
        if let Some(record) = self.servers[server as usize].open_fault {
            self.recorder.faults[record as usize].requests_failed += 1;
        }
    }
}
