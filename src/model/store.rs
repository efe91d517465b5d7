//! The external session store (Redis-like): shared queueing stations with their own workers and
//! waiting rooms, one per shard (one unless `shards` says more). Every server's requests meet
//! here, which is how it becomes the bottleneck, and an outage here fails every request that
//! needs it, or, on one shard, every request of the sessions that hash to it.

use super::gray::CUT_STORE;
use super::server::session_key;
use super::{Event, Outcome, Phase, Recovery, World};
use crate::engine::rng::mix64;
use crate::engine::{Handle, SimTime};
use crate::metrics::LossCause;
use crate::scenario::{State, Store};
use std::collections::VecDeque;

pub struct StoreStation {
    workers: u32,
    queue_limit: Option<u32>,
    busy: u32,
    /// Waiting operations with their service time, drawn on arrival.
    queue: VecDeque<(Handle, SimTime)>,
    /// False during an outage.
    pub up: bool,
    /// Bumped by each outage: operations of an earlier epoch were cut off.
    epoch: u32,
    /// The faults.csv row of the current outage.
    open_fault: Option<u32>,
    /// Outages holding this shard down (they may overlap), and whether any of them wipes it.
    outages_open: u32,
    wipes_on_return: bool,
    /// Operations that arrived since the last timeseries boundary (overload detection).
    arrived: u64,
}

/// A `StoreOpDone` event's shard and epoch in one `u32`, so the event stays 16 bytes: the shard
/// in the top 14 bits (at most 16,384 shards), the epoch (outages so far, modulo 2^18) below.
const EPOCH_BITS: u32 = 18;

fn tag(shard: u32, epoch: u32) -> u32 {
    (shard << EPOCH_BITS) | (epoch & ((1 << EPOCH_BITS) - 1))
}

fn untag(tag: u32) -> (usize, u32) {
    ((tag >> EPOCH_BITS) as usize, tag & ((1 << EPOCH_BITS) - 1))
}

/// The shard of a session: a `hot_share` of sessions on shard 0, the others hashed evenly. The
/// hash is salted per replication (the same in every topology of it): session ids repeat from
/// one replication to the next, and a fixed mapping would make their shards the same draw.
pub fn shard_of(session_id: u64, salt: u64, shards: u32, hot_share: f64) -> usize {
    if shards <= 1 {
        return 0;
    }
    let key = mix64(session_id ^ salt);
    if hot_share > 0.0 {
        let u = (mix64(key) >> 11) as f64 / (1u64 << 53) as f64;
        if u < hot_share {
            return 0;
        }
    }
    (key % u64::from(shards)) as usize
}

impl StoreStation {
    pub fn new(config: &Store) -> StoreStation {
        StoreStation {
            workers: config.workers,
            queue_limit: config.queue_limit,
            busy: 0,
            queue: VecDeque::new(),
            up: true,
            epoch: 0,
            open_fault: None,
            outages_open: 0,
            wipes_on_return: false,
            arrived: 0,
        }
    }

    pub fn workers(&self) -> u32 {
        self.workers
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn busy(&self) -> u32 {
        self.busy
    }

    /// The operations that arrived since the last call.
    pub fn take_arrived(&mut self) -> u64 {
        std::mem::take(&mut self.arrived)
    }

    /// Operations waiting for a worker.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
}

impl World<'_> {
    fn store_config(&self) -> &Store {
        self.topology
            .store()
            .expect("store events only occur in topologies with a store")
    }

    /// The shard a session's state lives on.
    pub(super) fn session_shard(&self, session_id: u64) -> usize {
        let config = self.store_config();
        shard_of(
            session_id,
            self.seeds.store_shard,
            config.shards,
            config.hot_share,
        )
    }

    /// Sends the request's current store operation (read or write) over the network.
    pub(super) fn send_to_store(&mut self, handle: Handle) {
        let request = self.requests.get(handle).expect("live request");
        // The session crosses the network once per operation: read back, or written.
        if request.in_window {
            self.recorder.traffic.store += self.topology.state.session_bytes();
        }
        let seed = match request.phase {
            Phase::StoreWrite => self.seeds.net_to_store_write,
            _ => self.seeds.net_to_store_read,
        };
        let network = &self.topology.network;
        let mut hop = Self::draw_time(
            &network.server_store,
            seed,
            request.session_id,
            request.draw_key,
        );
        if self.needs.zones {
            let shard = self.session_shard(request.session_id);
            hop = hop.saturating_add(self.zone_hop_to_store(handle, shard, 2));
        }
        self.after(hop, Event::AtStore(handle));
    }

    pub(super) fn on_store(&mut self, handle: Handle) {
        let Some(request) = self.requests.get(handle) else {
            return;
        };
        if !matches!(request.phase, Phase::StoreRead | Phase::StoreWrite) {
            return; // its server crashed; the connection is gone
        }
        let shard = self.session_shard(request.session_id);
        if self.needs.partitions && self.servers[request.server as usize].cut_off(CUT_STORE) {
            // Its server cannot reach the store: the operation fails as in an outage, charged
            // to the partition.
            let server = request.server;
            self.count_failure_on_server(server);
            self.store_failed(handle, Outcome::StoreUnavailable);
            return;
        }
        if !self.stores[shard].up {
            self.store_unavailable(handle, shard);
            return;
        }
        let config = self.store_config();
        let (dist, seed) = if request.phase == Phase::StoreRead {
            (&config.read, self.seeds.store_read)
        } else {
            (&config.write, self.seeds.store_write)
        };
        let service = Self::draw_time(dist, seed, request.session_id, request.draw_key);
        let store = &mut self.stores[shard];
        store.arrived += 1;
        if store.busy < store.workers {
            store.busy += 1;
            let epoch = tag(shard as u32, store.epoch);
            self.recorder.busy_store_workers.add(self.now, 1);
            self.queue.push(
                self.now.saturating_add(service),
                Event::StoreOpDone {
                    request: handle,
                    epoch,
                },
            );
        } else if store
            .queue_limit
            .is_none_or(|limit| store.queue.len() < limit as usize)
        {
            store.queue.push_back((handle, service));
        } else {
            // The store sheds the operation; the server answers 503.
            self.store_failed(handle, Outcome::Rejected);
        }
    }

    /// The store (the request's shard) cannot be reached: the server gives up on the request at
    /// once.
    fn store_unavailable(&mut self, handle: Handle, shard: usize) {
        if let Some(record) = self.stores[shard].open_fault {
            self.recorder.faults[record as usize].requests_failed += 1;
        }
        self.store_failed(handle, Outcome::StoreUnavailable);
    }

    /// A store operation failed: the server answers with `outcome`. A failover's backup read
    /// that failed leaves the session where it was: still to be fetched, by whichever server
    /// serves it next.
    fn store_failed(&mut self, handle: Handle, outcome: Outcome) {
        let request = self.requests.get(handle).expect("live request");
        let server = request.server;
        if request.fetch == Some(Recovery::Store) && request.phase == Phase::StoreRead {
            let session = request.session;
            self.unplace_session_state(session, server);
            if let Some(session) = self.sessions.get_mut(session) {
                session.recovery = Some(Recovery::Store);
            }
        }
        self.finish_work(handle, server, outcome);
    }

    pub(super) fn on_store_op_done(&mut self, handle: Handle, tagged: u32) {
        let (shard, epoch) = untag(tagged);
        let store = &mut self.stores[shard];
        if epoch != untag(tag(0, store.epoch)).1 {
            return; // an outage cut this operation off and reset the workers
        }
        match store.queue.pop_front() {
            Some((next, service)) => {
                self.queue.push(
                    self.now.saturating_add(service),
                    Event::StoreOpDone {
                        request: next,
                        epoch: tagged,
                    },
                );
            }
            None => {
                store.busy -= 1;
                self.recorder.busy_store_workers.add(self.now, -1);
            }
        }
        let Some(request) = self.requests.get(handle) else {
            return;
        };
        if !matches!(request.phase, Phase::StoreRead | Phase::StoreWrite) {
            return;
        }
        let seed = match request.phase {
            Phase::StoreWrite => self.seeds.net_from_store_write,
            _ => self.seeds.net_from_store_read,
        };
        let network = &self.topology.network;
        let mut hop = Self::draw_time(
            &network.server_store,
            seed,
            request.session_id,
            request.draw_key,
        );
        if self.needs.zones {
            let shard = self.session_shard(request.session_id);
            hop = hop.saturating_add(self.zone_hop_to_store(handle, shard, 3));
        }
        self.after(hop, Event::StoreReply(handle));
    }

    pub(super) fn on_store_reply(&mut self, handle: Handle) {
        let Some(request) = self.requests.get(handle) else {
            return;
        };
        let (phase, session, server) = (request.phase, request.session, request.server);
        match phase {
            Phase::StoreRead => {
                if request.fetch == Some(Recovery::Store)
                    && self.sessions.get(session).is_some_and(|s| s.in_window())
                {
                    self.recorder.counters.sessions_failed_over += 1;
                }
                self.cache_put(session, server);
                self.start_compute(handle);
            }
            Phase::StoreWrite => {
                self.state_written(session);
                self.cache_put(session, server);
                self.finish_work(handle, server, Outcome::Ok);
            }
            _ => {} // its server crashed while the store was working
        }
    }

    /// Keeps the session's current version in the server's cache, if it has one.
    fn cache_put(&mut self, handle: Handle, server: u32) {
        let Some(session) = self.sessions.get(handle) else {
            return;
        };
        let (key, version) = (session_key(session), self.extras.written(handle).version);
        let now = self.now;
        if let Some(cache) = &mut self.servers[server as usize].cache {
            cache.put(key, version, now);
        }
    }

    /// A store outage begins on `shard` (every shard when `None`): every operation there or on
    /// its way fails, and so will every one until it is back. Outages may overlap: a shard is
    /// back when the last one holding it ends (empty if any of them wipes it), and the first
    /// one's faults.csv row covers them all; each shard taken down has a row of its own.
    pub(super) fn store_down(
        &mut self,
        fault: u32,
        back_after: SimTime,
        wipes: bool,
        shard: Option<u32>,
    ) {
        let back = self.now.saturating_add(back_after);
        if self.stores.is_empty() {
            // This topology keeps no state in a store: the outage costs it nothing, but its row
            // in faults.csv (and the p99 during it) still lets it be compared with the others.
            self.queue.push(back, Event::StoreUp(0));
            self.storeless_outages_open += 1;
            if self.storeless_outages_open == 1 {
                let record = self.open_fault_record(fault, None);
                self.recorder.faults[record as usize].detected = Some(self.now);
                self.storeless_outage = Some(record);
            }
            return;
        }
        let shards = match shard {
            Some(shard) => shard..shard + 1,
            None => 0..self.stores.len() as u32,
        };
        for shard in shards {
            self.queue.push(back, Event::StoreUp(shard));
            self.shard_down(fault, shard as usize, wipes);
        }
    }

    fn shard_down(&mut self, fault: u32, shard: usize, wipes: bool) {
        let store = &mut self.stores[shard];
        store.outages_open += 1;
        store.wipes_on_return |= wipes;
        if store.outages_open > 1 {
            return; // already down
        }
        store.up = false;
        store.epoch = store.epoch.wrapping_add(1);
        store.queue.clear();
        let busy = std::mem::take(&mut store.busy);
        self.recorder
            .busy_store_workers
            .add(self.now, -i64::from(busy));
        let record = self.open_fault_record(fault, None);
        self.stores[shard].open_fault = Some(record);
        // Clients see errors at once: the outage is "detected" when it starts.
        self.recorder.faults[record as usize].detected = Some(self.now);
        let cut_off: Vec<Handle> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                matches!(r.phase, Phase::StoreRead | Phase::StoreWrite)
                    && self.session_shard(r.session_id) == shard
            })
            .map(|(handle, _)| handle)
            .collect();
        for handle in cut_off {
            self.store_unavailable(handle, shard);
        }
    }

    /// One store outage of `shard` ends; the shard is back if it was the last one open.
    pub(super) fn on_store_up(&mut self, shard: u32) {
        let shard = shard as usize;
        if self.stores.is_empty() {
            self.storeless_outages_open -= 1;
            if self.storeless_outages_open == 0
                && let Some(record) = self.storeless_outage.take()
            {
                self.close_fault_record(record);
            }
            return;
        }
        let store = &mut self.stores[shard];
        store.outages_open -= 1;
        if store.outages_open > 0 {
            return; // another outage still holds it down
        }
        let wipes = std::mem::take(&mut store.wipes_on_return);
        store.up = true;
        let record = store.open_fault.take();
        if let Some(record) = record {
            self.close_fault_record(record);
        }
        if !wipes {
            return;
        }
        // It came back empty: every session whose state only this shard held is gone.
        let store_only = matches!(self.topology.state, State::Store { .. });
        let lost: Vec<Handle> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.lost()
                    && self.session_shard(s.id) == shard
                    && if store_only {
                        s.next_request > 0
                    } else {
                        s.recovery == Some(Recovery::Store)
                    }
            })
            .map(|(handle, _)| handle)
            .collect();
        for handle in lost {
            self.mark_session_lost(handle, LossCause::StoreOutage, None, record);
        }
    }
}
