//! Bad input: a clear message naming file, line, column and key; exit code 2; no results written;
//! never a panic.

use super::support::{project_path, statesim};
use statesim::scenario::load_str;
use std::path::Path;
use tempfile::TempDir;

pub const VALID: &str = r#"name = "t"
duration = "10s"

[workload]
sessions_per_second = 10
service_time = "5ms"

[servers]
count = 2

[[topology]]
name = "a"
state = "server"
balancer = { policy = "sticky" }
"#;

/// Writes `text` as a scenario, validates and runs it, and returns stderr of the run.
fn expect_rejected(text: &str, extra: &[&str]) -> String {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let validate = statesim()
        .arg("validate")
        .arg(&file)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(2), "validate should exit 2");
    let run = statesim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "run should exit 2");
    assert!(
        !out.exists(),
        "no results may be written for a bad scenario"
    );
    assert!(
        run.stdout.is_empty(),
        "nothing on stdout for a bad scenario"
    );
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Adds each case's text to the valid scenario (a table after it, a top-level key before its
/// first table) and expects exactly one line of error naming every needle.
fn expect_each_rejected_in_one_line(cases: &[(&str, &[&str])]) {
    for (extra, expected) in cases {
        let text = if extra.starts_with('[') {
            format!("{VALID}\n{extra}\n")
        } else {
            format!("{extra}\n{VALID}")
        };
        let stderr = expect_rejected(&text, &[]);
        for needle in *expected {
            assert!(
                stderr.contains(needle),
                "{extra}: {needle:?} not in\n{stderr}"
            );
        }
        assert_eq!(
            stderr.lines().count(),
            1,
            "{extra}: one problem, one line:\n{stderr}"
        );
    }
}

fn with(line_replacement: (&str, &str)) -> String {
    assert!(VALID.contains(line_replacement.0));
    VALID.replace(line_replacement.0, line_replacement.1)
}

#[test]
fn the_base_scenario_of_these_tests_is_valid() {
    load_str(VALID, "valid.toml", Path::new("."), &[]).unwrap();
}

#[test]
fn unknown_keys_name_their_place() {
    let stderr = expect_rejected(&with(("count = 2", "count = 2\nwokers = 4")), &[]);
    assert!(stderr.contains("bad.toml:10:1"), "{stderr}");
    assert!(
        stderr.contains("servers.wokers") && stderr.contains("unknown field"),
        "{stderr}"
    );
}

#[test]
fn wrong_types_name_the_key_and_the_expectation() {
    let stderr = expect_rejected(&with(("count = 2", "count = \"two\"")), &[]);
    assert!(
        stderr.contains("bad.toml:9:1") && stderr.contains("`servers.count`"),
        "{stderr}"
    );
    assert!(stderr.contains("u32"), "{stderr}");
}

#[test]
fn negative_and_nan_rates_are_rejected() {
    for bad in ["-10", "nan", "0", "inf"] {
        let stderr = expect_rejected(
            &with((
                "sessions_per_second = 10",
                &format!("sessions_per_second = {bad}"),
            )),
            &[],
        );
        assert!(
            stderr.contains("bad.toml:5:1") && stderr.contains("workload.sessions_per_second"),
            "{stderr}"
        );
    }
}

#[test]
fn zero_servers_are_rejected() {
    let stderr = expect_rejected(&with(("count = 2", "count = 0")), &[]);
    assert!(
        stderr.contains("bad.toml:9:1: `servers.count`: a topology needs at least one server"),
        "{stderr}"
    );
}

#[test]
fn p99_below_p50_is_rejected() {
    let stderr = expect_rejected(
        &with((
            "service_time = \"5ms\"",
            "service_time = { dist = \"lognormal\", p50 = \"10ms\", p99 = \"5ms\" }",
        )),
        &[],
    );
    assert!(
        stderr.contains("bad.toml:6:52") && stderr.contains("workload.service_time.p99"),
        "{stderr}"
    );
    assert!(stderr.contains("p99 must be greater than p50"), "{stderr}");
}

#[test]
fn a_fault_on_a_server_that_does_not_exist_is_rejected() {
    let text = format!("{VALID}\n[[fault]]\nkind = \"crash\"\nat = \"5s\"\nserver = 2\n");
    let stderr = expect_rejected(&text, &[]);
    assert!(
        stderr.contains("bad.toml:19:1") && stderr.contains("`fault[0].server`"),
        "{stderr}"
    );
    assert!(stderr.contains("out of range"), "{stderr}");
}

#[test]
fn bad_durations_and_distributions_explain_the_format() {
    let stderr = expect_rejected(
        &with(("duration = \"10s\"", "duration = \"10 parsecs\"")),
        &[],
    );
    assert!(
        stderr.contains("bad.toml:2:1") && stderr.contains("invalid duration"),
        "{stderr}"
    );
    let stderr = expect_rejected(&with(("service_time = \"5ms\"", "service_time = 5")), &[]);
    assert!(stderr.contains("needs a unit"), "{stderr}");
    let stderr = expect_rejected(
        &with((
            "service_time = \"5ms\"",
            "service_time = { dist = \"normal\", mean = \"5ms\" }",
        )),
        &[],
    );
    assert!(
        stderr.contains("unknown distribution \"normal\""),
        "{stderr}"
    );
    let stderr = expect_rejected(
        &with((
            "service_time = \"5ms\"",
            "service_time = { dist = \"exponential\", mean = \"5ms\", sd = 2 }",
        )),
        &[],
    );
    assert!(
        stderr.contains("workload.service_time.sd") && stderr.contains("unknown parameter"),
        "{stderr}"
    );
}

#[test]
fn several_problems_are_reported_together_in_reading_order() {
    let text = with(("count = 2", "count = 0\nworkers = 0"))
        .replace("sessions_per_second = 10", "sessions_per_second = -1");
    let stderr = expect_rejected(&text, &["--set", "servers.queue_limit=-3"]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "serde stops at the first type error: {stderr}"
    );
    let stderr = expect_rejected(&text, &[]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].contains(":5:1: `workload.sessions_per_second`"),
        "{stderr}"
    );
    assert!(lines[1].contains(":9:1: `servers.count`"), "{stderr}");
    assert!(lines[2].contains(":10:1: `servers.workers`"), "{stderr}");
    assert!(lines.iter().all(|l| l.starts_with("error: ")), "{stderr}");
}

#[test]
fn syntax_errors_point_at_the_line() {
    let stderr = expect_rejected(&with(("count = 2", "count = = 2")), &[]);
    assert!(
        stderr.contains("bad.toml:9:") && stderr.contains("invalid TOML"),
        "{stderr}"
    );
}

#[test]
fn bad_overrides_name_the_flag() {
    let stderr = expect_rejected(VALID, &["--set", "servers.count=0"]);
    assert!(
        stderr.contains("--set servers.count=0") && stderr.contains("at least one server"),
        "{stderr}"
    );
    let stderr = expect_rejected(VALID, &["--set", "topology.nope.session_bytes=1"]);
    assert!(stderr.contains("no element named \"nope\""), "{stderr}");
    let stderr = expect_rejected(VALID, &["--set", "servers.count"]);
    assert!(stderr.contains("KEY=VALUE"), "{stderr}");
}

#[test]
fn keys_that_do_not_fit_the_state_are_rejected() {
    let stderr = expect_rejected(
        &with((
            "state = \"server\"",
            "state = \"server\"\ntoken_bytes = 100",
        )),
        &[],
    );
    assert!(
        stderr.contains("topology[0].token_bytes") && stderr.contains("does not apply"),
        "{stderr}"
    );
}

#[test]
fn missing_files_are_errors_not_panics() {
    let run = statesim()
        .args(["run", "no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("cannot read scenario no/such/file.toml")
    );
    let stderr = expect_rejected(
        &with((
            "service_time = \"5ms\"",
            "service_time = { dist = \"empirical\", file = \"missing.csv\" }",
        )),
        &[],
    );
    assert!(
        stderr.contains("workload.service_time.file") && stderr.contains("missing.csv"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = statesim().args(["run", "--jobs", "0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = statesim().args(["frobnicate"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    // A request log comes from one whole run: not from a check, not from a shard.
    for args in [
        &["check", "--request-log", "x.csv"][..],
        &["run", "--shard", "0/2", "--request-log", "x.csv"][..],
    ] {
        let output = statesim().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("cannot be combined with"), "{stderr}");
    }
}

/// Deterministic mutations of the bundled scenarios must never panic: they load or are rejected.
#[test]
fn mutated_scenarios_never_panic() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(2024);
    let base = std::fs::read_to_string(project_path("scenarios/example.toml")).unwrap();
    let replacements = [
        "-1",
        "0",
        "nan",
        "inf",
        "1e308",
        "\"\"",
        "\"0\"",
        "{}",
        "[]",
        "\"1h\"",
        "true",
        "18446744073709551615",
    ];
    let lines: Vec<&str> = base.lines().collect();
    let mut loaded = 0;
    for _ in 0..400 {
        let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..rng.random_range(1..4) {
            let index = rng.random_range(0..mutated.len());
            let line = mutated[index].clone();
            mutated[index] = match (line.split_once('='), rng.random_range(0..3)) {
                (Some((key, _)), 0 | 1) => format!(
                    "{key}= {}",
                    replacements[rng.random_range(0..replacements.len())]
                ),
                _ => String::new(),
            };
        }
        let text = mutated.join("\n");
        if let Ok(mut scenario) = load_str(&text, "mutated.toml", &project_path("scenarios"), &[]) {
            loaded += 1;
            // Keep the run short: the point is that the model accepts whatever validation accepts.
            scenario.duration = statesim::engine::SimTime::from_secs(2).min(scenario.duration);
            scenario.warmup = statesim::engine::SimTime::ZERO;
            scenario.faults.retain(|f| f.at() < scenario.duration);
            if let statesim::scenario::Arrivals::Constant {
                sessions_per_second,
            } = &mut scenario.workload.arrivals
            {
                *sessions_per_second = sessions_per_second.min(1000.0);
            }
            super::support::simulate(&scenario);
        }
    }
    assert!(
        loaded > 20,
        "the mutations should leave some scenarios valid ({loaded})"
    );
}

#[test]
fn new_keys_reject_bad_values_with_their_place() {
    let cases: [(&str, &[&str]); 6] = [
        (
            "warmup = \"sometimes\"",
            &["bad.toml:1:", "`warmup`", "(or \"auto\" to detect it)"],
        ),
        (
            "[sweep]\nservers.count = 5",
            &["`sweep.servers.count`", "expected a list"],
        ),
        (
            "[sweep]\nzip = true\nservers.count = [1, 2]\nworkload.sessions_per_second = [1]",
            &["`sweep.zip`", "as many values"],
        ),
        (
            "[slo]\nlatency_p99 = { max = 1 }",
            &["`slo.latency_p99`", "latency_p99_ms"],
        ),
        (
            "[[expect]]\ntopology = \"nope\"\nmetric = \"failed\"\nmax = 0",
            &["`expect[0].topology`", "no topology is named \"nope\""],
        ),
        (
            "[[topology]]\nname = \"s\"\nstate = \"store\"\nstore = { nodes = 0 }",
            &["`topology[1].store.nodes`", "between 1 and 1000000"],
        ),
    ];
    expect_each_rejected_in_one_line(&cases);
}

#[test]
fn fault_tolerance_keys_reject_bad_values_with_their_place() {
    let cases: [(&str, &[&str]); 13] = [
        (
            "[client]\nretry_budget = -0.5",
            &["`client.retry_budget`", "non-negative"],
        ),
        (
            "[client]\nbackoff = { base = \"2s\", cap = \"1s\" }",
            &["`client.backoff.cap`", "at least the base"],
        ),
        (
            "[balancer.health_check]\ntimeout = \"0s\"",
            &["`balancer.health_check.timeout`", "greater than zero"],
        ),
        (
            "[[fault]]\nkind = \"hang\"\nat = \"1s\"\nserver = 0",
            &["`fault[0].kind`", "set client.timeout"],
        ),
        (
            "[[topology]]\nname = \"b\"\nstate = \"server\"\nreplication = \"sync\"\nreplicas = 2",
            &["`topology[1].replicas`", "need at least 3 servers"],
        ),
        (
            "[[topology]]\nname = \"c\"\nstate = \"token\"\ncache = { capacity = 10 }",
            &["`topology[1].cache`", "does not apply"],
        ),
        (
            "[[topology]]\nname = \"s\"\nstate = \"store\"\n[[fault]]\nkind = \"store_outage\"\nat = \"1s\"\nduration = \"2s\"\nfailover = \"5s\"",
            &["`fault[0].failover`", "at most the duration"],
        ),
        (
            "[autoscale]\ntarget_utilization = 1.5\nmin = 1\nmax = 4",
            &["`autoscale.target_utilization`", "(0, 1]"],
        ),
        (
            "[client]\nmax_attempts = 0",
            &["`client.max_attempts`", "between 1"],
        ),
        (
            "[[fault]]\nkind = \"random_crashes\"\nmtbf = \"1us\"\nmttr = \"1s\"",
            &["`fault[0].mtbf`", "at least 1s"],
        ),
        (
            "[[fault]]\nkind = \"scale\"\nat = \"1s\"\ncount = 0",
            &["`fault[0].count`", "between 1 and 100000"],
        ),
        ("bucket = \"0s\"", &["`bucket`", "longer than zero"]),
        (
            "[[fault]]\nkind = \"explode\"\nat = \"1s\"",
            &[
                "`fault[0].kind`",
                "unknown variant `explode`",
                "random_crashes",
            ],
        ),
    ];
    expect_each_rejected_in_one_line(&cases);
}

/// Changing traffic is validated like everything else: a bad schedule, spike, day or closed
/// loop names its key and place, and nothing runs.
#[test]
fn traffic_keys_reject_bad_values_with_their_place() {
    let workload = |lines: &str| with(("sessions_per_second = 10", lines));
    let cases: [(String, &[&str]); 11] = [
        (
            workload(
                "schedule = [{ at = \"5s\", sessions_per_second = 10 }, { at = \"2s\", sessions_per_second = 20 }]",
            ),
            &[
                "bad.toml:5:56:",
                "`workload.schedule[1].at`",
                "time order: 2s comes after 5s",
            ],
        ),
        (
            workload("schedule = [{ at = \"0s\", sessions_per_second = -1 }]"),
            &[
                "`workload.schedule[0].sessions_per_second`",
                "at least 0, got -1",
            ],
        ),
        (
            workload(
                "sessions_per_second = 10\nspike = { at = \"8s\", duration = \"5s\", factor = 3 }",
            ),
            &[
                "`workload.spike.duration`",
                "ends at 13s, after the run (duration = 10s)",
            ],
        ),
        (
            workload("sessions_per_second = 10\nusers = 5"),
            &[
                "`workload.users`",
                "cannot be combined with workload.sessions_per_second",
            ],
        ),
        (
            workload("sessions_per_second = 10\nbetween_sessions = \"1s\""),
            &["`workload.between_sessions`", "only to a closed loop"],
        ),
        (
            workload("users = 0"),
            &["`workload.users`", "between 1 and 10000000"],
        ),
        (
            workload("diurnal = { trough = 50, peak = 10, peak_at = \"1s\" }"),
            &["`workload.diurnal.peak`", "at least the trough (50)"],
        ),
        (
            workload("schedule = [{ at = \"0s\", sessions_per_second = 0 }]"),
            &["`workload`", "starts no session"],
        ),
        (
            workload("diurnal = { trough = 1, peak = 2, peak_at = \"0s\", period = \"1s\" }")
                .replace("duration = \"10s\"", "duration = \"24h\""),
            &["`workload.diurnal.period`", "is too short for this run"],
        ),
        (
            workload("trace = { file = \"t.csv\" }\nthink_time = \"1s\""),
            &["`workload.think_time`", "comes from the replayed trace"],
        ),
        (
            workload("on_session_lost = \"abandon\""),
            &["`workload`", "says nowhere how sessions start"],
        ),
    ];
    for (text, expected) in &cases {
        let stderr = expect_rejected(text, &[]);
        for needle in *expected {
            assert!(stderr.contains(needle), "{needle:?} not in\n{stderr}");
        }
    }
}

#[test]
fn gray_failures_and_outlier_ejection_refuse_impossible_values() {
    expect_each_rejected_in_one_line(&[
        (
            "[[fault]]\nkind = \"slow\"\nat = \"1s\"\nserver = 0\nfactor = 0",
            &["`fault[0].factor`", "(0, 1e6]", "got 0"],
        ),
        (
            "[[fault]]\nkind = \"slow\"\nat = \"1s\"\nserver = 0\nfactor = -2",
            &["`fault[0].factor`", "got -2"],
        ),
        (
            "[[fault]]\nkind = \"slow\"\nat = \"1s\"\nserver = 5\nfactor = 5",
            &["`fault[0].server`", "out of range"],
        ),
        (
            "[[fault]]\nkind = \"pauses\"\nevery = \"1s\"\npause = \"2s\"",
            &["`fault[0].pause`", "shorter than its period"],
        ),
        (
            "[[fault]]\nkind = \"pauses\"\nserver = 9\nevery = \"1s\"\npause = \"10ms\"",
            &["`fault[0].server`", "out of range"],
        ),
        (
            "[[fault]]\nkind = \"pauses\"\nevery = \"1s\"\npause = \"10ms\"\n\
             [[fault]]\nkind = \"pauses\"\nserver = 1\nevery = \"2s\"\npause = \"10ms\"",
            &["`fault[1].server`", "already covers this server"],
        ),
        (
            "[[fault]]\nkind = \"slow\"\nat = \"1s\"\nserver = 0\nfactor = 2\nduration = \"0s\"",
            &["`fault[0].duration`", "greater than zero"],
        ),
        (
            "[balancer]\noutlier = { max_ejected_percent = 150 }",
            &["`balancer.outlier.max_ejected_percent`", "[0, 100]"],
        ),
        (
            "[balancer]\noutlier = { consecutive_failures = 0 }",
            &["`balancer.outlier.consecutive_failures`", "at least 1"],
        ),
    ]);
}

#[test]
fn shards_refuse_impossible_values() {
    let store = "[[topology]]\nname = \"s\"\nstate = \"store\"\nstore = { shards = 4 }";
    expect_each_rejected_in_one_line(&[
        (
            "[[topology]]\nname = \"s\"\nstate = \"store\"\nstore = { shards = 0 }",
            &["`topology[1].store.shards`", "between 1 and 16384"],
        ),
        (
            "[[topology]]\nname = \"s\"\nstate = \"store\"\nstore = { shards = 2, hot_share = 1.5 }",
            &["`topology[1].store.hot_share`", "between 0 and 1"],
        ),
        (
            &format!(
                "{store}\n[[fault]]\nkind = \"store_outage\"\nat = \"1s\"\nduration = \"1s\"\nshard = 4"
            ),
            &["`fault[0].shard`", "out of range", "4 shards"],
        ),
    ]);
}

#[test]
fn partitions_name_their_side_and_need_a_timeout_for_the_balancer() {
    expect_each_rejected_in_one_line(&[
        (
            "[[fault]]\nkind = \"partition\"\nat = \"1s\"\nserver = 0\nfrom = \"dns\"",
            &[
                "`fault[0].from`",
                "unknown variant `dns`",
                "`store`, `balancer`, `peers`",
            ],
        ),
        (
            "[[fault]]\nkind = \"partition\"\nat = \"1s\"\nserver = 0\nfrom = \"balancer\"",
            &["`fault[0].from`", "set client.timeout"],
        ),
        (
            "[[fault]]\nkind = \"partition\"\nat = \"1s\"\nserver = 0\nfrom = \"store\"",
            &["`fault[0].from`", "no topology has a store"],
        ),
        (
            "[[fault]]\nkind = \"partition\"\nat = \"1s\"\nserver = 1\nfrom = \"peers\"",
            &["`fault[0].from`", "no topology has replica peers"],
        ),
    ]);
}

#[test]
fn zones_refuse_impossible_values() {
    let topology = |keys: &str| format!("[[topology]]\nname = \"z\"\nstate = \"server\"\n{keys}");
    expect_each_rejected_in_one_line(&[
        (
            &topology("servers = { zones = 0 }"),
            &[
                "`topology[1].servers.zones`",
                "a number of zones (1 to 64)",
                "got 0",
            ],
        ),
        (
            &topology("servers = { zones = [0, 1, 2] }"),
            &[
                "`topology[1].servers.zones`",
                "2 servers need 2 entries, got 3",
            ],
        ),
        (
            &topology("servers = { zones = [0, -1] }"),
            &[
                "`topology[1].servers.zones`",
                "a number from 0 to 63, got -1",
            ],
        ),
        (
            &topology("servers = { zones = \"two\" }"),
            &["`topology[1].servers.zones`", "got a string"],
        ),
        (
            "[[fault]]\nkind = \"zone_outage\"\nat = \"1s\"\nzone = 1",
            &[
                "`fault[0].zone`",
                "out of range",
                "has one zone (0); set servers.zones",
            ],
        ),
        (
            &format!(
                "{}\n[[fault]]\nkind = \"zone_outage\"\nat = \"1s\"\nzone = 0\nduration = \"5s\"\nstore_failover = \"6s\"",
                topology("servers = { zones = 2 }")
            ),
            &["`fault[0].store_failover`", "at most the duration"],
        ),
        (
            &topology("replication = \"sync\"\nreplica_placement = \"other_zone\""),
            &["`topology[1].replica_placement`", "at least two zones"],
        ),
        (
            &topology(
                "replication = \"sync\"\nreplica_placement = \"same_zone\"\nservers = { zones = 2 }",
            ),
            &[
                "`topology[1].replica_placement`",
                "in the same zone",
                "only 0",
            ],
        ),
        (
            &topology("replica_placement = \"same_zone\""),
            &["`topology[1].replica_placement`"],
        ),
        (
            &topology("replication = \"sync\"\nreplica_placement = \"far\""),
            &[
                "`topology[1].replica_placement`",
                "unknown variant `far`",
                "`other_zone`",
            ],
        ),
        (
            &topology("replication = \"sync\"\nreplicas = 17\nservers = { count = 20 }"),
            &["`topology[1].replicas`", "1 to 16 replicas", "got 17"],
        ),
        (
            "[cost]\ncross_zone_per_gb = -1",
            &["`cost.cross_zone_per_gb`", "must be a price"],
        ),
    ]);
}
