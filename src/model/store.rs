//! The external session store (Redis-like): a shared queueing station with its own workers and
//! waiting room. Every server's requests meet here, which is how it becomes the bottleneck.

use super::{Event, Outcome, Phase, World};
use crate::engine::{Handle, SimTime};
use crate::scenario::{State, Store};
use std::collections::VecDeque;

pub struct StoreStation {
    workers: u32,
    queue_limit: Option<u32>,
    busy: u32,
    /// Waiting operations with their service time, drawn on arrival.
    queue: VecDeque<(Handle, SimTime)>,
}

impl StoreStation {
    pub fn new(config: &Store) -> StoreStation {
        StoreStation {
            workers: config.workers,
            queue_limit: config.queue_limit,
            busy: 0,
            queue: VecDeque::new(),
        }
    }

    pub fn workers(&self) -> u32 {
        self.workers
    }
}

impl World<'_> {
    fn store_config(&self) -> &Store {
        match &self.topology.state {
            State::Store { store, .. } => store,
            _ => unreachable!("store events only occur in store topologies"),
        }
    }

    /// Sends the request's current store operation (read or write) over the network.
    pub(super) fn send_to_store(&mut self, handle: Handle) {
        let request = self.requests.get(handle).expect("live request");
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
            self.recorder.busy_store_workers.add(self.now, 1);
            self.queue
                .push(self.now.saturating_add(service), Event::StoreOpDone(handle));
        } else if store
            .queue_limit
            .is_none_or(|limit| store.queue.len() < limit as usize)
        {
            store.queue.push_back((handle, service));
        } else {
            // The store sheds the operation; the server answers 503.
            self.finish_work(handle, Outcome::Rejected);
        }
    }

    pub(super) fn on_store_op_done(&mut self, handle: Handle) {
        let store = self.store.as_mut().expect("store topology");
        match store.queue.pop_front() {
            Some((next, service)) => {
                self.queue
                    .push(self.now.saturating_add(service), Event::StoreOpDone(next));
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
        match request.phase {
            Phase::StoreRead => self.start_compute(handle),
            Phase::StoreWrite => self.finish_work(handle, Outcome::Ok),
            _ => {} // its server crashed while the store was working
        }
    }
}
