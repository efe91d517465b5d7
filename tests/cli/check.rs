//! `statesim check`: assertions in the scenario, baselines, exit codes 0/1/2, JUnit and Markdown.

use super::support::{folder_with, read_csv, statesim};
use std::path::Path;

const SCENARIO: &str = r#"name = "gate"
duration = "20s"
replications = 3
[workload]
sessions_per_second = 50
service_time = "2ms"
[servers]
count = 2
[[topology]]
name = "plain"
state = "none"
[[topology]]
name = "busy"
state = "none"
servers = { count = 1 }
"#;

struct Checked {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(dir: &Path, args: &[&str]) -> Checked {
    let output = statesim()
        .current_dir(dir)
        .arg("check")
        .args(args)
        .args(["--quiet", "--out", "out"])
        .output()
        .unwrap();
    Checked {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn with_expectations(expectations: &str) -> tempfile::TempDir {
    folder_with(&[("s.toml", &format!("{SCENARIO}\n{expectations}"))])
}

#[test]
fn holding_assertions_exit_0_and_a_broken_one_exits_1_naming_value_bound_and_difference() {
    let dir = with_expectations(
        r#"
[[expect]]
topology = "*"
metric = "availability"
equals = 1
[[expect]]
topology = "busy"
metric = "latency_p99_ms"
max = 1.5
"#,
    );
    let result = check(
        dir.path(),
        &["s.toml", "--junit", "j.xml", "--markdown", "m.md"],
    );
    assert_eq!(result.code, 1, "{}{}", result.stdout, result.stderr);
    let fail = result
        .stdout
        .lines()
        .find(|line| line.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{}", result.stdout));
    // Service is a constant 2 ms, so the p99 is 2 ms or more: above the 1.5 ms bound.
    assert!(fail.contains("busy latency_p99_ms"), "{fail}");
    assert!(fail.contains("expected <= 1.5"), "{fail}");
    assert!(fail.contains("beyond"), "{fail}");
    assert!(
        result.stdout.contains("3 checks, 2 passed, 1 failed"),
        "{}",
        result.stdout
    );

    let junit = std::fs::read_to_string(dir.path().join("j.xml")).unwrap();
    assert!(junit.contains(r#"tests="3" failures="1""#), "{junit}");
    assert_eq!(junit.matches("<failure ").count(), 1, "{junit}");
    let markdown = std::fs::read_to_string(dir.path().join("m.md")).unwrap();
    assert!(
        markdown.contains("| **FAIL** | expect | busy | latency_p99_ms |"),
        "{markdown}"
    );
    // The results are written as by `run`.
    assert_eq!(read_csv(&dir.path().join("out/summary.csv")).len(), 2);

    let relaxed = with_expectations(
        r#"
[[expect]]
topology = "*"
metric = "availability"
equals = 1
"#,
    );
    let result = check(relaxed.path(), &["s.toml"]);
    assert_eq!(result.code, 0, "{}{}", result.stdout, result.stderr);
    assert!(result.stdout.contains("2 checks, 2 passed, 0 failed"));
}

#[test]
fn confidence_requires_the_whole_interval_inside_the_bound() {
    // Throughput is about 50/s; the mean clears 45 but, over 3 short replications, the lower end
    // of the 95% interval does not clear 49.
    let bound = |min: f64, confidence: bool| {
        format!(
            "[[expect]]\ntopology = \"plain\"\nmetric = \"throughput_rps\"\nmin = {min}\nconfidence = {confidence}\n"
        )
    };
    let mean_only = with_expectations(&bound(49.0, false));
    assert_eq!(check(mean_only.path(), &["s.toml"]).code, 0);
    let whole = with_expectations(&bound(49.0, true));
    let result = check(whole.path(), &["s.toml"]);
    assert_eq!(result.code, 1, "{}", result.stdout);
    assert!(result.stdout.contains(" ± "), "{}", result.stdout);
}

#[test]
fn an_unchanged_rerun_matches_its_baseline_and_a_moved_metric_fails() {
    let dir = folder_with(&[("s.toml", SCENARIO)]);
    let update = check(
        dir.path(),
        &["s.toml", "--baseline", "base", "--update-baseline"],
    );
    assert_eq!(update.code, 0, "{}{}", update.stdout, update.stderr);
    assert!(dir.path().join("base/summary.csv").exists());

    let rerun = check(dir.path(), &["s.toml", "--baseline", "base", "--jobs", "1"]);
    assert_eq!(rerun.code, 0, "{}{}", rerun.stdout, rerun.stderr);
    assert!(!rerun.stdout.contains("FAIL"));

    // 5% more service time moves latency by ~5%, beyond the default 2%...
    let slower = [
        "s.toml",
        "--baseline",
        "base",
        "--set",
        "workload.service_time=2.1ms",
    ];
    let result = check(dir.path(), &slower);
    assert_eq!(result.code, 1, "{}", result.stdout);
    assert!(
        result
            .stdout
            .contains("FAIL baseline plain latency_p99_ms: measured 2.1"),
        "{}",
        result.stdout
    );
    // ...and within a tolerance that allows it.
    let tolerant = check(
        dir.path(),
        &[&slower[..], &["--tolerance", "*=0.1"]].concat(),
    );
    assert_eq!(tolerant.code, 0, "{}", tolerant.stdout);
}

#[test]
fn bad_input_exits_2_before_running() {
    let dir =
        with_expectations("[[expect]]\ntopology = \"plain\"\nmetric = \"latency_p99\"\nmax = 1\n");
    let result = check(dir.path(), &["s.toml"]);
    assert_eq!(result.code, 2);
    assert!(result.stderr.contains("s.toml:"), "{}", result.stderr);
    assert!(
        result.stderr.contains("expect[0].metric"),
        "{}",
        result.stderr
    );
    assert!(
        result.stderr.contains("latency_p99_ms"),
        "lists the valid names: {}",
        result.stderr
    );

    let plain = folder_with(&[("s.toml", SCENARIO)]);
    for (args, message) in [
        (&["s.toml"][..], "nothing to check"),
        (
            &["s.toml", "--baseline", "missing"][..],
            "cannot read the baseline",
        ),
        (
            &["s.toml", "--baseline", "x", "--tolerance", "p99"][..],
            "--tolerance p99",
        ),
    ] {
        let result = check(plain.path(), args);
        assert_eq!(result.code, 2, "{args:?}: {}", result.stderr);
        assert!(
            result.stderr.contains(message),
            "{args:?}: {}",
            result.stderr
        );
    }
    assert!(
        !plain.path().join("out").exists(),
        "no partial results on bad input"
    );
}

#[test]
fn the_bundled_baselines_are_reproduced() {
    // What .ci/run does, here too so that `cargo test` alone catches a moved result.
    let root = super::support::project_path(".");
    for name in ["quickstart", "store-choices"] {
        let scenario = root.join(format!("scenarios/{name}.toml"));
        let baseline = root.join(format!("results/baseline/{name}"));
        let out = tempfile::TempDir::new().unwrap();
        let result = check(
            out.path(),
            &[
                scenario.to_str().unwrap(),
                "--baseline",
                baseline.to_str().unwrap(),
            ],
        );
        assert_eq!(
            result.code, 0,
            "{name}:\n{}{}",
            result.stdout, result.stderr
        );
    }
}
