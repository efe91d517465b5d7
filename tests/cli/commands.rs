//! The commands as a user meets them: the quickstart, files written, example, validate, help.

use super::support::{bundled_scenarios, project_path, read_csv, statesim};
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
    let lost = |topology: &str| -> f64 {
        rows.iter().find(|r| r["topology"] == topology).unwrap()["sessions_lost"]
            .parse()
            .unwrap()
    };
    assert!(lost("stateful") > 0.0);
    assert_eq!(lost("stateless-store"), 0.0);
    assert_eq!(lost("stateless-token"), 0.0);
    let bytes = |topology: &str| -> f64 {
        rows.iter().find(|r| r["topology"] == topology).unwrap()["bytes_per_request"]
            .parse()
            .unwrap()
    };
    assert!(
        bytes("stateless-token") >= 550.0 && bytes("stateless-store") > bytes("stateless-token")
    );
}

#[test]
fn latency_csv_holds_a_monotone_distribution_per_topology() {
    let dir = TempDir::new().unwrap();
    let output = statesim()
        .args([
            "run",
            "--quiet",
            "--set",
            "duration=40s",
            "--set",
            "warmup=5s",
            "--set",
            "fault.0.at=20s",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let rows = read_csv(&dir.path().join("latency.csv"));
    for topology in ["stateful", "stateless-store", "stateless-token"] {
        let series: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r["topology"] == topology)
            .map(|r| {
                (
                    r["percentile"].parse().unwrap(),
                    r["latency_ms"].parse().unwrap(),
                )
            })
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
    let dir = TempDir::new().unwrap();
    let output = statesim()
        .args([
            "run",
            "--quiet",
            "--set",
            "duration=30s",
            "--set",
            "warmup=0",
            "--set",
            "fault.0.at=10s",
        ])
        .args(["--set", "topology.stateless-token.token_bytes=2000"])
        .args([
            "--set",
            "workload.service_time={dist=\"lognormal\",p50=\"5ms\",p99=\"40ms\"}",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = read_csv(&dir.path().join("summary.csv"));
    let token = rows
        .iter()
        .find(|r| r["topology"] == "stateless-token")
        .unwrap();
    assert_eq!(token["bytes_per_request"], "2000");
    let p50: f64 = token["latency_p50_ms"].parse().unwrap();
    assert!(p50 < 8.0, "the faster service time applies: p50 {p50}");
}

#[test]
fn quiet_leaves_stderr_empty() {
    let dir = TempDir::new().unwrap();
    let output = statesim()
        .args([
            "run",
            "--quiet",
            "--set",
            "duration=20s",
            "--set",
            "warmup=0",
            "--set",
            "fault.0.at=10s",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
    let dir = TempDir::new().unwrap();
    let scenario = dir.path().join("slow.toml");
    std::fs::write(
        &scenario,
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
    )
    .unwrap();
    let output = statesim()
        .arg("run")
        .arg(&scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = read_csv(&dir.path().join("summary.csv"));
    let max: f64 = rows[0]["latency_max_ms"].parse().unwrap();
    let two_hours_ms = 2.0 * 3600.0 * 1000.0;
    assert!(
        (max - two_hours_ms).abs() / two_hours_ms < 0.001,
        "max latency {max} ms"
    );
}

#[test]
fn empirical_service_times_replay_a_csv_column() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("observed.csv"), "latency_ms\n2\n2\n2\n8\n").unwrap();
    std::fs::write(
        dir.path().join("replay.toml"),
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
    )
    .unwrap();
    let output = statesim()
        .current_dir(dir.path())
        .args(["run", "replay.toml", "--quiet", "--out", "out"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = read_csv(&dir.path().join("out/summary.csv"));
    let p50: f64 = rows[0]["latency_p50_ms"].parse().unwrap();
    let max: f64 = rows[0]["latency_max_ms"].parse().unwrap();
    // No queueing (50 workers), no network: latency is exactly the replayed service time.
    assert!(
        (p50 - 2.0).abs() < 0.01 && (max - 8.0).abs() < 0.01,
        "p50 {p50}, max {max}"
    );
    let mean: f64 = rows[0]["latency_mean_ms"].parse().unwrap();
    assert!(
        (mean - 3.5).abs() < 0.25,
        "mean {mean} of a 3/4 x 2 ms + 1/4 x 8 ms mix"
    );
}

#[test]
fn idle_session_state_is_held_for_its_ttl_and_memory_beyond_the_budget_is_reported() {
    let run = |extra: &[&str]| {
        let dir = TempDir::new().unwrap();
        let output = statesim()
            .args([
                "run",
                "--quiet",
                "--set",
                "duration=150s",
                "--set",
                "fault.0.at=140s",
            ])
            .args(extra)
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rows = read_csv(&dir.path().join("summary.csv"));
        let peak: f64 = rows[0]["peak_session_memory_mb"].parse().unwrap();
        (peak, String::from_utf8(output.stderr).unwrap())
    };
    let (without_ttl, _) = run(&["--set", "topology.stateful.session_ttl=0"]);
    let (with_ttl, _) = run(&[]);
    // Sessions last ~45 s; a 30-minute TTL keeps every session of the 150 s run in memory.
    assert!(
        with_ttl > 2.0 * without_ttl,
        "ttl {with_ttl} MiB vs none {without_ttl} MiB"
    );
    let (_, stderr) = run(&["--set", "servers.memory_mb=5"]);
    assert!(
        stderr.contains("more than servers.memory_mb = 5"),
        "{stderr}"
    );
}
