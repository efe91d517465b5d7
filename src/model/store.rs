//! The external session store (Redis-like): a shared queueing station with its own workers and
//! waiting room. Every server's requests meet here, which is how it becomes the bottleneck, and
//! an outage here fails every request that needs it.

use super::server::session_key;
use super::{Event, Outcome, Phase, Recovery, World};
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
        }
    }

    /// Operations waiting for a worker.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn workers(&self) -> u32 {
        self.workers
    }
}

impl World<'_> {
    fn store_config(&self) -> &Store {
        self.topology
            .store()
            .expect("store events only occur in topologies with a store")
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
        let hop = Self::draw_time(
            &network.server_store,
            seed,
            request.session_id,
            request.draw_key,
        );
        self.after(hop, Event::AtStore(handle));
    }

    pub(super) fn on_store(&mut self, handle: Handle) {
        let Some(request) = self.requests.get(handle) else {
            return;
        };
        if !matches!(request.phase, Phase::StoreRead | Phase::StoreWrite) {
            return; // its server crashed; the connection is gone
        }
        if !self.store.as_ref().expect("store topology").up {
            self.store_unavailable(handle);
            return;
        }
        let config = self.store_config();
        let (dist, seed) = if request.phase == Phase::StoreRead {
            (&config.read, self.seeds.store_read)
        } else {
            (&config.write, self.seeds.store_write)
        };
        let service = Self::draw_time(dist, seed, request.session_id, request.draw_key);
        let store = self.store.as_mut().expect("store topology");
        if store.busy < store.workers {
            store.busy += 1;
            let epoch = store.epoch;
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

    /// The store cannot be reached: the server gives up on the request at once.
    fn store_unavailable(&mut self, handle: Handle) {
        if let Some(record) = self.store.as_ref().and_then(|s| s.open_fault) {
            self.recorder.faults[record as usize].requests_failed += 1;
        }
        self.store_failed(handle, Outcome::StoreUnavailable);
    }

    /// A store operation failed: the server answers with `outcome`. A failover's backup read
    /// that failed leaves the session where it was: still to be fetched, by whichever server
    /// serves it next.
    fn store_failed(&mut self, handle: Handle, outcome: Outcome) {
        let request = self.requests.get(handle).expect("live request");
        if request.fetch == Some(Recovery::Store) && request.phase == Phase::StoreRead {
            let (session, server) = (request.session, request.server);
            self.unplace_session_state(session, server);
            if let Some(session) = self.sessions.get_mut(session) {
                session.recovery = Some(Recovery::Store);
            }
        }
        self.finish_work(handle, outcome);
    }

    pub(super) fn on_store_op_done(&mut self, handle: Handle, epoch: u32) {
        let store = self.store.as_mut().expect("store topology");
        if epoch != store.epoch {
            return; // an outage cut this operation off and reset the workers
        }
        match store.queue.pop_front() {
            Some((next, service)) => {
                self.queue.push(
                    self.now.saturating_add(service),
                    Event::StoreOpDone {
                        request: next,
                        epoch,
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
        let hop = Self::draw_time(
            &network.server_store,
            seed,
            request.session_id,
            request.draw_key,
        );
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
                    && self.sessions.get(session).is_some_and(|s| s.in_window)
                {
                    self.recorder.counters.sessions_failed_over += 1;
                }
                self.cache_put(session, server);
                self.start_compute(handle);
            }
            Phase::StoreWrite => {
                self.state_written(session);
                self.cache_put(session, server);
                self.finish_work(handle, Outcome::Ok);
            }
            _ => {} // its server crashed while the store was working
        }
    }

    /// Keeps the session's current version in the server's cache, if it has one.
    fn cache_put(&mut self, session: Handle, server: u32) {
        let Some(session) = self.sessions.get(session) else {
            return;
        };
        let (key, version) = (session_key(session), session.version);
        let now = self.now;
        if let Some(cache) = &mut self.servers[server as usize].cache {
            cache.put(key, version, now);
        }
    }

    /// A store outage begins: every operation in the store or on its way fails, and so will every
    /// one until it is back. Outages may overlap: the store is back when the last one ends (empty
    /// if any of them wipes it), and the first one's faults.csv row covers them all.
    pub(super) fn store_down(&mut self, fault: u32, back_after: SimTime, wipes: bool) {
        self.queue
            .push(self.now.saturating_add(back_after), Event::StoreUp);
        self.store_outages_open += 1;
        self.store_wipes_on_return |= wipes;
        if self.store_outages_open > 1 {
            return; // already down
        }
        let Some(store) = self.store.as_mut() else {
            // This topology keeps no state in a store: the outage costs it nothing, but its row
            // in faults.csv (and the p99 during it) still lets it be compared with the others.
            let record = self.open_fault_record(fault, None);
            self.recorder.faults[record as usize].detected = Some(self.now);
            self.storeless_outage = Some(record);
            return;
        };
        store.up = false;
        store.epoch += 1;
        store.queue.clear();
        let busy = std::mem::take(&mut store.busy);
        self.recorder
            .busy_store_workers
            .add(self.now, -i64::from(busy));
        let record = self.open_fault_record(fault, None);
        let store = self.store.as_mut().expect("checked above");
        store.open_fault = Some(record);
        // Clients see errors at once: the outage is "detected" when it starts.
        self.recorder.faults[record as usize].detected = Some(self.now);
        let cut_off: Vec<Handle> = self
            .requests
            .iter()
            .filter(|(_, r)| matches!(r.phase, Phase::StoreRead | Phase::StoreWrite))
            .map(|(handle, _)| handle)
            .collect();
        for handle in cut_off {
            self.store_unavailable(handle);
        }
    }

    /// One store outage ends; the store is back if it was the last one open.
    pub(super) fn on_store_up(&mut self) {
        self.store_outages_open -= 1;
        if self.store_outages_open > 0 {
            return; // another outage still holds it down
        }
        let wipes = std::mem::take(&mut self.store_wipes_on_return);
        let Some(store) = self.store.as_mut() else {
            if let Some(record) = self.storeless_outage.take() {
                self.close_fault_record(record);
            }
            return;
        };
        store.up = true;
        let record = store.open_fault.take();
        if let Some(record) = record {
            self.close_fault_record(record);
        }
        if !wipes {
            return;
        }
        // It came back empty: every session whose state only the store held is gone.
        let store_only = matches!(self.topology.state, State::Store { .. });
        let lost: Vec<Handle> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.lost
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
