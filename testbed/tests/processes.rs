//! Processes the testbed starts are stopped on a failure path too: a balancer that dies at
//! start leaves no backend behind.

use std::path::Path;
use std::process::Command;

const SCENARIO: &str = r#"
name = "stops"
duration = "10s"
[workload]
sessions_per_second = 5
service_time = "5ms"
[servers]
count = 3
workers = 2
[[topology]]
name = "memory"
state = "server"
balancer = { policy = "sticky" }
"#;

/// PIDs of running processes whose command line mentions `text` (zombies excluded).
fn processes_mentioning(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(text) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

#[test]
fn a_balancer_that_fails_to_start_leaves_no_backend_running() {
    let dir = std::env::temp_dir().join(format!("testbed-stops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("stops.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    // `false` answers `-v` (so it passes for an installed HAProxy) and exits at once when started.
    let output = Command::new(env!("CARGO_BIN_EXE_statesim-testbed"))
        .arg("run")
        .arg(&scenario)
        .args(["--haproxy", "false", "--runs", "1", "--quiet", "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("haproxy exited"), "{stderr}");
    // The three backends were started (their logs exist) and are gone.
    let work = dir.join("out/work/memory-0");
    for index in 0..3 {
        assert!(Path::new(&work.join(format!("backend-{index}.log"))).exists());
    }
    let left = processes_mentioning(&scenario.display().to_string());
    assert!(left.is_empty(), "still running: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_scenario_outside_the_subset_is_refused_before_anything_starts() {
    let dir = std::env::temp_dir().join(format!("testbed-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("refused.toml");
    let text =
        format!("{SCENARIO}[[fault]]\nkind = \"random_crashes\"\nmtbf = \"1m\"\nmttr = \"5s\"\n");
    std::fs::write(&scenario, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_statesim-testbed"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the testbed cannot play fault[0] (kind `random_crashes`)"),
        "{stderr}"
    );
    assert!(!dir.join("out").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
