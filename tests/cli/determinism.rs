//! Same seed, same bytes: for any number of parallel jobs, and run after run.

use super::support::run_ok;

/// Every file written (name and bytes, in name order) and the table of a short
/// two-replication quickstart.
fn outputs(extra: &[&str]) -> (Vec<(String, Vec<u8>)>, String) {
    let mut args = vec![
        "--quiet",
        "--replications",
        "2",
        "--set",
        "duration=150s",
        "--set",
        "fault.0.at=100s",
    ];
    args.extend(extra);
    let run = run_ok(&args);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(run.out(""))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    (files, run.stdout)
}

#[test]
fn output_is_byte_identical_for_any_number_of_jobs() {
    let one = outputs(&["--jobs", "1"]);
    let two = outputs(&["--jobs", "2"]);
    let again = outputs(&["--jobs", "2"]);
    let names: Vec<&str> = one.0.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "summary.csv",
        "latency.csv",
        "timeseries.csv",
        "faults.csv",
        "servers.csv",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    for ((name, a), (_, b)) in one.0.iter().zip(&two.0) {
        assert!(a == b, "{name} differs between --jobs 1 and --jobs 2");
    }
    assert_eq!(one.0.len(), two.0.len());
    assert_eq!(
        one.1, two.1,
        "the table differs between --jobs 1 and --jobs 2"
    );
    assert_eq!(two, again, "two identical runs differ");
}

#[test]
fn a_different_seed_gives_different_results() {
    let default = outputs(&["--jobs", "2"]);
    let other = outputs(&["--jobs", "2", "--seed", "7"]);
    assert_ne!(default.0, other.0);
}
