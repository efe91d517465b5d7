//! Traffic that changes: rate schedules (step, linear, diurnal, spike) against the integral of
//! their rate, and a closed loop of users against the exact mean-value analysis of the
//! machine-repairman model.

use super::support::{metric, simulate_text};
use statesim::metrics::SERIES_COLUMNS;
use statesim::scenario::{Arrivals, load_str};
use std::path::Path;

/// The sessions started in each one-second bucket of the first run: with one request per session
/// and no retries, the bucket's requests.
fn starts_per_second(run: &statesim::metrics::RunResult) -> Vec<f64> {
    let requests = SERIES_COLUMNS
        .iter()
        .position(|c| *c == "requests")
        .unwrap();
    run.series.iter().map(|row| row[requests]).collect()
}

/// A scenario with one request per session on an idle fleet, `arrivals` in its [workload].
fn scenario(arrivals: &str, duration: &str) -> String {
    format!(
        r#"name = "schedule"
duration = "{duration}"
bucket = "1s"
[workload]
{arrivals}
service_time = "1ms"
[servers]
count = 2
workers = 8
[[topology]]
name = "a"
state = "none"
[[topology]]
name = "b"
state = "none"
balancer = {{ policy = "random" }}
"#
    )
}

/// For each window `[from, to)` in seconds, the sessions started against the integral of the
/// scenario's rate over it: within 4 Poisson standard deviations (a count of mean m has variance
/// m), plus `approximation` of the mean where the simulated rate only approximates the one the
/// test integrates. Every topology sees the same starts.
fn assert_starts_follow_the_rate(
    text: &str,
    windows: &[(f64, f64)],
    expected: impl Fn(f64, f64) -> f64,
    approximation: f64,
) {
    let runs = simulate_text(text);
    let starts = starts_per_second(&runs[0]);
    assert_eq!(
        starts,
        starts_per_second(&runs[1]),
        "same arrivals in every topology"
    );
    for &(from, to) in windows {
        let observed: f64 = starts[from as usize..to as usize].iter().sum();
        let mean = expected(from, to);
        let tolerance = 4.0 * mean.sqrt() + approximation * mean;
        assert!(
            (observed - mean).abs() <= tolerance,
            "[{from}, {to}) s: {observed} sessions started, {mean:.1} expected ± {tolerance:.1}"
        );
    }
}

/// The schedule the scenario resolves to, to integrate.
fn resolved_schedule(text: &str) -> statesim::scenario::RateSchedule {
    let scenario = load_str(text, "s.toml", Path::new("."), &[]).unwrap();
    match scenario.workload.arrivals {
        Arrivals::Scheduled(schedule) => schedule,
        other => panic!("not a schedule: {other:?}"),
    }
}

#[test]
fn step_and_linear_schedules_start_the_sessions_their_rate_integrates_to() {
    for (shape, middle) in [("step", 200.0 * 60.0), ("linear", 350.0 * 60.0)] {
        let text = scenario(
            &format!(
                "schedule = [{{ at = \"30s\", sessions_per_second = 200 }}, \
                 {{ at = \"90s\", sessions_per_second = 500 }}, \
                 {{ at = \"120s\", sessions_per_second = 50 }}]\nschedule_shape = \"{shape}\""
            ),
            "180s",
        );
        let schedule = resolved_schedule(&text);
        assert_eq!(schedule.expected_sessions(30.0, 90.0), middle, "{shape}");
        let windows = [(0.0, 30.0), (30.0, 90.0), (90.0, 120.0), (120.0, 180.0)];
        assert_starts_follow_the_rate(
            &text,
            &windows,
            |a, b| schedule.expected_sessions(a, b),
            0.0,
        );
    }
}

#[test]
fn a_spike_multiplies_the_rate_over_its_window() {
    let text = scenario(
        "sessions_per_second = 100\nspike = { at = \"60s\", duration = \"30s\", factor = 4 }",
        "150s",
    );
    let rate = |t: f64| {
        if (60.0..90.0).contains(&t) {
            400.0
        } else {
            100.0
        }
    };
    let windows = [(0.0, 60.0), (60.0, 90.0), (90.0, 150.0)];
    assert_starts_follow_the_rate(
        &text,
        &windows,
        |a, b| (a as usize..b as usize).map(|t| rate(t as f64)).sum(),
        0.0,
    );
}

/// A compressed day: the sinusoid between trough and peak, drawn as 96 linear pieces per
/// period, integrated here exactly: the pieces stay within 0.1% of it.
#[test]
fn a_diurnal_day_follows_its_sinusoid() {
    let text = scenario(
        "diurnal = { trough = 20, peak = 300, peak_at = \"150s\", period = \"400s\" }",
        "400s",
    );
    let rate = |t: f64| {
        let phase = std::f64::consts::TAU * (t - 150.0) / 400.0;
        20.0 + 280.0 * (1.0 + phase.cos()) / 2.0
    };
    // Antiderivative of the sinusoid.
    let integral = |a: f64, b: f64| {
        let primitive = |t: f64| {
            160.0 * t
                + 140.0 * 400.0 / std::f64::consts::TAU
                    * (std::f64::consts::TAU * (t - 150.0) / 400.0).sin()
        };
        primitive(b) - primitive(a)
    };
    assert!((integral(0.0, 1.0) - rate(0.5)).abs() < 1.0);
    let windows: Vec<(f64, f64)> = (0..8)
        .map(|k| (k as f64 * 50.0, k as f64 * 50.0 + 50.0))
        .collect();
    assert_starts_follow_the_rate(&text, &windows, integral, 0.001);
}

/// N users, each starting a one-request session a think time Z after the last ended, on one
/// exponential server of mean S: the machine-repairman model (a closed network of a delay
/// station and a queue), solved exactly by mean-value analysis: R(n) = S (1 + Q(n−1)),
/// X(n) = n / (R(n) + Z), Q(n) = X(n) R(n).
#[test]
fn a_closed_loop_matches_the_machine_repairman_model() {
    let (users, service_ms, think_ms) = (10, 10.0, 50.0);
    let text = format!(
        r#"name = "closed"
duration = "600s"
warmup = "20s"
replications = 10
[workload]
users = {users}
between_sessions = {{ dist = "exponential", mean = "{think_ms}ms" }}
service_time = {{ dist = "exponential", mean = "{service_ms}ms" }}
[servers]
count = 1
workers = 1
[[topology]]
name = "one"
state = "none"
"#
    );
    let mut queue = 0.0;
    let (mut response, mut throughput) = (0.0, 0.0);
    for n in 1..=users {
        response = service_ms * (1.0 + queue);
        throughput = f64::from(n) / (response + think_ms);
        queue = throughput * response;
    }
    let runs = simulate_text(&text);
    let mean = |name: &str| runs.iter().map(|r| metric(r, name)).sum::<f64>() / runs.len() as f64;
    let spread = |name: &str, m: f64| {
        let n = runs.len() as f64;
        let variance = runs
            .iter()
            .map(|r| (metric(r, name) - m).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        // t(0.9995, 9) = 4.781: a 99.9% interval on the mean of 10 replications.
        4.781 * (variance / n).sqrt()
    };
    let (x, r) = (mean("throughput_rps"), mean("latency_mean_ms"));
    let (x_theory, r_theory) = (throughput * 1000.0, response);
    let (x_tolerance, r_tolerance) = (spread("throughput_rps", x), spread("latency_mean_ms", r));
    assert!(
        (x - x_theory).abs() <= x_tolerance && x_tolerance < 0.05 * x_theory,
        "throughput {x:.2} ± {x_tolerance:.2} against MVA {x_theory:.2}"
    );
    assert!(
        (r - r_theory).abs() <= r_tolerance && r_tolerance < 0.05 * r_theory,
        "response time {r:.3} ± {r_tolerance:.3} ms against MVA {r_theory:.3}"
    );
}

/// A log of sessions: `(time in ms, session)` rows in time order, with a session id that comes
/// back after a long pause (a new session, as the gap says) and sessions that end at once.
fn replay_log() -> (String, Vec<f64>, u64) {
    let mut rows: Vec<(u64, String)> = Vec::new();
    let mut sessions = 0;
    for session in 0..300u64 {
        let start = session * 317 % 90_000 + 1_000; // spread over 1..91 s, in ms
        let requests = 1 + session % 5;
        sessions += 1;
        for k in 0..requests {
            rows.push((
                start + k * (400 + 37 * (session % 7)),
                format!("s{session}"),
            ));
        }
    }
    // "s0" comes back 40 minutes later... within the run only if the gap is shorter: 2 minutes
    // later, with a 60 s session gap, it is a second session of the same user.
    rows.push((95_000 + 120_000, "s0".to_string()));
    sessions += 1;
    rows.sort();
    // Each request's and response's size: 100 + the row's place, and 10 times that.
    let mut text = String::from("ts_ms,session,req_b,resp_b\n");
    let mut times = Vec::new();
    for (index, (at, session)) in rows.iter().enumerate() {
        text.push_str(&format!(
            "{at},{session},{},{}\n",
            100 + index,
            1000 + 10 * index
        ));
        times.push((*at as f64 - rows[0].0 as f64) / 1000.0);
    }
    (text, times, sessions)
}

/// A replayed log reproduces itself: with no network delay and no service time each request is
/// sent exactly when the log has it (a session's next request its log gap after the previous
/// response, which is instant here), so the requests of every second, the request count and the
/// session count are the log's, in every topology.
#[test]
fn a_replayed_log_reproduces_its_requests_sessions_and_gaps_exactly() {
    let (log, times, sessions) = replay_log();
    let text = r#"name = "replay"
duration = "4m"
bucket = "1s"
[workload]
trace = { file = "requests.csv", timestamp = "ts_ms", timestamp_unit = "ms", session_gap = "60s", request_bytes = "req_b", response_bytes = "resp_b" }
service_time = "0s"
[servers]
count = 2
[[topology]]
name = "sticky"
state = "server"
balancer = { policy = "sticky" }
[[topology]]
name = "token"
state = "token"
"#;
    let dir = super::support::folder_with(&[("requests.csv", &log), ("r.toml", text)]);
    let scenario = statesim::scenario::load_file(&dir.path().join("r.toml"), &[]).unwrap();
    let runs = super::support::simulate(&scenario);
    let mut per_second = vec![0.0; 240];
    for at in &times {
        per_second[*at as usize] += 1.0;
    }
    for run in &runs {
        assert_eq!(
            run.counters.requests,
            times.len() as u64,
            "{}",
            run.topology
        );
        assert_eq!(run.counters.sessions_started, sessions, "{}", run.topology);
        assert_eq!(run.counters.ok, times.len() as u64, "{}", run.topology);
        assert_eq!(starts_per_second(run), per_second, "{}", run.topology);
        // The log's sizes, not the workload's (none here): Σ (100 + i) + (1000 + 10 i).
        let n = times.len() as f64;
        let expected = 1100.0 * n + 11.0 * n * (n - 1.0) / 2.0;
        assert_eq!(run.traffic.payload, expected, "{}", run.topology);
    }
}

/// A bad trace names the trace, its line and what is wrong; nothing runs.
#[test]
fn a_bad_trace_is_refused_with_its_line() {
    let scenario = |trace: &str| {
        format!(
            "name = \"t\"\nduration = \"10s\"\n[workload]\ntrace = {trace}\nservice_time = \"1ms\"\n\
             [servers]\ncount = 1\n[[topology]]\nname = \"a\"\nstate = \"none\"\n"
        )
    };
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "timestamp,session\n2,a\n1,b\n",
            "{ file = \"t.csv\" }",
            &["t.csv:3: the log must be in time order"],
        ),
        (
            "timestamp,session\n1,a\nnow,b\n",
            "{ file = \"t.csv\" }",
            &["t.csv:3: column 1 (timestamp): expected a number, got \"now\""],
        ),
        (
            "time,session\n1,a\n",
            "{ file = \"t.csv\" }",
            &["no column named \"timestamp\""],
        ),
        (
            "timestamp,session\n",
            "{ file = \"t.csv\" }",
            &["`workload.trace.file`", "the trace has no rows"],
        ),
        (
            "timestamp,session\n1,a\n",
            "{ file = \"gone.csv\" }",
            &["`workload.trace.file`", "cannot read \"gone.csv\""],
        ),
        (
            "timestamp,session\n1,a\n",
            "{ file = \"/etc/passwd\" }",
            &["outside the scenario's folder"],
        ),
    ];
    for (log, trace, expected) in cases {
        let dir = super::support::folder_with(&[("t.csv", log), ("s.toml", &scenario(trace))]);
        let output = super::support::statesim()
            .current_dir(dir.path())
            .args(["run", "s.toml", "--out", "out"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{trace}: {stderr}");
        for needle in expected {
            assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        }
        assert!(!dir.path().join("out").exists(), "nothing is written");
    }
}

/// The shipped trace is statesim's own request log of `traces/sessions-source.toml`
/// (`run --request-log`), byte for byte; replayed, it sends exactly its requests and sessions.
#[test]
fn the_shipped_trace_is_statesims_request_log_and_replays_whole() {
    let dir = tempfile::TempDir::new().unwrap();
    let log = dir.path().join("sessions.csv");
    let output = super::support::statesim()
        .args([
            "run",
            "scenarios/traces/sessions-source.toml",
            "--quiet",
            "--request-log",
        ])
        .arg(&log)
        .arg("--out")
        .arg(dir.path().join("out"))
        .current_dir(super::support::project_path(""))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(&log).unwrap();
    let shipped = std::fs::read_to_string(super::support::project_path(
        "scenarios/traces/sessions.csv",
    ))
    .unwrap();
    assert!(
        written == shipped,
        "regenerate scenarios/traces/sessions.csv (see its source)"
    );
    let rows: Vec<&str> = shipped.lines().skip(1).collect();
    let sessions: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|row| row.split(',').nth(1).unwrap())
        .collect();
    let scenario = super::support::load("scenarios/replay.toml", &[]);
    for run in super::support::simulate(&scenario) {
        assert_eq!(run.counters.requests, rows.len() as u64, "{}", run.topology);
        assert_eq!(run.counters.sessions_started, sessions.len() as u64);
    }
}
