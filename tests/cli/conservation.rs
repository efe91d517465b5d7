//! Conservation laws on every bundled scenario: every request sent in the window ends in exactly
//! one outcome or is still in flight; every session is completed, lost or still active.

use super::support::{bundled_scenarios, load, quick, simulate};
use statesim::metrics::RunResult;

fn assert_conserved(label: &str, run: &RunResult) {
    let c = &run.counters;
    assert_eq!(
        c.requests,
        c.ok + c.rejected + c.failed + c.timed_out + c.store_unavailable + c.in_flight,
        "{label} / {}: requests are not conserved: {c:?}",
        run.topology
    );
    assert_eq!(
        c.sessions_lost,
        c.sessions_lost_by.iter().sum::<u64>(),
        "{label} / {}: every lost session has one cause: {c:?}",
        run.topology
    );
    assert!(
        c.attempts >= c.requests,
        "{label} / {}: every request is at least one attempt: {c:?}",
        run.topology
    );
    assert_eq!(
        c.sessions_at_warmup + c.sessions_started,
        c.sessions_completed + c.sessions_lost + c.sessions_active,
        "{label} / {}: sessions are not conserved: {c:?}",
        run.topology
    );
    assert!(
        c.requests > 0,
        "{label} / {}: nothing was simulated",
        run.topology
    );
}

#[test]
fn every_bundled_scenario_conserves_requests_and_sessions() {
    for file in bundled_scenarios() {
        let mut overrides = quick(&file);
        overrides.push("replications=2");
        let scenario = load(&file, &overrides);
        for run in simulate(&scenario) {
            assert_conserved(&file, &run);
        }
    }
}

#[test]
fn conservation_holds_with_timeouts_relogins_and_no_warmup() {
    // Tight timeouts and relogins exercise every outcome and the redo path.
    let scenario = load(
        "scenarios/quickstart.toml",
        &[
            "warmup=0",
            "duration=4m",
            "client.timeout=40ms",
            "workload.on_session_lost=relogin",
            "servers.queue_limit=2",
        ],
    );
    for run in simulate(&scenario) {
        assert_conserved("quickstart with timeouts", &run);
        let c = &run.counters;
        assert!(
            c.timed_out > 0 && c.rejected > 0 && c.failed > 0,
            "{}: {c:?}",
            run.topology
        );
        if run.topology == "stateful" {
            assert!(
                c.sessions_lost > 0 && c.requests_redone > 0,
                "relogins redo requests: {c:?}"
            );
        }
    }
}

#[test]
fn a_crash_loses_the_stateful_sessions_and_only_in_flight_stateless_requests() {
    let scenario = load("scenarios/quickstart.toml", &["duration=4m"]);
    let runs = simulate(&scenario);
    let by_name = |name: &str| runs.iter().find(|r| r.topology == name).unwrap();
    let stateful = by_name("stateful");
    // The crash loses the sessions homed on the crashed server: about an eighth of the active
    // sessions (Little's law gives their mean, L). The count on one server is close to Poisson,
    // so allow 4 standard deviations.
    let expected = stateful.mean_active_sessions / 8.0;
    let lost = stateful.counters.sessions_lost as f64;
    assert!(
        (lost - expected).abs() < 4.0 * expected.sqrt(),
        "stateful lost {lost} sessions, expected about {expected:.0}"
    );
    for name in ["stateless-store", "stateless-token"] {
        let run = by_name(name);
        assert_eq!(
            run.counters.sessions_lost, 0,
            "{name} keeps sessions through a crash"
        );
        assert!(
            run.counters.failed > 0,
            "{name}: requests routed to the dead server fail"
        );
        assert!(run.counters.requests_to_dead_server > 0);
    }
}
