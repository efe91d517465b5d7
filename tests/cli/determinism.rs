//! Same seed, same bytes: for any number of parallel jobs, and run after run.

use super::support::run_ok;

/// summary.csv, latency.csv and the table of a short two-replication quickstart.
fn outputs(extra: &[&str]) -> (Vec<u8>, Vec<u8>, String) {
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
    (
        std::fs::read(run.out("summary.csv")).unwrap(),
        std::fs::read(run.out("latency.csv")).unwrap(),
        run.stdout,
    )
}

#[test]
fn output_is_byte_identical_for_any_number_of_jobs() {
    let one = outputs(&["--jobs", "1"]);
    let two = outputs(&["--jobs", "2"]);
    let again = outputs(&["--jobs", "2"]);
    assert_eq!(
        one.0, two.0,
        "summary.csv differs between --jobs 1 and --jobs 2"
    );
    assert_eq!(
        one.1, two.1,
        "latency.csv differs between --jobs 1 and --jobs 2"
    );
    assert_eq!(
        one.2, two.2,
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
