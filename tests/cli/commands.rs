//! The commands as a user meets them: the quickstart, files written, example, validate, help.

use super::support::{
    SHORT_QUICKSTART, bundled_scenarios, folder_with, number, project_path, read_csv, run_in,
    run_ok, statesim,
};
use tempfile::TempDir;

/// The columns DESIGN.md promises in summary.csv.
const SUMMARY_COLUMNS: &[&str] = &[
    "scenario",
    "topology",
    "replications",
    "requests",
    "ok",
    "rejected",
    "failed",
    "timed_out",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_p999_ms",
    "latency_max_ms",
    "throughput_rps",
    "sessions_started",
    "sessions_completed",
    "sessions_lost",
    "server_utilization",
    "peak_session_memory_mb",
    "bytes_per_request",
];

#[test]
fn quickstart_runs_without_arguments_and_shows_the_crash() {
    let dir = TempDir::new().unwrap();
    let output = statesim()
        .current_dir(dir.path())
        .arg("run")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).unwrap();
    for name in [
        "stateful",
        "stateless-store",
        "stateless-token",
        "p99 ms",
        "sessions lost",
    ] {
        assert!(table.contains(name), "table lacks {name}:\n{table}");
    }
    // The crash at a glance: three failed 10 s probes (at a random phase) take 20-30 s.
    let crash = table
        .lines()
        .find(|line| line.starts_with("fault 0 (crash): 1.0 per run, detected after "))
        .unwrap_or_else(|| panic!("no fault line:\n{table}"));
    let detected: f64 = crash["fault 0 (crash): 1.0 per run, detected after ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((20.0..=30.0).contains(&detected), "{crash}");
    assert!(
        crash.contains("stateless-token ") && crash.contains("/0"),
        "{crash}"
    );
    // The table's total of sessions lost, with its causes below it.
    let causes = table
        .lines()
        .find(|line| line.starts_with("sessions lost by cause: "))
        .unwrap_or_else(|| panic!("no causes line:\n{table}"));
    assert!(
        causes.contains("stateful ") && causes.contains(" crash"),
        "{causes}"
    );
    assert!(!causes.contains("stateless"), "{causes}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("wrote results/quickstart/summary.csv"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r'),
        "no progress bar when stderr is not a terminal"
    );

    let rows = read_csv(&dir.path().join("results/quickstart/summary.csv"));
    assert_eq!(rows.len(), 3);
    for column in SUMMARY_COLUMNS {
        assert!(rows[0].contains_key(*column), "summary.csv lacks {column}");
    }
    let row = |topology: &str| rows.iter().find(|r| r["topology"] == topology).unwrap();
    assert!(number(row("stateful"), "sessions_lost") > 0.0);
    assert_eq!(number(row("stateless-store"), "sessions_lost"), 0.0);
    assert_eq!(number(row("stateless-token"), "sessions_lost"), 0.0);
    let bytes = |topology| number(row(topology), "bytes_per_request");
    assert!(
        bytes("stateless-token") >= 550.0 && bytes("stateless-store") > bytes("stateless-token")
    );
}

#[test]
fn latency_csv_holds_a_monotone_distribution_per_topology() {
    let run = run_ok(SHORT_QUICKSTART);
    let rows = read_csv(&run.out("latency.csv"));
    for topology in ["stateful", "stateless-store", "stateless-token"] {
        let series: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r["topology"] == topology)
            .map(|r| (number(r, "percentile"), number(r, "latency_ms")))
            .collect();
        let percentiles: Vec<f64> = series.iter().map(|p| p.0).collect();
        for required in [0.0, 0.5, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0] {
            assert!(
                percentiles.contains(&required),
                "{topology} lacks percentile {required}"
            );
        }
        assert!(
            series
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{topology} not monotone"
        );
    }
}

#[test]
fn set_overrides_reach_the_model() {
    let mut args = SHORT_QUICKSTART.to_vec();
    args.extend([
        "--set",
        "topology.stateless-token.token_bytes=2000",
        "--set",
        "workload.service_time={dist=\"lognormal\",p50=\"5ms\",p99=\"40ms\"}",
    ]);
    let token = run_ok(&args).topology("stateless-token");
    assert_eq!(token["bytes_per_request"], "2000");
    let p50 = number(&token, "latency_p50_ms");
    assert!(p50 < 8.0, "the faster service time applies: p50 {p50}");
}

#[test]
fn quiet_leaves_stderr_empty() {
    let run = run_ok(SHORT_QUICKSTART);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn example_prints_a_valid_scenario() {
    let dir = TempDir::new().unwrap();
    let output = statesim().arg("example").output().unwrap();
    assert!(output.status.success());
    let file = dir.path().join("example.toml");
    std::fs::write(&file, &output.stdout).unwrap();
    statesim().arg("validate").arg(&file).assert().success();
    let text = String::from_utf8(output.stdout).unwrap();
    for key in [
        "sessions_per_second",
        "queue_limit",
        "health_check",
        "write_fraction",
        "verify_time",
        "restart_after",
        "empirical",
        "on_session_lost",
        "timeout",
        "session_ttl",
        "bucket",
        "max_attempts",
        "retry_budget",
        "decorrelated",
        "server_server",
        "on_memory_full",
        "replication_lag",
        "store_backup",
        "[topology.cache]",
        "\"hang\"",
        "random_crashes",
        "rolling_restart",
        "\"scale\"",
        "store_outage",
        "[autoscale]",
        "zones",
        "cross_zone",
        "zone_affinity",
        "replica_placement",
        "\"zone_outage\"",
        "store_failover",
        "cross_zone_per_gb",
        "shards",
        "hedge_after",
        "outlier",
    ] {
        assert!(text.contains(key), "the example does not document {key}");
    }
}

#[test]
fn every_bundled_scenario_validates() {
    for file in bundled_scenarios() {
        statesim()
            .arg("validate")
            .arg(project_path(&file))
            .assert()
            .success();
    }
}

#[test]
fn help_describes_the_commands() {
    let output = statesim().arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for word in ["run", "validate", "example", "Exit codes"] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    let output = statesim().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--seed",
        "--replications",
        "--set",
        "--out",
        "--jobs",
        "--quiet",
    ] {
        assert!(help.contains(flag), "run --help lacks {flag}");
    }
}

#[test]
fn responses_of_hours_are_recorded_not_clamped() {
    let dir = folder_with(&[(
        "slow.toml",
        r#"name = "slow"
duration = "6h"
[workload]
sessions_per_second = 0.002
service_time = "2h"
[servers]
workers = 100
[[topology]]
name = "slow"
state = "none"
"#,
    )]);
    let max = number(
        &run_in(dir, &["slow.toml", "--quiet"]).topology("slow"),
        "latency_max_ms",
    );
    let two_hours_ms = 2.0 * 3600.0 * 1000.0;
    assert!(
        (max - two_hours_ms).abs() / two_hours_ms < 0.001,
        "max latency {max} ms"
    );
}

#[test]
fn empirical_service_times_replay_a_csv_column() {
    let dir = folder_with(&[
        ("observed.csv", "latency_ms\n2\n2\n2\n8\n"),
        (
            "replay.toml",
            r#"name = "replay"
duration = "60s"
[workload]
sessions_per_second = 10
service_time = { dist = "empirical", file = "observed.csv" }
[servers]
workers = 50
[[topology]]
name = "replay"
state = "none"
"#,
        ),
    ]);
    let row = run_in(dir, &["replay.toml", "--quiet"]).topology("replay");
    // No queueing (50 workers), no network: latency is exactly the replayed service time.
    let (p50, max, mean) = (
        number(&row, "latency_p50_ms"),
        number(&row, "latency_max_ms"),
        number(&row, "latency_mean_ms"),
    );
    assert!(
        (p50 - 2.0).abs() < 0.01 && (max - 8.0).abs() < 0.01,
        "p50 {p50}, max {max}"
    );
    assert!(
        (mean - 3.5).abs() < 0.25,
        "mean {mean} of a 3/4 x 2 ms + 1/4 x 8 ms mix"
    );
}

#[test]
fn idle_session_state_is_held_for_its_ttl_and_a_full_server_evicts_or_refuses() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--quiet",
            "--set",
            "duration=150s",
            "--set",
            "fault.0.at=140s",
        ];
        args.extend(extra);
        let finished = run_ok(&args);
        let stateful = finished.topology("stateful");
        let figure = |name: &str| number(&stateful, name);
        (
            figure("peak_session_memory_mb"),
            figure("sessions_lost_eviction"),
            figure("rejected"),
        )
    };
    let (without_ttl, _, _) = run(&["--set", "topology.stateful.session_ttl=0"]);
    let (with_ttl, evicted, _) = run(&[]);
    // Sessions last ~45 s; a 30-minute TTL keeps every session of the 150 s run in memory.
    assert!(
        with_ttl > 2.0 * without_ttl,
        "ttl {with_ttl} MiB vs none {without_ttl} MiB"
    );
    assert_eq!(evicted, 0.0, "4 GiB per server holds every session");
    // 1 MiB holds 104 sessions of 10 KB: idle states go first, then live sessions are evicted
    // (lost) or, with `refuse`, new sessions are turned away.
    let (peak, evicted, _) = run(&["--set", "servers.memory_mb=1"]);
    assert!(peak <= 1.0, "peak {peak} MiB above the 1 MiB budget");
    assert!(evicted > 0.0, "a full server must evict");
    let (peak, evicted, rejected) = run(&[
        "--set",
        "servers.memory_mb=1",
        "--set",
        "servers.on_memory_full=refuse",
    ]);
    assert!(
        peak <= 1.0 && evicted == 0.0 && rejected > 0.0,
        "{peak} {evicted} {rejected}"
    );
}

/// The progress bar appears on a terminal and stays away under `CI` (indicatif does not check it
/// itself). `script` provides the pseudo-terminal; without it the test has nothing to drive.
#[test]
fn progress_shows_on_a_terminal_unless_ci_is_set() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: /usr/bin/script is not installed");
        return;
    }
    let on_terminal = |ci: &str| {
        let dir = TempDir::new().unwrap();
        let command = format!(
            "{ci} {} run --replications 4 --set duration=150s --set fault.0.at=100s --out {}",
            env!("CARGO_BIN_EXE_statesim"),
            dir.path().display()
        );
        let output = std::process::Command::new("/usr/bin/script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).contains("runs, ETA")
    };
    assert!(
        on_terminal("env -u CI"),
        "a terminal shows the progress bar"
    );
    assert!(!on_terminal("env CI=true"), "CI hides the progress bar");
}

#[test]
fn stats_report_the_events_the_summary_counts_even_when_quiet() {
    let run = run_ok(&[SHORT_QUICKSTART, &["--stats"]].concat());
    let line = run
        .stderr
        .lines()
        .find(|line| line.starts_with("stats: "))
        .unwrap_or_else(|| panic!("no stats line in:\n{}", run.stderr));
    let events_in_summary: f64 = run.summary().iter().map(|row| number(row, "events")).sum();
    let field = |unit: &str| -> f64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|word| *word == unit)
            .unwrap_or_else(|| panic!("no {unit:?} in {line:?}"));
        words[at - 1].parse().unwrap()
    };
    assert_eq!(field("events"), events_in_summary, "{line}");
    assert_eq!(field("simulations"), 3.0, "{line}");
    assert!(field("requests") > number(&run.topology("stateful"), "requests"));
    assert!(line.contains("peak RSS "), "{line}");
}
