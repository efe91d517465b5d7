//! Routing at the balancer and the servers: admission to workers or the queue, the compute step,
//! state placement in server memory, and responses.

use super::{Event, Outcome, Phase, Session, World};
use crate::engine::{Handle, SimTime};
use crate::scenario::State;
use std::collections::VecDeque;

pub struct Server {
    pub alive: bool,
    /// Bumped at every crash: state and work tagged with an older incarnation are gone.
    pub incarnation: u32,
    pub busy: u32,
    pub queue: VecDeque<Handle>,
    pub session_bytes: f64,
}

impl Server {
    pub fn new() -> Server {
        Server {
            alive: true,
            incarnation: 0,
            busy: 0,
            queue: VecDeque::new(),
            session_bytes: 0.0,
        }
    }
}

impl World<'_> {
    pub(super) fn on_balancer(&mut self, handle: Handle) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(request.session) else {
            return;
        };
        let affinity_key = session.id ^ (u64::from(session.life) << 48);
        let server = self.balancer.route(affinity_key, session.home);
        session.home = Some(server);
        self.balancer.dispatched(server);
        request.server = server;
        request.phase = Phase::ToServer;
        let hop = Self::draw_time(
            &self.topology.network.balancer_server,
            self.seeds.net_to_server,
            session.id,
            request.draw_key,
        );
        self.after(hop, Event::AtServer(handle));
    }

    pub(super) fn on_server(&mut self, handle: Handle) {
        let Some(request) = self.requests.get(handle) else {
            return;
        };
        let (server_index, session_handle, in_window) =
            (request.server as usize, request.session, request.in_window);
        if !self.servers[server_index].alive {
            if in_window {
                self.recorder.counters.requests_to_dead_server += 1;
            }
            self.respond(handle, Outcome::Failed); // connection refused
            return;
        }
        if !self.session_state_available(session_handle, server_index as u32) {
            self.mark_session_lost(session_handle);
            self.respond(handle, Outcome::Failed); // "session expired": the state is not here
            return;
        }
        let workers = self.topology.servers.workers;
        let queue_limit = self.topology.servers.queue_limit;
        let server = &mut self.servers[server_index];
        if server.busy < workers {
            server.busy += 1;
            self.recorder.busy_workers.add(self.now, 1);
            self.place_session_state(session_handle, server_index as u32);
            self.start_work(handle);
        } else if queue_limit.is_none_or(|limit| server.queue.len() < limit as usize) {
            server.queue.push_back(handle);
            self.requests.get_mut(handle).expect("checked above").phase = Phase::Queued;
            self.place_session_state(session_handle, server_index as u32);
        } else {
            self.respond(handle, Outcome::Rejected);
        }
    }

    /// With server-held state, a request can only be served where its session lives (or anywhere,
    /// for the session's first accepted request, which creates the state).
    fn session_state_available(&self, session_handle: Handle, server: u32) -> bool {
        if !matches!(self.topology.state, State::Server { .. }) {
            return true;
        }
        let Some(session) = self.sessions.get(session_handle) else {
            return true;
        };
        match session.state_at {
            _ if session.lost => false,
            None => true,
            Some((home, incarnation)) => {
                home == server && incarnation == self.servers[server as usize].incarnation
            }
        }
    }

    fn place_session_state(&mut self, session_handle: Handle, server: u32) {
        let State::Server { session_bytes, .. } = self.topology.state else {
            return;
        };
        let incarnation = self.servers[server as usize].incarnation;
        let Some(session) = self.sessions.get_mut(session_handle) else {
            return;
        };
        if session.state_at.is_some() {
            return;
        }
        session.state_at = Some((server, incarnation));
        let held = &mut self.servers[server as usize].session_bytes;
        *held += session_bytes;
        self.recorder.peak_session_bytes = self.recorder.peak_session_bytes.max(*held);
    }

    /// A session no longer uses its state: it is freed after the idle timeout (at once without
    /// one), unless a crash already wiped it.
    pub(super) fn release_session_state(&mut self, session: &Session) {
        let State::Server { session_ttl, .. } = self.topology.state else {
            return;
        };
        let Some((server, incarnation)) = session.state_at else {
            return;
        };
        if session_ttl == SimTime::ZERO {
            self.on_state_expired(server, incarnation);
        } else {
            let at = self.now.saturating_add(session_ttl);
            self.queue.push(
                at,
                Event::StateExpired {
                    server,
                    incarnation,
                },
            );
        }
    }

    pub(super) fn on_state_expired(&mut self, server: u32, incarnation: u32) {
        let State::Server { session_bytes, .. } = self.topology.state else {
            return;
        };
        let server = &mut self.servers[server as usize];
        if server.incarnation == incarnation {
            server.session_bytes = (server.session_bytes - session_bytes).max(0.0);
        }
    }

    /// A worker has been assigned: begin with the store read, or go straight to computing.
    fn start_work(&mut self, handle: Handle) {
        if matches!(self.topology.state, State::Store { .. }) {
            self.requests.get_mut(handle).expect("live request").phase = Phase::StoreRead;
            self.send_to_store(handle);
        } else {
            self.start_compute(handle);
        }
    }

    pub(super) fn start_compute(&mut self, handle: Handle) {
        let verify = match &self.topology.state {
            State::Token { verify_time, .. } => {
                let request = self.requests.get(handle).expect("live request");
                Self::draw_time(
                    verify_time,
                    self.seeds.verify,
                    request.session_id,
                    request.draw_key,
                )
            }
            _ => SimTime::ZERO,
        };
        let request = self.requests.get_mut(handle).expect("live request");
        request.phase = Phase::Compute;
        // Always through the queue (never inline), so a run of zero-length steps cannot recurse.
        let done = self
            .now
            .saturating_add(verify)
            .saturating_add(request.demand);
        self.queue.push(done, Event::ComputeDone(handle));
    }

    pub(super) fn on_compute_done(&mut self, handle: Handle) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        if request.phase != Phase::Compute {
            return; // the server crashed meanwhile; the client has been told
        }
        if request.writes_state && matches!(self.topology.state, State::Store { .. }) {
            request.phase = Phase::StoreWrite;
            self.send_to_store(handle);
        } else {
            self.finish_work(handle, Outcome::Ok);
        }
    }

    /// The worker is done with the request: hand the worker to the next queued request, respond.
    pub(super) fn finish_work(&mut self, handle: Handle, outcome: Outcome) {
        let server_index = self.requests.get(handle).expect("live request").server as usize;
        match self.servers[server_index].queue.pop_front() {
            Some(next) => self.start_work(next),
            None => {
                self.servers[server_index].busy -= 1;
                self.recorder.busy_workers.add(self.now, -1);
            }
        }
        self.respond(handle, outcome);
    }

    /// Sends the outcome back through the balancer to the client.
    pub(super) fn respond(&mut self, handle: Handle, outcome: Outcome) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        request.phase = Phase::Returning;
        request.outcome = outcome;
        let (server, id, key) = (request.server, request.session_id, request.draw_key);
        self.balancer.answered(server);
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
        let back = to_balancer.saturating_add(to_client);
        self.after(back, Event::AtClient(handle));
    }
}
