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
    (files_in(&run.out("")), run.stdout)
}

/// Every file in `dir`: name and bytes, in name order.
fn files_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
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

/// The changing arrival processes keep the promise: a spike on a schedule, a closed loop and a
/// replayed log each write the same bytes for `--jobs 1` and `--jobs 2`.
#[test]
fn schedules_closed_loops_and_replays_are_identical_for_any_jobs() {
    let fleet = "[servers]\ncount = 3\nworkers = 2\n[[topology]]\nname = \"sticky\"\nstate = \"server\"\nbalancer = { policy = \"sticky\" }\n[[topology]]\nname = \"token\"\nstate = \"token\"\n";
    let workloads = [
        "schedule = [{ at = \"0s\", sessions_per_second = 20 }, { at = \"30s\", sessions_per_second = 80 }]\nspike = { at = \"40s\", duration = \"10s\", factor = 3 }\nrequests_per_session = 3\nthink_time = { dist = \"exponential\", mean = \"1s\" }",
        "users = 200\nbetween_sessions = { dist = \"exponential\", mean = \"2s\" }\nrequests_per_session = 3\nthink_time = { dist = \"exponential\", mean = \"1s\" }",
        "trace = { file = \"log.csv\" }",
    ];
    let log = "timestamp,session\n0.5,a\n0.7,b\n1.5,a\n2.0,c\n2.1,b\n4.0,a\n9.5,c\n";
    for workload in workloads {
        let text = format!(
            "name = \"d\"\nduration = \"60s\"\nreplications = 3\n[workload]\n{workload}\nservice_time = {{ dist = \"exponential\", mean = \"20ms\" }}\n{fleet}"
        );
        let dir = super::support::folder_with(&[("s.toml", &text), ("log.csv", log)]);
        let run = |jobs: &str| {
            let output = super::support::statesim()
                .current_dir(dir.path())
                .args(["run", "s.toml", "--quiet", "--jobs", jobs, "--out", jobs])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            (files_in(&dir.path().join(jobs)), output.stdout)
        };
        let (one, two) = (run("1"), run("2"));
        assert!(!one.0.is_empty());
        assert!(one == two, "{workload}: --jobs 1 and --jobs 2 differ");
    }
}
