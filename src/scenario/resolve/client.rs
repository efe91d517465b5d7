//! `[client]`: timeouts, retries and backoff.

use super::Resolver;
use crate::engine::SimTime;
use crate::scenario::schema::*;
use crate::scenario::*;

/// AWS SDKs' standard retry mode: base delay 100 ms, at most 20 s, full jitter.
const DEFAULT_BACKOFF_BASE: SimTime = SimTime::from_millis(100);
const DEFAULT_BACKOFF_CAP: SimTime = SimTime::from_secs(20);

impl Resolver<'_> {
    pub(super) fn client(&mut self, file: &ClientFile) -> Client {
        let backoff = file.backoff.as_ref();
        let client = Client {
            timeout: file.timeout.map(|d| d.0),
            max_attempts: file.max_attempts.unwrap_or(1),
            backoff: Backoff {
                kind: backoff
                    .and_then(|b| b.kind)
                    .unwrap_or(BackoffKind::Exponential),
                base: backoff
                    .and_then(|b| b.base)
                    .map_or(DEFAULT_BACKOFF_BASE, |d| d.0),
                cap: backoff
                    .and_then(|b| b.cap)
                    .map_or(DEFAULT_BACKOFF_CAP, |d| d.0),
                jitter: backoff.and_then(|b| b.jitter).unwrap_or(Jitter::Full),
            },
            retry_budget: file.retry_budget,
            hedge_after: file.hedge_after.map(|d| d.0),
        };
        self.check(
            client.hedge_after != Some(SimTime::ZERO),
            "client.hedge_after",
            "must be greater than zero (leave it out for no hedging)",
        );
        self.check(
            client.timeout != Some(SimTime::ZERO),
            "client.timeout",
            "must be greater than zero (leave it out for no timeout)",
        );
        self.check(
            (1..=100).contains(&client.max_attempts),
            "client.max_attempts",
            format!(
                "must be between 1 (no retries) and 100, got {}",
                client.max_attempts
            ),
        );
        self.check(
            client.backoff.cap >= client.backoff.base,
            "client.backoff.cap",
            "the cap must be at least the base delay",
        );
        if let Some(budget) = client.retry_budget {
            self.check(
                budget.is_finite() && budget >= 0.0,
                "client.retry_budget",
                format!("must be a non-negative fraction of requests, got {budget}"),
            );
        }
        client
    }
}
