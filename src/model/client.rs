//! The client side: session arrivals, sending requests, receiving outcomes, think time, timeouts,
//! and what a user does when the session is gone.

use super::{Event, Outcome, Phase, Request, Session, World};
use crate::engine::rng::keyed;
use crate::engine::{Handle, SimTime};
use crate::scenario::{Dist, OnSessionLost, State};
use rand::RngExt;
use rand_distr::Exp1;

struct RequestDraws {
    demand: SimTime,
    /// Bytes this request puts on the wire: payloads plus what the state placement adds.
    bytes: f64,
    writes_state: bool,
}

impl World<'_> {
    pub(super) fn schedule_next_arrival(&mut self) {
        let unit: f64 = self.arrivals.sample(Exp1);
        let gap = SimTime::from_nanos_f64(unit * self.mean_arrival_gap_ns);
        let at = self.now.saturating_add(gap);
        if at < self.end {
            self.queue.push_next_in_lane(at, Event::SessionArrival);
        }
    }

    pub(super) fn on_session_arrival(&mut self) {
        let id = self.next_session_id;
        self.next_session_id += 1;
        let requests = Dist::round_count(Self::draw(
            &self.scenario.workload.requests_per_session,
            self.seeds.requests_per_session,
            id,
            0,
        ));
        let session = self.start_session(id, 0, requests, 0);
        self.schedule_next_arrival();
        self.send_request(session);
    }

    fn start_session(&mut self, id: u64, life: u32, requests: u32, redo_until: u32) -> Handle {
        let in_window = self.in_window();
        if in_window {
            self.recorder.counters.sessions_started += 1;
        }
        self.recorder.active_sessions.add(self.now, 1);
        self.sessions.insert(Session {
            id,
            life,
            requests,
            redo_until,
            next_request: 0,
            started_at: self.now,
            in_window,
            home: None,
            state_at: None,
            lost: false,
        })
    }

    pub(super) fn on_warmup_end(&mut self) {
        let carried: Vec<Handle> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.lost && !s.in_window)
            .map(|(handle, _)| handle)
            .collect();
        self.recorder.counters.sessions_at_warmup += carried.len() as u64;
        for handle in carried {
            if let Some(session) = self.sessions.get_mut(handle) {
                session.in_window = true;
            }
        }
    }

    pub(super) fn send_request(&mut self, session_handle: Handle) {
        let Some(session) = self.sessions.get_mut(session_handle) else {
            return;
        };
        let index = session.next_request;
        session.next_request += 1;
        self.requests_simulated += 1;
        let (session_id, life) = (session.id, session.life);
        let redone = index < session.redo_until;
        let draws = self.draw_request(session_id, index);
        let in_window = self.in_window();
        if in_window {
            let counters = &mut self.recorder.counters;
            counters.requests += 1;
            if redone {
                counters.requests_redone += 1;
            }
            self.recorder.bytes_total += draws.bytes;
        }
        let draw_key = (u64::from(life) << 32) | u64::from(index);
        let request = self.requests.insert(Request {
            session: session_handle,
            session_id,
            index,
            draw_key,
            sent_at: self.now,
            in_window,
            phase: Phase::ToBalancer,
            server: 0,
            outcome: Outcome::Ok,
            timed_out: false,
            demand: draws.demand,
            writes_state: draws.writes_state,
        });
        if let Some(timeout) = self.scenario.client.timeout {
            let at = self.now.saturating_add(timeout);
            self.queue.push(at, Event::ClientTimeout(request));
        }
        let network = &self.topology.network;
        let hop = Self::draw_time(
            &network.client_balancer,
            self.seeds.net_request_in,
            session_id,
            draw_key,
        );
        self.after(hop, Event::AtBalancer(request));
    }

    /// The workload's draws for request `index` of session `session_id`: the same in every topology.
    fn draw_request(&self, session_id: u64, index: u32) -> RequestDraws {
        let workload = &self.scenario.workload;
        let seeds = &self.seeds;
        let key = u64::from(index);
        let demand = Self::draw_time(&workload.service_time, seeds.service_time, session_id, key);
        let payload = Self::draw(
            &workload.request_bytes,
            seeds.request_bytes,
            session_id,
            key,
        ) + Self::draw(
            &workload.response_bytes,
            seeds.response_bytes,
            session_id,
            key,
        );
        let (writes_state, state_bytes) = match &self.topology.state {
            State::Token { token_bytes, .. } => (false, *token_bytes),
            State::Store {
                session_bytes,
                store,
            } => {
                // A keyed draw: the same for this request whichever topology makes it.
                let writes = match store.write_fraction {
                    f if f >= 1.0 => true,
                    f if f <= 0.0 => false,
                    f => keyed(seeds.state_write, session_id, key).random::<f64>() < f,
                };
                (writes, session_bytes * if writes { 2.0 } else { 1.0 })
            }
            State::Stateless | State::Server { .. } => (false, 0.0),
        };
        RequestDraws {
            demand,
            bytes: payload + state_bytes,
            writes_state,
        }
    }

    pub(super) fn on_client(&mut self, handle: Handle) {
        let Some(request) = self.requests.remove(handle) else {
            return;
        };
        if request.timed_out {
            return; // the client already gave up on it and moved on
        }
        if request.in_window {
            let counters = &mut self.recorder.counters;
            match request.outcome {
                Outcome::Ok => {
                    counters.ok += 1;
                    let latency = self.now.saturating_sub(request.sent_at).nanos();
                    self.recorder.latency_sum_ns += latency as f64;
                    // Auto-resizing histogram: recording cannot fail for a positive value.
                    let _ = self.recorder.latency.record(latency.max(1));
                }
                Outcome::Rejected => counters.rejected += 1,
                Outcome::Failed => counters.failed += 1,
            }
        }
        if request.outcome == Outcome::Ok && self.in_window() {
            self.recorder.ok_in_window += 1;
        }
        if request.outcome == Outcome::Ok
            && let Some(seconds) = &mut self.recorder.per_second
        {
            let second = (self.now.nanos() / 1_000_000_000) as usize;
            if seconds.len() <= second {
                seconds.resize(second + 1, (0.0, 0));
            }
            let latency = self.now.saturating_sub(request.sent_at).nanos() as f64;
            seconds[second].0 += latency;
            seconds[second].1 += 1;
        }
        self.continue_session(request.session, request.index);
    }

    pub(super) fn on_client_timeout(&mut self, handle: Handle) {
        let Some(request) = self.requests.get_mut(handle) else {
            return; // answered in time
        };
        if request.timed_out {
            return;
        }
        request.timed_out = true;
        let (session, index, in_window) = (request.session, request.index, request.in_window);
        if in_window {
            self.recorder.counters.timed_out += 1;
        }
        self.continue_session(session, index);
    }

    /// After request `index` of the session ended (any outcome): think, send the next one, finish
    /// the session, or react to its loss.
    fn continue_session(&mut self, handle: Handle, index: u32) {
        let Some(session) = self.sessions.get(handle) else {
            return;
        };
        if session.lost {
            self.after_session_lost(handle);
            return;
        }
        if session.next_request < session.requests {
            let think = Self::draw_time(
                &self.scenario.workload.think_time,
                self.seeds.think_time,
                session.id,
                u64::from(index),
            );
            // Through the queue even for zero think time: a session of many requests that all
            // fail at once must not recurse once per request.
            self.queue
                .push(self.now.saturating_add(think), Event::SendRequest(handle));
        } else {
            self.complete_session(handle);
        }
    }

    fn complete_session(&mut self, handle: Handle) {
        let Some(session) = self.sessions.remove(handle) else {
            return;
        };
        if session.in_window {
            self.recorder.counters.sessions_completed += 1;
            self.recorder.session_duration_sum_secs +=
                self.now.saturating_sub(session.started_at).as_secs_f64();
        }
        self.recorder.active_sessions.add(self.now, -1);
        self.release_session_state(&session);
    }

    /// Marks a session's state as gone. Counted once, when it happens; the client finds out with
    /// its next response.
    pub(super) fn mark_session_lost(&mut self, handle: Handle) {
        let Some(session) = self.sessions.get_mut(handle) else {
            return;
        };
        if session.lost {
            return;
        }
        session.lost = true;
        if session.in_window {
            self.recorder.counters.sessions_lost += 1;
        }
        self.recorder.active_sessions.add(self.now, -1);
    }

    fn after_session_lost(&mut self, handle: Handle) {
        let Some(session) = self.sessions.remove(handle) else {
            return;
        };
        self.release_session_state(&session);
        if self.scenario.workload.on_session_lost == OnSessionLost::Relogin {
            // The new login replays the session from its first request (the same work, so the
            // same workload draws); the requests the lost session had already sent are redone.
            let redo_until = session.next_request.max(session.redo_until);
            let restarted =
                self.start_session(session.id, session.life + 1, session.requests, redo_until);
            self.send_request(restarted);
        }
    }
}
