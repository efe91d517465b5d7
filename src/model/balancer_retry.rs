//! What the balancer does when a try fails before the server answers: it tries again, as HAProxy
//! (`retries`, `option redispatch`), NGINX (`proxy_next_upstream`) and Envoy (a retry policy) do,
//! instead of passing the failure to the client.
//!
//! - A refused connection (a dead or starting server) never reached the application: it is
//!   always safe to retry. A reset (the server died with the request in flight) and a 5xx (a full
//!   queue or memory, the store down) are retried only for idempotent requests.
//! - A request routed by affinity (its sticky cookie, or consistent hashing) is retried on the
//!   same server after `retry_pause`, and only its last retry goes elsewhere (HAProxy's
//!   `option redispatch`). Any other request is redispatched at once, avoiding the server that
//!   failed; the new pick consumes the policy's next turn (round robin moves on), as HAProxy's
//!   does.
//! - The failure costs the hop back to the balancer (the refusal or reset travels back).
//! - The retried try is a new slab entry: events of the failed try (a compute step, a store
//!   reply) find a stale handle and are dropped.

use super::{Event, Outcome, Phase, World};
use crate::engine::Handle;

/// Why a try failed before the server gave an answer of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TryFailure {
    /// The connection was refused: the server is down or starting.
    Refused,
    /// The server died with the request in flight.
    Reset,
    /// The server answered 5xx.
    Status5xx,
    /// The server did not answer within the balancer's `server_timeout` (a hung server).
    Timeout,
}

impl World<'_> {
    /// A try failed: the balancer tries again if its retry policy allows, else `outcome` goes
    /// back to the client.
    pub(super) fn try_failed(&mut self, handle: Handle, outcome: Outcome, failure: TryFailure) {
        if self.needs.outlier
            && let Some(request) = self.requests.get(handle)
        {
            self.observe_answer(request.server, false);
        }
        if !self.retry_at_balancer(handle, failure) {
            self.respond(handle, outcome);
        }
    }

    /// Passive health checking: the balancer sees each answer (or failure) of a server, and
    /// ejects it after a run of failures. An ejection of a server going through a fault is the
    /// fault's detection, as a failed probe would be.
    #[cold]
    #[inline(never)]
    pub(super) fn observe_answer(&mut self, server: u32, succeeded: bool) {
        let Some(ejection) = self.balancer.observe_answer(server, succeeded) else {
            return;
        };
        if self.now >= self.warmup {
            self.recorder.counters.outlier_ejections += 1;
        }
        if let Some(record) = self.servers[server as usize].open_fault {
            self.recorder.faults[record as usize]
                .detected
                .get_or_insert(self.now);
        }
        self.after(ejection, Event::Unejected(server));
    }

    #[cold]
    #[inline(never)]
    fn retry_at_balancer(&mut self, handle: Handle, failure: TryFailure) -> bool {
        let retry = &self.topology.balancer.retry;
        let idempotent = self.scenario.workload.idempotent;
        let allowed = match failure {
            TryFailure::Refused => retry.on.connect_failure,
            TryFailure::Reset => retry.on.reset && idempotent,
            TryFailure::Status5xx => retry.on.status_5xx && idempotent,
            TryFailure::Timeout => retry.on.timeout && idempotent,
        };
        let Some(request) = self.requests.get(handle) else {
            return false;
        };
        if !allowed || request.timed_out || u32::from(request.balancer_tries) >= retry.retries {
            return false;
        }
        let Some(mut request) = self.requests.remove(handle) else {
            return false;
        };
        request.balancer_tries += 1;
        request.phase = Phase::ToBalancer;
        // Each try keys its own network draws.
        request.draw_key ^= u64::from(request.balancer_tries) << 58;
        let failed_server = request.server;
        self.balancer.answered(failed_server);
        let same_server = !retry.redispatch
            || (request.by_affinity && u32::from(request.balancer_tries) < retry.retries);
        let back = Self::draw_time(
            &self.topology.network.balancer_server,
            self.seeds.net_response_to_balancer,
            request.session_id,
            request.draw_key,
        );
        let wait = if same_server {
            back.saturating_add(retry.pause)
        } else {
            back
        };
        if request.in_window {
            self.recorder.counters.balancer_retries += 1;
        }
        let first_sent_at = request.sent_at;
        let retried = self.requests.insert(request);
        // The client's timeout follows the request to its new entry, at the same instant.
        if let Some(timeout) = self.scenario.client.timeout {
            let at = first_sent_at.saturating_add(timeout).max(self.now);
            self.queue.push(at, Event::ClientTimeout(retried));
        }
        self.queue.push(
            self.now.saturating_add(wait),
            Event::BalancerRetry {
                request: retried,
                redispatch: !same_server,
            },
        );
        true
    }

    /// A try is black-holed (on a hung server): the balancer gives up on it `server_timeout`
    /// after the attempt was sent, if it has a timeout.
    pub(super) fn start_server_timeout(&mut self, handle: Handle) {
        let (Some(timeout), Some(request)) = (
            self.topology.balancer.retry.server_timeout,
            self.requests.get(handle),
        ) else {
            return;
        };
        let at = request.sent_at.saturating_add(timeout).max(self.now);
        self.queue.push(at, Event::ServerTimeout(handle));
    }

    /// The balancer stops waiting for a hung server: a 504 for the client, or a retry.
    pub(super) fn on_server_timeout(&mut self, handle: Handle) {
        let Some(request) = self.requests.get(handle) else {
            return; // answered, or the client gave up and closed the connection
        };
        if request.phase == Phase::BlackHoled {
            self.try_failed(handle, Outcome::Failed, TryFailure::Timeout);
        }
    }

    /// The retry leaves the balancer: for the same server, or for another one chosen by the
    /// policy, avoiding the server that failed.
    pub(super) fn on_balancer_retry(&mut self, handle: Handle, redispatch: bool) {
        let Some(request) = self.requests.get_mut(handle) else {
            return;
        };
        if request.timed_out {
            // The client gave up while the balancer waited: nobody wants the answer.
            self.requests.remove(handle);
            return;
        }
        let server = if redispatch {
            let Some(session) = self.sessions.get_mut(request.session) else {
                return;
            };
            let server = self
                .balancer
                .redispatch(super::server::session_key(session), request.server);
            // The sticky cookie is rewritten to the server that answers.
            session.set_home(Some(server));
            request.by_affinity = false;
            server
        } else {
            request.server
        };
        request.server = server;
        request.phase = Phase::ToServer;
        let (session_id, draw_key) = (request.session_id, request.draw_key);
        self.forward(handle, server, session_id, draw_key);
    }
}
