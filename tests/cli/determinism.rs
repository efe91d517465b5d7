//! Same seed, same bytes: for any number of parallel jobs, and run after run.

use super::support::statesim;
use tempfile::TempDir;

fn run_quickstart(extra: &[&str]) -> (Vec<u8>, Vec<u8>, String) {
    let dir = TempDir::new().unwrap();
    let output = statesim()
        .args([
            "run",
            "--quiet",
            "--replications",
            "2",
            "--set",
            "duration=150s",
            "--set",
            "fault.0.at=100s",
        ])
        .arg("--out")
        .arg(dir.path())
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        std::fs::read(dir.path().join("summary.csv")).unwrap(),
        std::fs::read(dir.path().join("latency.csv")).unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn output_is_byte_identical_for_any_number_of_jobs() {
    let one = run_quickstart(&["--jobs", "1"]);
    let two = run_quickstart(&["--jobs", "2"]);
    let again = run_quickstart(&["--jobs", "2"]);
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
    let default = run_quickstart(&["--jobs", "2"]);
    let other = run_quickstart(&["--jobs", "2", "--seed", "7"]);
    assert_ne!(default.0, other.0);
}
