//! Sweeps: `--sweep` and `[sweep]` expand into points, each exactly the run `--set` would give,
//! reported with `param_<key>` columns, identical for any `--jobs`.

use super::support::{folder_with, read_csv, run_in, statesim};

const SCENARIO: &str = r#"name = "sweepable"
duration = "30s"
seed = 5
[workload]
sessions_per_second = 200
service_time = { dist = "exponential", mean = "4ms" }
[servers]
count = 2
[[topology]]
name = "a"
state = "none"
[[topology]]
name = "b"
state = "none"
balancer = { policy = "random" }
"#;

/// summary.csv rows without the provenance hash (a sweep's fingerprint includes its definition).
fn rows_without_hash(dir: &tempfile::TempDir) -> Vec<std::collections::BTreeMap<String, String>> {
    read_csv(&dir.path().join("out/summary.csv"))
        .into_iter()
        .map(|mut row| {
            row.remove("scenario_hash");
            row
        })
        .collect()
}

#[test]
fn each_point_is_the_run_that_set_would_give() {
    let swept = run_in(
        folder_with(&[("s.toml", SCENARIO)]),
        &["s.toml", "--quiet", "--sweep", "servers.count=2,3"],
    );
    let rows = rows_without_hash(&swept.dir);
    assert_eq!(rows.len(), 4, "2 points x 2 topologies");
    let points: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["param_servers.count"].as_str(), r["topology"].as_str()))
        .collect();
    assert_eq!(points, [("2", "a"), ("2", "b"), ("3", "a"), ("3", "b")]);
    for count in ["2", "3"] {
        let single = run_in(
            folder_with(&[("s.toml", SCENARIO)]),
            &[
                "s.toml",
                "--quiet",
                "--set",
                &format!("servers.count={count}"),
            ],
        );
        for mut expected in rows_without_hash(&single.dir) {
            expected.insert("param_servers.count".into(), count.into());
            assert!(
                rows.contains(&expected),
                "point servers.count={count}, topology {} differs from its --set run",
                expected["topology"]
            );
        }
    }
    assert!(
        swept.stdout.starts_with("servers.count"),
        "{}",
        swept.stdout
    );
}

#[test]
fn file_sweeps_and_flags_make_a_cartesian_product_identical_for_any_jobs() {
    let text = format!("{SCENARIO}\n[sweep]\nworkload.sessions_per_second = \"100..300:100\"\n");
    let mut outputs = Vec::new();
    for jobs in ["1", "2"] {
        let run = run_in(
            folder_with(&[("s.toml", &text)]),
            &[
                "s.toml",
                "--quiet",
                "--jobs",
                jobs,
                "--sweep",
                "servers.count=2..4:*2",
            ],
        );
        let files: Vec<Vec<u8>> = ["summary.csv", "replications.csv", "latency.csv"]
            .iter()
            .map(|file| std::fs::read(run.out(file)).unwrap())
            .collect();
        let rows = read_csv(&run.out("summary.csv"));
        assert_eq!(rows.len(), 3 * 2 * 2);
        let first = &rows[0];
        assert_eq!(first["param_workload.sessions_per_second"], "100");
        assert_eq!(first["param_servers.count"], "2");
        assert_eq!(rows[1]["topology"], "b");
        assert_eq!(
            rows[2]["param_servers.count"], "4",
            "the flag varies fastest"
        );
        outputs.push(files);
    }
    assert_eq!(outputs[0], outputs[1], "byte-identical for --jobs 1 and 2");
}

#[test]
fn a_bad_point_is_bad_input_naming_the_point() {
    let dir = folder_with(&[("s.toml", SCENARIO)]);
    for (sweep, message) in [
        ("servers.count=2,0", "sweep point servers.count=0"),
        ("servers.count=5..1:1", "the range must grow"),
        ("servers.count", "expected KEY=V1,V2"),
    ] {
        let output = statesim()
            .current_dir(dir.path())
            .args(["run", "s.toml", "--quiet", "--out", "out", "--sweep", sweep])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{sweep}: {stderr}");
        assert!(stderr.contains(message), "{sweep}: {stderr}");
    }
    assert!(!dir.path().join("out").exists(), "no partial results");
}

#[test]
fn scalability_marks_the_knee_before_the_first_point_that_breaks_the_slo() {
    // One 4 ms exponential server: p99 = 4 ms * ln(100) / (1 - rho) grows fast with the load.
    let text = r#"name = "knee"
duration = "60s"
[workload]
sessions_per_second = 50
service_time = { dist = "exponential", mean = "4ms" }
[servers]
count = 1
[[topology]]
name = "one"
state = "none"
[sweep]
workload.sessions_per_second = [50, 100, 150, 200, 100]
[slo]
latency_p99_ms = { max = 60 }
"#;
    let run = run_in(folder_with(&[("s.toml", text)]), &["s.toml", "--quiet"]);
    let rows = read_csv(&run.out("scalability.csv"));
    let column = |name: &str| -> Vec<&str> { rows.iter().map(|r| r[name].as_str()).collect() };
    // rho 0.2, 0.4, 0.6, 0.8: p99 ≈ 23, 31, 46, 92 ms (M/M/1), so 200/s breaks the SLO; the
    // later 100/s meets it again but the knee is the last point before the first break.
    assert_eq!(column("slo_met"), ["true", "true", "true", "false", "true"]);
    assert_eq!(column("knee"), ["false", "false", "true", "false", "false"]);
    // A series that never breaks its SLO has no knee (not its last point).
    let generous = text.replace("max = 60", "max = 1000");
    let run = run_in(
        folder_with(&[("s.toml", &generous)]),
        &["s.toml", "--quiet"],
    );
    let rows = read_csv(&run.out("scalability.csv"));
    assert!(
        rows.iter()
            .all(|r| r["slo_met"] == "true" && r["knee"] == "false"),
        "{rows:?}"
    );
    let efficiency: Vec<f64> = column("efficiency")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(efficiency[0], 1.0);
    assert!(
        (efficiency[2] - 3.0).abs() < 0.15,
        "3x the load on one server: {efficiency:?}"
    );
}

#[test]
fn zipped_keys_advance_together_and_weak_scaling_keeps_efficiency_near_one() {
    let text = format!(
        "{SCENARIO}\n[sweep]\nzip = true\nservers.count = [1, 2, 4]\nworkload.sessions_per_second = [100, 200, 400]\n"
    );
    let run = run_in(folder_with(&[("s.toml", &text)]), &["s.toml", "--quiet"]);
    let rows = read_csv(&run.out("scalability.csv"));
    assert_eq!(rows.len(), 3 * 2, "3 zipped points, not 9");
    for row in &rows {
        let efficiency: f64 = row["efficiency"].parse().unwrap();
        assert!((efficiency - 1.0).abs() < 0.1, "{row:?}");
        assert_eq!(row["slo_met"], "", "no [slo]: nothing to judge");
    }
    // Without a sweep there is no scalability.csv.
    let plain = run_in(folder_with(&[("s.toml", SCENARIO)]), &["s.toml", "--quiet"]);
    assert!(!plain.out("scalability.csv").exists());
}

#[test]
fn shards_merge_into_the_files_one_run_writes() {
    // With a fault, so the time series and the fault rows go through the shards too.
    let scenario = format!(
        "{SCENARIO}[[fault]]\nkind = \"crash\"\nat = \"10s\"\nserver = 1\nrestart_after = \"5s\"\n"
    );
    let dir = folder_with(&[("s.toml", &scenario)]);
    let flags = [
        "s.toml",
        "--quiet",
        "--replications",
        "3",
        "--sweep",
        "servers.count=2,3",
    ];
    let run = |extra: &[&str]| {
        let output = statesim()
            .current_dir(dir.path())
            .arg("run")
            .args(flags)
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    assert_eq!(run(&["--out", "whole"]).0, Some(0));
    for shard in ["0/3", "1/3", "2/3"] {
        let out = format!("part{}", &shard[..1]);
        assert_eq!(run(&["--shard", shard, "--out", &out]).0, Some(0));
    }
    let merge = |parts: &[&str]| {
        statesim()
            .current_dir(dir.path())
            .arg("merge")
            .args(parts)
            .args(["--out", "merged", "--quiet"])
            .output()
            .unwrap()
    };
    let merged = merge(&["part2", "part0", "part1"]);
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    for file in [
        "summary.csv",
        "replications.csv",
        "latency.csv",
        "scalability.csv",
        "differences.csv",
        "timeseries.csv",
        "faults.csv",
        "servers.csv",
    ] {
        let whole = std::fs::read(dir.path().join("whole").join(file)).unwrap();
        let parts = std::fs::read(dir.path().join("merged").join(file)).unwrap();
        assert!(
            whole == parts,
            "{file} differs between the whole run and the merged shards"
        );
    }

    // A missing shard, or one from another run, is bad input.
    let missing = merge(&["part0", "part1"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("each of 0..3 is needed"));
    assert_eq!(
        run(&["--shard", "1/3", "--seed", "9", "--out", "other"]).0,
        Some(0)
    );
    let mixed = merge(&["part0", "other", "part2"]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("is from another run"));
    let (code, stderr) = run(&["--shard", "3/3"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--shard 3/3"), "{stderr}");
}

/// A sweep's verdict compares the topologies at every point (comparison.csv has the point's
/// `param_` column) and tells each series' knee on stdout. A store of one 4 ms worker saturates
/// at 250 reads a second, the four 10 ms workers at 400 requests: at 300 sessions a second only
/// the store breaks the SLO, so its knee is 150 and the token fleet has none.
#[test]
fn a_sweep_verdict_compares_every_point_and_names_each_knee() {
    let text = r#"name = "sweep-verdict"
duration = "60s"
warmup = "10s"
[workload]
sessions_per_second = 50
service_time = "10ms"
[servers]
count = 2
workers = 2
[[topology]]
name = "token"
state = "token"
[[topology]]
name = "store"
state = "store"
store = { workers = 1, read = "4ms", write_fraction = 0.0 }
[sweep]
workload.sessions_per_second = [50, 150, 300]
[slo]
latency_p99_ms = { max = 100 }
"#;
    let run = run_in(folder_with(&[("s.toml", text)]), &["s.toml"]);
    let rows = read_csv(&run.out("comparison.csv"));
    let points: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["param_workload.sessions_per_second"].as_str())
        .collect();
    assert_eq!(points, ["150", "300", "50"].into());
    let met = |point: &str, topology: &str| {
        rows.iter()
            .find(|r| {
                r["param_workload.sessions_per_second"] == point
                    && r["metric"] == "slo_met"
                    && r["topology"] == topology
            })
            .map(|r| r["value"].clone())
            .unwrap()
    };
    assert_eq!(met("150", "store"), "1");
    assert_eq!(met("300", "store"), "0");
    assert_eq!(met("300", "token"), "1");
    // Efficiency is throughput per server against the first point's: the store is held at its
    // 250 a second (5x the first point), the token fleet carries all 300 (6x).
    let efficiency = |topology: &str| -> f64 {
        let label = format!("{topology} efficiency ");
        let from = run.stdout.find(&label).unwrap() + label.len();
        let value = run.stdout[from..].split(' ').next().unwrap();
        value.parse().unwrap()
    };
    assert!((efficiency("store") - 5.0).abs() < 0.15, "{}", run.stdout);
    assert!((efficiency("token") - 6.0).abs() < 0.15, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("at the last point, knee at workload.sessions_per_second=150"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("at the last point, no knee"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("at the last point, workload.sessions_per_second=300"),
        "{}",
        run.stdout
    );
}
