//! The client side: session arrivals, sending requests and their retries, receiving outcomes,
//! think time, timeouts, and what a user does when the session is gone.

use super::limits::GUARD_INTERVAL;
use super::{Event, Outcome, Phase, Request, Session, World, flags};
use crate::engine::rng::keyed;
use crate::engine::{Handle, SimTime};
use crate::metrics::LossCause;
use crate::scenario::{Backoff, BackoffKind, Dist, Jitter, OnSessionLost, Replication, State};
use rand::RngExt;

/// What a request's draws owe the topology's state: worked out once from the topology, so that
/// drawing a request reads one small enum, not the topology's state and its replication.
#[derive(Clone, Copy)]
pub(super) enum StateDraws {
    Nothing,
    /// The token every request carries.
    Token {
        bytes: f64,
    },
    /// A store topology: the request writes the state with this probability.
    Writes {
        fraction: f64,
    },
    /// State replicated between servers: it is copied when the request writes it (with this
    /// probability) and on the session's first request, which creates it.
    Replicated {
        fraction: f64,
    },
}

impl StateDraws {
    pub(super) fn of(state: &State) -> StateDraws {
        match state {
            State::Token { token_bytes, .. } => StateDraws::Token {
                bytes: *token_bytes,
            },
            State::Store { store, .. } => StateDraws::Writes {
                fraction: store.write_fraction,
            },
            State::Server {
                replication,
                write_fraction,
                ..
            } if !matches!(replication, Replication::None) => StateDraws::Replicated {
                fraction: *write_fraction,
            },
            State::Stateless | State::Server { .. } => StateDraws::Nothing,
        }
    }
}

struct RequestDraws {
    demand: SimTime,
    /// Request and response payloads.
    payload: f64,
    /// The token the request carries (`state = "token"`).
    token_bytes: f64,
    writes_state: bool,
}

impl World<'_> {
    pub(super) fn on_session_arrival(&mut self) {
        let id = self.next_session_id;
        self.next_session_id += 1;
        let session = self.start_new_session(id);
        self.schedule_next_arrival();
        self.send_request(session);
    }

    /// A replayed log's session `number` starts; the log's next session is scheduled.
    pub(super) fn on_log_session(&mut self, number: u64) {
        let session = self.start_session(number, 0, u32::MAX, 0);
        self.schedule_next_log_session();
        self.send_request(session);
    }

    /// A closed-loop user starts session `id`.
    pub(super) fn on_user_session(&mut self, id: u64) {
        let session = self.start_new_session(id);
        self.send_request(session);
    }

    fn start_new_session(&mut self, id: u64) -> Handle {
        let requests = Dist::round_count(Self::draw(
            &self.scenario.workload.requests_per_session,
            self.seeds.requests_per_session,
            id,
            0,
        ));
        self.start_session(id, 0, requests, 0)
    }

    fn start_session(&mut self, id: u64, life: u32, requests: u32, redo_until: u32) -> Handle {
        let in_window = self.in_window();
        if in_window {
            self.recorder.counters.sessions_started += 1;
        }
        self.recorder.active_sessions.add(self.now, 1);
        let handle = self.sessions.insert(Session {
            id,
            life,
            requests,
            next_request: 0,
            touched: 0,
            started_at: self.now,
            home_plus_one: None,
            state_at_plus_one: None,
            recovery: None,
            attempts: 0,
            flags: if in_window {
                flags::IN_WINDOW | flags::REQUEST_IN_WINDOW
            } else {
                0
            },
            request_sent_at: self.now,
        });
        if self.extras.any() {
            self.extras.start(handle, self.now);
            self.clear_link(handle);
        }
        if redo_until > 0 {
            self.redo_until.insert(handle, redo_until);
        }
        handle
    }

    pub(super) fn on_warmup_end(&mut self) {
        let now = self.now;
        self.recorder.areas_at_warmup = self.recorder.levels().map(|level| level.area(now));
        for server in &mut self.servers {
            server.busy_area_at_warmup = server.busy_workers.area(now);
        }
        let carried: Vec<Handle> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.lost() && !s.in_window())
            .map(|(handle, _)| handle)
            .collect();
        self.recorder.counters.sessions_at_warmup += carried.len() as u64;
        for handle in carried {
            if let Some(session) = self.sessions.get_mut(handle) {
                session.set_in_window(true);
            }
        }
    }

    /// Whether request `index` of a session logged in again was sent by an earlier life (out of
    /// line: only a session lost and logged in again asks).
    #[cold]
    #[inline(never)]
    fn sent_in_earlier_life(&self, session_handle: Handle, index: u32) -> bool {
        self.redo_until
            .get(&session_handle)
            .is_some_and(|&until| index < until)
    }

    /// The client sends the session's next request (its first attempt). Inlined into the event
    /// loop, as the compiler did by itself before the hedge's check (measured: out of line, the
    /// M/M/c run took 3.2% more instructions).
    #[inline(always)]
    pub(super) fn send_request(&mut self, session_handle: Handle) {
        let in_window = self.in_window();
        let Some(session) = self.sessions.get_mut(session_handle) else {
            return;
        };
        let index = session.next_request;
        session.next_request += 1;
        session.attempts = 0;
        session.request_sent_at = self.now;
        session.set_request_in_window(in_window);
        session.set_awaiting(true);
        session.set_hedged(false);
        let redone = session.life > 0 && self.sent_in_earlier_life(session_handle, index);
        if self.needs.hedging {
            self.arm_hedge(session_handle, index);
        }
        self.requests_simulated += 1;
        if self.requests_simulated.is_multiple_of(GUARD_INTERVAL) {
            self.check_limits();
        }
        self.recorder.series.counts().requests += 1;
        if in_window {
            let counters = &mut self.recorder.counters;
            counters.requests += 1;
            if redone {
                counters.requests_redone += 1;
            }
        }
        self.send_attempt(session_handle, false);
    }

    /// The client sends another attempt of the session's current request.
    pub(super) fn send_retry(&mut self, session_handle: Handle) {
        let Some(session) = self.sessions.get_mut(session_handle) else {
            return;
        };
        session.set_retry_pending(false);
        if !session.awaiting() {
            return; // a hedge answered while the retry waited
        }
        self.recorder.series.counts().retries += 1;
        self.send_attempt(session_handle, false);
    }

    /// Schedules the request's hedge (out of line: the request path does not use it).
    #[cold]
    #[inline(never)]
    fn arm_hedge(&mut self, session_handle: Handle, index: u32) {
        if let Some(after) = self.scenario.client.hedge_after {
            let at = self.now.saturating_add(after);
            self.queue.push(
                at,
                Event::Hedge {
                    session: session_handle,
                    index,
                },
            );
        }
    }

    /// `hedge_after` has passed: a request still unanswered, with no retry pending and no hedge
    /// yet, gets a second attempt. Its extra load counts as an attempt (retry amplification).
    pub(super) fn on_hedge(&mut self, session_handle: Handle, index: u32) {
        let Some(session) = self.sessions.get_mut(session_handle) else {
            return;
        };
        if !session.awaiting()
            || session.hedged()
            || session.retry_pending()
            || session.lost()
            || session.next_request != index + 1
        {
            return;
        }
        session.set_hedged(true);
        if session.request_in_window() {
            self.recorder.counters.hedged_requests += 1;
        }
        self.send_attempt(session_handle, true);
    }

    fn send_attempt(&mut self, session_handle: Handle, hedge: bool) {
        let Some(session) = self.sessions.get_mut(session_handle) else {
            return;
        };
        let index = session.next_request - 1;
        let attempt = u32::from(session.attempts);
        session.attempts += 1;
        let (session_id, life) = (session.id, session.life);
        let (first_sent_at, in_window) = (session.request_sent_at, session.request_in_window());
        let mut draws = self.draw_request(session_id, index);
        if self.request_hooks {
            self.hook_request(session_id, life, attempt, &mut draws);
        }
        if in_window {
            self.recorder.counters.attempts += 1;
            self.recorder.traffic.payload += draws.payload;
            self.recorder.traffic.token += draws.token_bytes;
        }
        // A first attempt keys its draws exactly as before retries existed; a retry's differ.
        let draw_key = ((u64::from(life) << 32) | u64::from(index)) ^ (u64::from(attempt) << 48);
        let request = self.requests.insert(Request {
            session: session_handle,
            session_id,
            index,
            draw_key,
            first_sent_at,
            sent_at: self.now,
            in_window,
            phase: Phase::ToBalancer,
            server: 0,
            outcome: Outcome::Ok,
            timed_out: false,
            demand: draws.demand,
            writes_state: draws.writes_state,
            fetch: None,
            balancer_tries: 0,
            by_affinity: false,
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
        let arrival = if hedge {
            Event::HedgeAtBalancer(request)
        } else {
            Event::AtBalancer(request)
        };
        self.after(hop, arrival);
    }

    /// The workload's draws for request `index` of session `session_id`: the same in every topology.
    /// The bytes of request `index` of the session and of its answer.
    pub(super) fn payload_bytes(&self, session_id: u64, index: u32) -> f64 {
        let (workload, seeds, key) = (&self.scenario.workload, &self.seeds, u64::from(index));
        Self::draw(
            &workload.request_bytes,
            seeds.request_bytes,
            session_id,
            key,
        ) + Self::draw(
            &workload.response_bytes,
            seeds.response_bytes,
            session_id,
            key,
        )
    }

    fn draw_request(&self, session_id: u64, index: u32) -> RequestDraws {
        let workload = &self.scenario.workload;
        let seeds = &self.seeds;
        let key = u64::from(index);
        let demand = Self::draw_time(&workload.service_time, seeds.service_time, session_id, key);
        let payload = self.payload_bytes(session_id, index);
        // A keyed draw: the same for this request whichever topology makes it.
        let writes = |fraction: f64| match fraction {
            f if f >= 1.0 => true,
            f if f <= 0.0 => false,
            f => keyed(seeds.state_write, session_id, key).random::<f64>() < f,
        };
        // Store and replication traffic is counted where it happens (store.rs, server.rs): a
        // cache hit moves no bytes, a request that never reaches a server copies nothing.
        let (writes_state, token_bytes) = match self.state_draws {
            StateDraws::Nothing => (false, 0.0),
            StateDraws::Token { bytes } => (false, bytes),
            StateDraws::Writes { fraction } => (writes(fraction), 0.0),
            StateDraws::Replicated { fraction } => (index == 0 || writes(fraction), 0.0),
        };
        RequestDraws {
            demand,
            payload,
            token_bytes,
            writes_state,
        }
    }

    pub(super) fn on_client(&mut self, handle: Handle) {
        // Fields read in place, then the slot freed: no copy of the request is made.
        let Some(request) = self.requests.get(handle) else {
            return;
        };
        let (timed_out, outcome, session) = (request.timed_out, request.outcome, request.session);
        let (first_sent_at, sent_at) = (request.first_sent_at, request.sent_at);
        let (in_window, index) = (request.in_window, request.index);
        self.requests.discard(handle);
        if timed_out {
            return; // the client already gave up on this attempt and moved on
        }
        if self.needs.hedging && !self.unsettled(session, index) {
            return; // the other attempt (hedge or original) settled the request first
        }
        if outcome != Outcome::Ok {
            self.attempt_failed(session, outcome);
            return;
        }
        let latency = self.now.saturating_sub(first_sent_at).nanos();
        self.recorder.series.counts().ok += 1;
        self.recorder.series.record_latency(latency);
        if in_window {
            let rec = &mut self.recorder;
            rec.counters.ok += 1;
            rec.latency_sum_ns += latency as f64;
            rec.latency.record(latency);
            if rec.fault_started {
                let histogram = if rec.open_faults > 0 {
                    &mut rec.latency_during_faults
                } else {
                    &mut rec.latency_after_faults
                };
                histogram.record(latency);
            }
            if let Some(attempts) = &mut rec.attempt_latency {
                let attempt = self.now.saturating_sub(sent_at).nanos();
                attempts.record(attempt);
            }
        }
        if self.in_window() {
            self.recorder.ok_in_window += 1;
        }
        if let Some(seconds) = &mut self.recorder.per_second {
            let second = (self.now.nanos() / 1_000_000_000) as usize;
            if seconds.len() <= second {
                seconds.resize(second + 1, (0.0, 0));
            }
            seconds[second].0 += latency as f64;
            seconds[second].1 += 1;
        }
        self.continue_session(session, index);
    }

    pub(super) fn on_client_timeout(&mut self, handle: Handle) {
        let Some(request) = self.requests.get_mut(handle) else {
            return; // answered in time
        };
        if request.timed_out {
            return;
        }
        request.timed_out = true;
        let (session, server, index) = (request.session, request.server, request.index);
        if request.phase == Phase::BlackHoled {
            // Nobody will ever answer it: the client closes the connection.
            self.requests.remove(handle);
            self.balancer.answered(server);
            self.count_failure_on_server(server);
        }
        if self.needs.hedging && !self.unsettled(session, index) {
            return; // its hedge (or the original) already settled the request
        }
        self.attempt_failed(session, Outcome::TimedOut);
    }

    /// An attempt of the session's current request ended without success: retry it if the
    /// client may, otherwise that is the request's outcome.
    fn attempt_failed(&mut self, session_handle: Handle, outcome: Outcome) {
        let Some(session) = self.sessions.get(session_handle) else {
            return;
        };
        if !session.lost() && self.may_retry(session) {
            let wait = self.backoff(session_handle);
            self.recorder.retries_sent += 1;
            let session = self
                .sessions
                .get_mut(session_handle)
                .expect("checked above");
            session.set_retry_pending(true);
            self.extras.set_backoff(session_handle, wait);
            self.queue
                .push(self.now.saturating_add(wait), Event::Retry(session_handle));
            return;
        }
        let (in_window, index) = (session.request_in_window(), session.next_request - 1);
        self.count_final_failure(in_window, outcome);
        self.continue_session(session_handle, index);
    }

    fn may_retry(&self, session: &Session) -> bool {
        let client = &self.scenario.client;
        if u32::from(session.attempts) >= client.max_attempts {
            return false;
        }
        client.retry_budget.is_none_or(|budget| {
            (self.recorder.retries_sent + 1) as f64 <= budget * self.requests_simulated as f64
        })
    }

    /// The wait before the session's next attempt, drawn from its own keyed stream.
    fn backoff(&self, session_handle: Handle) -> SimTime {
        let backoff = &self.scenario.client.backoff;
        let session = self.sessions.get(session_handle).expect("live session");
        let retry = u32::from(session.attempts.saturating_sub(1));
        let key = (u64::from(session.life) << 32) | u64::from(session.next_request);
        let mut rng = keyed(
            self.seeds.backoff,
            session.id,
            key ^ (u64::from(retry) << 48),
        );
        let previous = self.extras.backoff(session_handle).nanos() as f64;
        SimTime::from_nanos_f64(backoff_wait(backoff, retry, previous, rng.random::<f64>()))
    }

    fn count_final_failure(&mut self, in_window: bool, outcome: Outcome) {
        let bucket = self.recorder.series.counts();
        match outcome {
            Outcome::Rejected => bucket.rejected += 1,
            Outcome::Failed => bucket.failed += 1,
            Outcome::TimedOut => bucket.timed_out += 1,
            Outcome::StoreUnavailable => bucket.store_unavailable += 1,
            Outcome::Ok => unreachable!("a success is not a failure"),
        }
        if !in_window {
            return;
        }
        let counters = &mut self.recorder.counters;
        match outcome {
            Outcome::Rejected => counters.rejected += 1,
            Outcome::Failed => counters.failed += 1,
            Outcome::TimedOut => counters.timed_out += 1,
            Outcome::StoreUnavailable => counters.store_unavailable += 1,
            Outcome::Ok => {}
        }
    }

    /// Whether request `index` of the session still waits for its answer.
    fn unsettled(&self, session: Handle, index: u32) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.awaiting() && s.next_request == index + 1)
    }

    /// After request `index` of the session ended (any final outcome): think, send the next one,
    /// finish the session, or react to its loss.
    #[inline(always)] // measured: see start_compute in server.rs
    fn continue_session(&mut self, handle: Handle, index: u32) {
        let Some(session) = self.sessions.get_mut(handle) else {
            return;
        };
        session.set_awaiting(false);
        if session.lost() {
            self.after_session_lost(handle);
            return;
        }
        if self.replay.is_some() {
            self.continue_log_session(handle);
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

    /// What a replayed log or a request log does with an attempt: the log's service time and
    /// sizes replace the drawn ones, and a first attempt is logged.
    #[cold]
    #[inline(never)]
    fn hook_request(&mut self, session: u64, life: u32, attempt: u32, draws: &mut RequestDraws) {
        let (service, payload) = self.log_request_figures(session);
        draws.demand = service.unwrap_or(draws.demand);
        draws.payload = payload.unwrap_or(draws.payload);
        let at = self.now.as_secs_f64();
        if attempt == 0
            && let Some(log) = self.request_log.as_mut()
        {
            log(super::LoggedRequest {
                at,
                session,
                life,
                service: draws.demand.as_secs_f64(),
            });
        }
    }

    /// A replayed session sends its next request after the log's gap, or is done.
    #[cold]
    #[inline(never)]
    fn continue_log_session(&mut self, handle: Handle) {
        let Some(number) = self.sessions.get(handle).map(|s| s.id) else {
            return;
        };
        match self.log_next_request(number) {
            Some(think) => self
                .queue
                .push(self.now.saturating_add(think), Event::SendRequest(handle)),
            None => self.complete_session(handle),
        }
    }

    fn complete_session(&mut self, handle: Handle) {
        let Some(session) = self.sessions.get(handle) else {
            return;
        };
        if session.in_window() {
            self.recorder.counters.sessions_completed += 1;
            self.recorder.session_duration_sum_secs +=
                self.now.saturating_sub(session.started_at).as_secs_f64();
        }
        self.recorder.active_sessions.add(self.now, -1);
        let id = session.id;
        if self.needs.server_state {
            let session = self.sessions.remove(handle).expect("checked above");
            self.release_session_state(&session, handle);
        } else {
            self.sessions.discard(handle);
        }
        if !self.lost_in.is_empty() {
            self.lost_in.remove(&handle);
        }
        if !self.redo_until.is_empty() {
            self.redo_until.remove(&handle);
        }
        if self.closed_loop {
            self.user_session_over(id);
        }
    }

    /// Marks a session's state as gone, for `cause`, charged to the fault record `record` if
    /// any. Counted once, when it happens; the client finds out with its next response.
    /// The session's state is gone for good, to `cause`: from `home`'s memory (none for the
    /// store), during the fault of faults.csv row `record` (if any), which is charged with it
    /// and with the requests that fail for it.
    pub(super) fn mark_session_lost(
        &mut self,
        handle: Handle,
        cause: LossCause,
        home: Option<u32>,
        record: Option<u32>,
    ) {
        let Some(session) = self.sessions.get_mut(handle) else {
            return;
        };
        if session.lost() {
            return;
        }
        session.set_lost(true);
        if let Some(row) = record {
            self.lost_in.insert(handle, row);
        }
        if session.in_window() {
            let counters = &mut self.recorder.counters;
            counters.sessions_lost += 1;
            counters.sessions_lost_by[cause as usize] += 1;
            if let Some(home) = home {
                self.servers[home as usize].sessions_lost += 1;
            }
        }
        self.recorder.series.counts().sessions_lost += 1;
        if let Some(record) = record {
            self.recorder.faults[record as usize].sessions_lost += 1;
        }
        self.recorder.active_sessions.add(self.now, -1);
    }

    fn after_session_lost(&mut self, handle: Handle) {
        let Some(session) = self.sessions.remove(handle) else {
            return;
        };
        self.lost_in.remove(&handle);
        self.release_session_state(&session, handle);
        if self.scenario.workload.on_session_lost == OnSessionLost::Relogin {
            // The new login replays the session from its first request (the same work, so the
            // same workload draws); the requests the lost session had already sent are redone.
            let redo_until = session
                .next_request
                .max(self.redo_until.remove(&handle).unwrap_or(0));
            let restarted =
                self.start_session(session.id, session.life + 1, session.requests, redo_until);
            self.send_request(restarted);
        } else if self.closed_loop {
            self.user_session_over(session.id);
        } else if self.replay.is_some() {
            self.log_session_abandoned(session.id);
        }
    }
}

/// The wait (ns) before retry number `retry` (0 for the first), following "Exponential Backoff
/// And Jitter" (AWS Architecture Blog, 2015): the exponential ceiling is `min(cap, base × 2^retry)`
/// (`base` for constant backoff); full jitter waits `u × ceiling`, equal jitter
/// `ceiling/2 + u × ceiling/2`, decorrelated `min(cap, base + u × (3 × previous − base))` with
/// the previous wait starting at `base`. `u` is uniform in [0, 1).
pub fn backoff_wait(backoff: &Backoff, retry: u32, previous_ns: f64, u: f64) -> f64 {
    let (base, cap) = (backoff.base.nanos() as f64, backoff.cap.nanos() as f64);
    let ceiling = match backoff.kind {
        BackoffKind::Constant => base,
        BackoffKind::Exponential => (base * 2f64.powi(retry.min(62) as i32)).min(cap),
    };
    match backoff.jitter {
        Jitter::None => ceiling,
        Jitter::Full => u * ceiling,
        Jitter::Equal => ceiling / 2.0 + u * ceiling / 2.0,
        Jitter::Decorrelated => {
            let previous = if previous_ns > 0.0 { previous_ns } else { base };
            let high = (3.0 * previous).max(base);
            (base + u * (high - base)).min(cap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(kind: BackoffKind, jitter: Jitter) -> Backoff {
        Backoff {
            kind,
            base: SimTime::from_millis(100),
            cap: SimTime::from_secs(2),
            jitter,
        }
    }

    const MS: f64 = 1e6;

    #[test]
    fn exponential_backoff_doubles_up_to_the_cap() {
        let plain = backoff(BackoffKind::Exponential, Jitter::None);
        let waits: Vec<f64> = (0..7)
            .map(|r| backoff_wait(&plain, r, 0.0, 0.5) / MS)
            .collect();
        assert_eq!(
            waits,
            vec![100.0, 200.0, 400.0, 800.0, 1600.0, 2000.0, 2000.0]
        );
        let constant = backoff(BackoffKind::Constant, Jitter::None);
        assert_eq!(backoff_wait(&constant, 5, 0.0, 0.5), 100.0 * MS);
    }

    #[test]
    fn jitter_spreads_the_wait_as_the_aws_definitions_say() {
        let full = backoff(BackoffKind::Exponential, Jitter::Full);
        assert_eq!(backoff_wait(&full, 2, 0.0, 0.0), 0.0);
        assert_eq!(backoff_wait(&full, 2, 0.0, 0.5), 200.0 * MS);
        let equal = backoff(BackoffKind::Exponential, Jitter::Equal);
        assert_eq!(backoff_wait(&equal, 2, 0.0, 0.0), 200.0 * MS);
        assert_eq!(backoff_wait(&equal, 2, 0.0, 1.0), 400.0 * MS);
        let decorrelated = backoff(BackoffKind::Exponential, Jitter::Decorrelated);
        // First retry: between base and 3 × base.
        assert_eq!(backoff_wait(&decorrelated, 0, 0.0, 0.0), 100.0 * MS);
        assert_eq!(backoff_wait(&decorrelated, 0, 0.0, 1.0), 300.0 * MS);
        // Later: up to 3 × the previous wait, capped.
        assert_eq!(backoff_wait(&decorrelated, 1, 300.0 * MS, 1.0), 900.0 * MS);
        assert_eq!(
            backoff_wait(&decorrelated, 3, 1500.0 * MS, 1.0),
            2000.0 * MS
        );
    }
}
