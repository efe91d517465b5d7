//! `statesim fit`: a log made from a known workload is fitted back to it, and the fit is a
//! `[workload]` section a scenario accepts.

use super::support::{folder_with, statesim};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp1, LogNormal};
use statesim::scenario::units::parse_duration;

/// A log of known workload: sessions start as a Poisson process of 5/s for 5 minutes, then
/// 20/s for 5 minutes; each sends a geometric number of requests (mean 4) with lognormal think
/// times (p50 2 s, p99 20 s) and service times (p50 10 ms, p99 80 ms, in ms).
fn known_log() -> String {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let z99 = 2.326_347_874;
    let think = LogNormal::new(2f64.ln(), (20f64 / 2.0).ln() / z99).unwrap();
    let service = LogNormal::new(10f64.ln(), (80f64 / 10.0).ln() / z99).unwrap();
    let mut rows: Vec<(f64, u64, f64)> = Vec::new();
    let (mut t, mut session) = (0.0, 0u64);
    while t < 600.0 {
        let rate = if t < 300.0 { 5.0 } else { 20.0 };
        let gap: f64 = Exp1.sample(&mut rng);
        t += gap / rate;
        if t >= 600.0 {
            break;
        }
        session += 1;
        let mut at = t;
        loop {
            rows.push((at, session, service.sample(&mut rng)));
            if rng.random::<f64>() < 0.25 {
                break; // geometric: stops after each request with probability 1/4
            }
            at += think.sample(&mut rng);
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut text = String::from("timestamp,session,upstream_ms\n");
    for (at, session, service) in rows {
        text.push_str(&format!("{at:.6},s{session},{service:.4}\n"));
    }
    text
}

fn fit(files: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let dir = folder_with(files);
    let output = statesim()
        .current_dir(dir.path())
        .arg("fit")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_log_of_a_known_workload_fits_back_to_it() {
    let log = known_log();
    let (code, stdout, stderr) = fit(
        &[("access.csv", &log)],
        &[
            "access.csv",
            "--service-time",
            "upstream_ms",
            "--service-time-unit",
            "ms",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let table: toml::Table = toml::from_str(&stdout).unwrap();
    let workload = table["workload"].as_table().unwrap();
    // One step a minute: 300 starts expected in each of the first five (4 Poisson sd = 69),
    // 1,200 in each of the last five (4 sd = 139).
    let schedule = workload["schedule"].as_array().unwrap();
    assert_eq!(schedule.len(), 10, "{stdout}");
    for (index, step) in schedule.iter().enumerate() {
        let rate = step["sessions_per_second"]
            .as_float()
            .unwrap_or_else(|| step["sessions_per_second"].as_integer().unwrap() as f64);
        let (expected, tolerance) = if index < 5 {
            (5.0, 69.0 / 60.0)
        } else {
            (20.0, 139.0 / 60.0)
        };
        assert!(
            (rate - expected).abs() <= tolerance,
            "step {index}: {rate}/s"
        );
    }
    let requests = &workload["requests_per_session"];
    assert_eq!(requests["dist"].as_str(), Some("geometric"));
    let mean = requests["mean"].as_float().unwrap();
    // ~7,500 sessions: the mean of a geometric of mean 4 (sd 3.5) within 4 standard errors.
    assert!((mean - 4.0).abs() < 4.0 * 3.5 / 7500f64.sqrt(), "{mean}");
    let seconds = |value: &toml::Value| {
        parse_duration(value.as_str().unwrap())
            .unwrap()
            .as_secs_f64()
    };
    let think = &workload["think_time"];
    assert!((seconds(&think["p50"]) / 2.0 - 1.0).abs() < 0.05, "{think}");
    assert!(
        (seconds(&think["p99"]) / 20.0 - 1.0).abs() < 0.12,
        "{think}"
    );
    let service = &workload["service_time"];
    assert!(
        (seconds(&service["p50"]) / 0.010 - 1.0).abs() < 0.05,
        "{service}"
    );
    assert!(
        (seconds(&service["p99"]) / 0.080 - 1.0).abs() < 0.12,
        "{service}"
    );
    assert!(stdout.contains("a good fit"), "{stdout}");

    // The fit is a [workload] section a scenario takes as it is.
    let scenario = format!(
        "name = \"fitted\"\nduration = \"10m\"\n{stdout}\n[servers]\ncount = 4\n[[topology]]\nname = \"a\"\nstate = \"none\"\n"
    );
    statesim::scenario::load_str(&scenario, "f.toml", std::path::Path::new("."), &[])
        .unwrap_or_else(|e| panic!("{e}\n{scenario}"));
}

#[test]
fn a_bad_log_is_an_error_with_its_line() {
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "timestamp,session\n2,a\n1,b\n",
            &[],
            "log.csv:3: the log must be in time order",
        ),
        (
            "timestamp,session\n1,a\nsoon,b\n",
            &[],
            "log.csv:3: column 1 (timestamp): expected a number, got \"soon\"",
        ),
        (
            "time,session\n1,a\n",
            &[],
            "log.csv:1: no column named \"timestamp\": the header has time, session",
        ),
        ("timestamp,session\n", &[], "the log has no rows"),
        (
            "timestamp,session\n1,a\n",
            &["--bucket", "0s"],
            "--bucket 0s: expected a duration of at least 1s",
        ),
    ];
    for (log, extra, expected) in cases {
        let mut args = vec!["log.csv"];
        args.extend(extra);
        let (code, stdout, stderr) = fit(&[("log.csv", log)], &args);
        assert_eq!(code, Some(2), "{log}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{log}: {expected:?} not in {stderr}"
        );
        assert!(stdout.is_empty());
    }
    let (code, _, stderr) = fit(&[], &["missing.csv"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read missing.csv"), "{stderr}");
}

/// The KS line tells a fit that misses the shape: sessions of exactly five requests are no
/// geometric distribution, whatever its mean.
#[test]
fn a_shape_the_fit_cannot_follow_is_said() {
    let mut log = String::from("timestamp,session\n");
    for session in 0..2000 {
        for request in 0..5 {
            log.push_str(&format!("{}.{request},u{session}\n", session * 10));
        }
    }
    let (code, stdout, stderr) = fit(&[("log.csv", &log)], &["log.csv"]);
    assert_eq!(code, Some(0), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("requests_per_session"))
        .unwrap();
    assert!(line.contains("mean = 5 }"), "{line}");
    assert!(line.contains("the shape differs"), "{line}");
}

/// With `--samples DIR` a quantity of at least 1,000 values becomes an empirical distribution
/// that resamples its values, written into DIR; the printed section loads in a scenario beside
/// DIR. Fewer values keep the parametric fit (a sparse tail).
#[test]
fn samples_become_empirical_distributions_where_there_are_enough() {
    let log = known_log();
    let dir = folder_with(&[("access.csv", &log)]);
    let output = statesim()
        .current_dir(dir.path())
        .args(["fit", "access.csv", "--service-time", "upstream_ms"])
        .args(["--service-time-unit", "ms", "--samples", "fitted"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for key in ["requests_per_session", "think_time", "service_time"] {
        let line = stdout.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(line.contains("dist = \"empirical\""), "{line}");
        let rows = std::fs::read_to_string(dir.path().join(format!("fitted/{key}.csv"))).unwrap();
        assert!(rows.lines().count() > 1000, "{key}");
    }
    let scenario = format!(
        "name = \"fitted\"\nduration = \"10m\"\n{stdout}\n[servers]\ncount = 4\n[[topology]]\nname = \"a\"\nstate = \"none\"\n"
    );
    std::fs::write(dir.path().join("fitted.toml"), &scenario).unwrap();
    statesim::scenario::load_file(&dir.path().join("fitted.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}\n{scenario}"));

    let small = "timestamp,session\n0,a\n1,a\n2,b\n4,b\n5,c\n";
    let (code, stdout, stderr) = fit(&[("log.csv", small)], &["log.csv", "--samples", "s"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("empirical"), "{stdout}");
    assert!(stdout.contains("dist = \"geometric\""), "{stdout}");
}
