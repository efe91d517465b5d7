//! Replications: means and 95% intervals in summary.csv, every replication in replications.csv,
//! and the provenance columns that tie a result file to what produced it.

use super::support::{folder_with, number, project_path, read_csv, run_in};

const SHORT_MM1: &[&str] = &[
    "scenarios/validation/mm1.toml",
    "--quiet",
    "--set",
    "duration=60s",
    "--set",
    "warmup=5s",
];

#[test]
fn summary_means_and_intervals_come_from_the_replications() {
    let dir = project_path(".");
    let run = run_in(
        tempfile::TempDir::new().unwrap(),
        &[
            &[dir.join(SHORT_MM1[0]).to_str().unwrap()],
            &SHORT_MM1[1..],
            &["--replications", "5"],
        ]
        .concat(),
    );
    let summary = run.topology("mm1");
    let replications = read_csv(&run.out("replications.csv"));
    assert_eq!(replications.len(), 5);
    for column in [
        "latency_p99_ms",
        "latency_mean_ms",
        "throughput_rps",
        "requests",
    ] {
        let samples: Vec<f64> = replications.iter().map(|r| number(r, column)).collect();
        let mean = samples.iter().sum::<f64>() / 5.0;
        let sd = (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
        // t(0.975, 4) = 2.776445
        let half_width = 2.776_445 * sd / 5f64.sqrt();
        let reported = number(&summary, column);
        let reported_half = number(&summary, &format!("{column}_ci95"));
        assert!(
            (reported - mean).abs() <= 1e-5 * mean.abs().max(1.0),
            "{column}: {reported} vs {mean}"
        );
        assert!(
            (reported_half - half_width).abs() <= 1e-4 * half_width.max(1e-9),
            "{column}_ci95: {reported_half} vs {half_width}"
        );
        assert!(reported_half > 0.0, "{column}: replications should differ");
    }
    // The table shows the interval too.
    assert!(run.stdout.contains(" ± "), "{}", run.stdout);
}

#[test]
fn one_replication_has_no_interval() {
    let dir = project_path(".");
    let run = run_in(
        tempfile::TempDir::new().unwrap(),
        &[
            &[dir.join(SHORT_MM1[0]).to_str().unwrap()],
            &SHORT_MM1[1..],
            &["--replications", "1"],
        ]
        .concat(),
    );
    let summary = run.topology("mm1");
    assert_eq!(
        summary["latency_p99_ms_ci95"], "",
        "an empty cell is missing data"
    );
    assert!(!run.stdout.contains(" ± "));
    assert_eq!(read_csv(&run.out("replications.csv")).len(), 1);
}

const SCENARIO: &str = r#"name = "trace"
duration = "20s"
[workload]
sessions_per_second = 50
service_time = "2ms"
[servers]
count = 2
[[topology]]
name = "plain"
state = "none"
"#;

fn provenance(run: &super::support::Finished) -> Vec<(String, String, String)> {
    ["summary.csv", "replications.csv", "latency.csv"]
        .iter()
        .flat_map(|file| read_csv(&run.out(file)))
        .map(|row| {
            (
                row["seed"].clone(),
                row["scenario_hash"].clone(),
                row["statesim_version"].clone(),
            )
        })
        .collect()
}

#[test]
fn every_result_file_records_seed_scenario_hash_and_version() {
    let run = run_in(
        folder_with(&[("s.toml", SCENARIO)]),
        &["s.toml", "--quiet", "--seed", "9"],
    );
    let rows = provenance(&run);
    let first = rows[0].clone();
    assert!(
        rows.iter().all(|row| *row == first),
        "one provenance in every row of every file"
    );
    assert_eq!(first.0, "9");
    assert_eq!(first.1.len(), 16, "{first:?}");
    assert_eq!(first.2, env!("CARGO_PKG_VERSION"));

    // Comments and layout do not change the fingerprint; a setting does.
    let reformatted = format!("# a comment\n\n{}", SCENARIO.replace(" = ", "="));
    let same = run_in(
        folder_with(&[("s.toml", &reformatted)]),
        &["s.toml", "--quiet"],
    );
    assert_eq!(provenance(&same)[0].1, first.1);
    let changed = run_in(
        folder_with(&[("s.toml", SCENARIO)]),
        &["s.toml", "--quiet", "--set", "servers.count=3"],
    );
    assert_ne!(provenance(&changed)[0].1, first.1);
}

#[test]
fn paired_differences_come_from_the_same_replications_of_two_topologies() {
    // Two topologies on the same servers, four replications.
    let text = SCENARIO.replacen(
        "name = \"trace\"\n",
        "name = \"trace\"\nreplications = 4\n",
        1,
    ) + "[[topology]]\nname = \"random\"\nstate = \"none\"\nbalancer = { policy = \"random\" }\n";
    let run = run_in(folder_with(&[("s.toml", &text)]), &["s.toml", "--quiet"]);
    let replications = read_csv(&run.out("replications.csv"));
    let p99 = |topology: &str| -> Vec<f64> {
        replications
            .iter()
            .filter(|r| r["topology"] == topology)
            .map(|r| number(r, "latency_p99_ms"))
            .collect()
    };
    let (plain, random) = (p99("plain"), p99("random"));
    let differences: Vec<f64> = random.iter().zip(&plain).map(|(r, p)| r - p).collect();
    let mean = differences.iter().sum::<f64>() / 4.0;
    let row = read_csv(&run.out("differences.csv"))
        .into_iter()
        .find(|r| r["metric"] == "latency_p99_ms")
        .expect("a p99 row");
    assert_eq!(row["topology"], "random");
    assert_eq!(row["versus"], "plain");
    assert!(
        (number(&row, "difference") - mean).abs() < 1e-5,
        "{row:?} vs {mean}"
    );
    let sd = (differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    // t(0.975, 3) = 3.182446
    let half_width = 3.182_446 * sd / 2.0;
    assert!((number(&row, "difference_ci95") - half_width).abs() < 1e-4 * half_width.max(1e-6));
    assert!(run.stdout.contains("random: p99 "), "{}", run.stdout);
    assert!(
        run.stdout.contains("than plain (paired, 4 replications)"),
        "{}",
        run.stdout
    );

    let single = run_in(
        folder_with(&[("s.toml", &text)]),
        &["s.toml", "--quiet", "--replications", "1"],
    );
    assert!(
        !single.out("differences.csv").exists(),
        "no pairs to difference"
    );
}

#[test]
fn precision_adds_replications_until_the_interval_is_narrow_enough() {
    let flags = ["s.toml", "--quiet", "--precision", "throughput_rps=0.01"];
    let mut files = Vec::new();
    for jobs in ["1", "2"] {
        let run = run_in(
            folder_with(&[("s.toml", SCENARIO)]),
            &[&flags[..], &["--jobs", jobs]].concat(),
        );
        let row = run.topology("plain");
        let replications = number(&row, "replications");
        let relative = number(&row, "throughput_rps_ci95") / number(&row, "throughput_rps");
        assert!(
            replications > 5.0,
            "the 5-replication pilot was not enough here"
        );
        assert!(
            relative <= 0.01,
            "{relative} after {replications} replications"
        );
        files.push(std::fs::read(run.out("replications.csv")).unwrap());
    }
    assert_eq!(files[0], files[1], "the same replications for any --jobs");

    let capped = run_in(
        folder_with(&[("s.toml", SCENARIO)]),
        &[
            "s.toml",
            "--precision",
            "throughput_rps=0.0001",
            "--max-replications",
            "7",
        ],
    );
    assert_eq!(number(&capped.topology("plain"), "replications"), 7.0);
    assert!(
        capped.stderr.contains("stopped at --max-replications 7"),
        "{}",
        capped.stderr
    );

    let output = super::support::statesim()
        .args(["run", "--precision", "p99=0.05", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--precision p99=0.05"));
}

#[test]
fn auto_warmup_picks_a_cut_and_runs_as_if_it_had_been_written() {
    // M/M/1 at rho = 0.95 starting empty: latency climbs for a while before it settles.
    let text = r#"name = "hot"
duration = "10m"
warmup = "auto"
[workload]
sessions_per_second = 190
service_time = { dist = "exponential", mean = "5ms" }
[servers]
count = 1
[[topology]]
name = "one"
state = "none"
"#;
    let auto = run_in(folder_with(&[("s.toml", text)]), &["s.toml"]);
    let line = auto
        .stderr
        .lines()
        .find(|line| line.starts_with("warm-up: auto chose "))
        .unwrap_or_else(|| panic!("no warm-up line in {}", auto.stderr));
    let cut = line["warm-up: auto chose ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let seconds: f64 = cut
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("{cut}"));
    assert!(
        seconds > 0.0 && seconds <= 300.0,
        "cut {cut}: a transient, at most half the run"
    );
    let fixed = run_in(
        folder_with(&[("s.toml", text)]),
        &["s.toml", "--quiet", "--set", &format!("warmup={cut}")],
    );
    for column in [
        "requests",
        "latency_p99_ms",
        "latency_mean_ms",
        "sessions_at_warmup",
    ] {
        assert_eq!(
            auto.topology("one")[column],
            fixed.topology("one")[column],
            "{column}: auto must run exactly as warmup = {cut}"
        );
    }
}
