//! Scenario files are untrusted input (a pull request's file runs in someone's CI). A catalogue
//! of hostile and broken inputs, one per way an adversary or an accident can hurt a CI gate:
//! reading files it must not, running forever, exhausting memory, damaging results, panicking,
//! running nonsense silently, and messages that lose their place. Each case must end with its
//! documented exit code, name its place and key, write nothing, and never panic; the messages
//! together are a reviewed snapshot (`snapshots/`), so their wording changes only on purpose.

use super::support::{project_path, statesim};
use std::path::Path;
use tempfile::TempDir;

/// The error tests' valid scenario with a second topology that has a store.
fn valid() -> String {
    format!(
        "{}\n[[topology]]\nname = \"b\"\nstate = \"store\"\n",
        super::errors::VALID
    )
}

/// One bad input: the scenario written as `s.toml`, other files beside it, the command line
/// (run in the scenario's folder), the exit code, and what its message must contain.
struct Case {
    name: &'static str,
    scenario: String,
    files: Vec<(&'static str, Vec<u8>)>,
    args: Vec<String>,
    code: i32,
    needles: Vec<&'static str>,
}

fn case(
    name: &'static str,
    scenario: String,
    args: &[&str],
    code: i32,
    needles: &[&'static str],
) -> Case {
    Case {
        name,
        scenario,
        files: Vec::new(),
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        needles: needles.to_vec(),
    }
}

/// The valid scenario with `extra`: a table after it, a top-level key before its first table.
fn with(extra: &str) -> String {
    if extra.starts_with('[') {
        format!("{}\n{extra}\n", valid())
    } else {
        format!("{extra}\n{}", valid())
    }
}

const RUN: &[&str] = &["run", "s.toml", "--out", "out"];

fn run_with(extra: &[&str]) -> Vec<&'static str> {
    let mut args: Vec<&'static str> = RUN.to_vec();
    for arg in extra {
        args.push(Box::leak(arg.to_string().into_boxed_str()));
    }
    args
}

fn empirical(file: &str) -> String {
    valid().replace(
        "service_time = \"5ms\"",
        &format!("service_time = {{ dist = \"empirical\", file = \"{file}\", column = \"ms\" }}"),
    )
}

/// A shard file as `run --shard` writes it, with one line replaced.
fn forged_shard(dir: &Path, replace: (&str, &str)) -> Vec<u8> {
    let out = dir.join("shards");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_statesim"))
        .current_dir(dir)
        .args(["run", "s.toml", "--quiet", "--shard", "0/1", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(out.join("shard-0-of-1.shard")).unwrap();
    let forged: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with(replace.0) {
                replace.1.to_string()
            } else {
                line.to_string()
            }
        })
        .collect();
    std::fs::remove_dir_all(&out).unwrap();
    (forged.join("\n") + "\n").into_bytes()
}

/// An HDR V2 header (cookie, payload length, offset, digits, lowest, highest, ratio) whose
/// payload length claims 4 GB.
const FORGED_HISTOGRAM: &str = concat!(
    "histogram 0 0 ",
    "1c849303",
    "ffffffff",
    "00000000",
    "00000003",
    "0000000000000001",
    "0000000000000800",
    "3ff0000000000000"
);

fn catalogue(dir: &Path) -> Vec<Case> {
    let huge_header = format!("{}\n1\n", "x,".repeat(25_000) + "y");
    let mut cases = vec![
        // Files a scenario may read.
        case("empirical file: an absolute path to the environment", empirical("/proc/self/environ"), RUN, 2, &["`workload.service_time.file`", "outside the scenario's folder"]),
        case("empirical file: /etc/passwd", empirical("/etc/passwd"), RUN, 2, &["outside the scenario's folder"]),
        case("empirical file: ../ out of the folder", empirical("../secret.csv"), RUN, 2, &["`workload.service_time.file`"]),
        case("empirical file: /dev/zero", empirical("/dev/zero"), RUN, 2, &["outside the scenario's folder"]),
        case("empirical file: a symbolic link out of the folder", empirical("link.csv"), RUN, 2, &["outside the scenario's folder"]),
        case("empirical file: a folder", empirical("data"), RUN, 2, &["not a regular file"]),
        case("empirical file: a 50 KB header without the column", empirical("wide.csv"), RUN, 2, &["has no column \"ms\"", "and 24991 more"]),
        case("empirical file: control characters in the header", empirical("ansi.csv"), RUN, 2, &["\\u{1b}[31m"]),
        case("empirical file: larger than 64 MiB", empirical("big.csv"), RUN, 2, &["larger than 64 MiB"]),
        case("empirical file: missing", empirical("missing.csv"), RUN, 2, &["cannot read \"missing.csv\""]),
        // Work that would never finish.
        case("probe interval of 1ns", valid().to_string(), &run_with(&["--set", "balancer.health_check.interval=1ns"]), 2, &["`balancer.health_check.interval`", "at least 1ms"]),
        case("autoscaler period of 1ns", with("[autoscale]\ntarget_utilization = 0.5\nmin = 1\nmax = 4\nsync_period = \"1ns\""), RUN, 2, &["`autoscale.sync_period`", "at least 1ms"]),
        case("a run of 4,000,000 hours", valid().to_string(), &run_with(&["--set", "duration=4000000h", "--set", "bucket=4000h"]), 2, &["--max-events"]),
        case("a billion requests per session", valid().replace("service_time = \"5ms\"", "service_time = \"0s\"\nrequests_per_session = 1000000000"), RUN, 2, &["--max-events"]),
        case("100,000 replications", with("replications = 100000").replace("duration = \"10s\"", "duration = \"10m\""), RUN, 2, &["200000 runs", "--max-events"]),
        case("--jobs 100000", valid().to_string(), &run_with(&["--jobs", "100000"]), 2, &["1..=1024"]),
        case("--replications beyond the cap", valid().to_string(), &run_with(&["--replications", "1000000"]), 2, &["--replications"]),
        case("time standing still", valid().replace("service_time = \"5ms\"", "service_time = \"0s\"\nrequests_per_session = 10000000").replace("sessions_per_second = 10", "sessions_per_second = 0.2"), &run_with(&["--set", "topology.b.state=none"]), 2, &["simulated time stood still"]),
        case("--time-limit", valid().replace("duration = \"10s\"", "duration = \"1h\""), &run_with(&["--time-limit", "1ms"]), 3, &["--time-limit"]),
        case("--stop-on-saturation on a run twice past its capacity", valid().replace("sessions_per_second = 10", "sessions_per_second = 800").replace("duration = \"10s\"", "duration = \"10m\""), &run_with(&["--stop-on-saturation"]), 2, &["is saturated", "while every worker was busy", "--stop-on-saturation"]),
        // Memory.
        case("an unbounded queue at run time", valid().replace("sessions_per_second = 10", "sessions_per_second = 1000000").replace("duration = \"10s\"", "duration = \"60s\""), &run_with(&["--max-memory", "64MiB", "--set", "topology.b.state=none"]), 2, &["overloaded at this load", "--max-memory"]),
        case("a sweep of 10^5 points in the file", with("[sweep]\n\"workload.sessions_per_second\" = \"1..100000:1\""), RUN, 2, &["more than 10000 values"]),
        case("two --sweep of 1000 points", valid().to_string(), &run_with(&["--sweep", "servers.count=1..1000:1", "--sweep", "workload.sessions_per_second=1..1000:1"]), 2, &["--sweep workload.sessions_per_second=1..1000:1", "1000 x 1000"]),
        case("1ms buckets over 40 replications", valid().replace("duration = \"10s\"", "duration = \"10m\""), &run_with(&["--bucket", "1ms", "--replications", "40"]), 2, &["timeseries rows", "--max-memory"]),
        case("random crashes every millisecond", with("[[fault]]\nkind = \"random_crashes\"\nmtbf = \"1ms\"\nmttr = \"1ms\""), RUN, 2, &["`fault[0].mtbf`", "at least 1s"]),
        case("20,000 topologies", format!("{}{}", valid(), (0..20_000).map(|i| format!("[[topology]]\nname = \"x{i}\"\nstate = \"none\"\n")).collect::<String>()), RUN, 2, &["at most 1000"]),
        case("a scenario file larger than 16 MiB", valid().to_string(), &["run", "huge.toml", "--out", "out"], 2, &["larger than 16 MiB"]),
        // Results and outputs.
        case("--out is a file", valid().to_string(), &["run", "s.toml", "--out", "afile"], 2, &["cannot write results to afile", "not a folder"]),
        case("--out below a file", valid().to_string(), &["run", "s.toml", "--out", "afile/out"], 2, &["cannot write results to afile/out"]),
        case("--junit where it cannot be written", with("[[expect]]\ntopology = \"*\"\nmetric = \"requests\"\nmin = 0"), &["check", "s.toml", "--out", "out", "--junit", "/proc/junit.xml"], 2, &["/proc/junit.xml"]),
        case("--markdown is a folder", with("[[expect]]\ntopology = \"*\"\nmetric = \"requests\"\nmin = 0"), &["check", "s.toml", "--out", "out", "--markdown", "data"], 2, &["cannot write results to data"]),
        case("--tolerance without --baseline", with("[[expect]]\ntopology = \"*\"\nmetric = \"requests\"\nmin = 0"), &["check", "s.toml", "--out", "out", "--tolerance", "*=0.1"], 2, &["--baseline"]),
        case("a truncated baseline", valid().to_string(), &["check", "s.toml", "--out", "out", "--baseline", "cut"], 2, &["cut short"]),
        case("a baseline without a topology column", valid().to_string(), &["check", "s.toml", "--out", "out", "--baseline", "nocolumn"], 2, &["no column topology"]),
        // Panics and gate bypass.
        case("merge: a shard of 2^64 - 1", valid().to_string(), &["merge", "forged-count.shard", "--out", "out"], 2, &["each of 0..18446744073709551615 is needed"]),
        case("merge: a histogram claiming 4 GB", valid().to_string(), &["merge", "forged-histogram.shard", "--out", "out"], 2, &["not a histogram statesim writes"]),
        case("merge: a run with too few figures", valid().to_string(), &["merge", "forged-run.shard", "--out", "out"], 2, &["figures"]),
        case("merge: not a shard file", valid().to_string(), &["merge", "s.toml", "--out", "out"], 2, &["not a statesim shard file"]),
        case("[[expect]] max = nan", with("[[expect]]\ntopology = \"*\"\nmetric = \"requests\"\nmax = nan"), RUN, 2, &["`expect[0].max`", "NaN bound never fails"]),
        case("[[expect]] min = inf", with("[[expect]]\ntopology = \"*\"\nmetric = \"requests\"\nmin = -inf"), RUN, 2, &["`expect[0].min`", "finite number, got -inf"]),
        case("[slo] equals = nan", with("[slo]\nsessions_lost = { equals = nan }"), RUN, 2, &["`slo.sessions_lost.equals`"]),
        case("a NaN rate", valid().replace("sessions_per_second = 10", "sessions_per_second = nan"), RUN, 2, &["`workload.sessions_per_second`"]),
        case("a NaN memory limit", valid().replace("count = 2", "count = 2\nmemory_mb = nan"), RUN, 2, &["`servers.memory_mb`"]),
        // Silent nonsense.
        case("a geometric service time", valid().replace("service_time = \"5ms\"", "service_time = { dist = \"geometric\", mean = 3 }"), RUN, 2, &["`workload.service_time.dist`", "geometric counts trials"]),
        case("half a request per session", valid().replace("service_time = \"5ms\"", "service_time = \"5ms\"\nrequests_per_session = 0.5"), RUN, 2, &["`workload.requests_per_session`", "whole number"]),
        case("zero requests per session", valid().replace("service_time = \"5ms\"", "service_time = \"5ms\"\nrequests_per_session = 0"), RUN, 2, &["`workload.requests_per_session`"]),
        case("sessions of 1e308 bytes", valid().replace("state = \"store\"", "state = \"store\"\nsession_bytes = 1e308"), RUN, 2, &["`topology[1].session_bytes`", "1 TiB"]),
        case("a store outage without a store", valid().replace("state = \"store\"", "state = \"none\"") + "\n[[fault]]\nkind = \"store_outage\"\nat = \"1s\"\nduration = \"1s\"\n", RUN, 2, &["`fault[0].kind`", "no topology has a store"]),
        case("a topology name with a newline and a workflow command", valid().replace("name = \"a\"", "name = \"a\\n::error title=pwned::x\""), RUN, 2, &["`topology[0].name`", "control character", "\\n::error"]),
        case("a topology name with an ANSI escape", valid().replace("name = \"a\"", "name = \"\\u001b[2Ja\""), RUN, 2, &["\\u{1b}[2Ja"]),
        case("a scenario name with a carriage return", valid().replace("name = \"t\"", "name = \"t\\rX\""), RUN, 2, &["`name`", "\\r"]),
        case("a topology name of 500 characters", valid().replace("name = \"a\"", &format!("name = \"{}\"", "a".repeat(500))), RUN, 2, &["at most 100 characters"]),
        case("eleven balancer retries", valid().replace("[servers]", "[balancer]\nretries = 11\n[servers]"), RUN, 2, &["`balancer.retries`", "at most 10"]),
        case("a misspelt retry condition", valid().replace("[servers]", "[balancer]\nretry_on = [\"conect_failure\"]\n[servers]"), RUN, 2, &["`balancer.retry_on[0]`", "did you mean `connect_failure`"]),
        case("retrying on timeout without a server timeout", valid().replace("[servers]", "[balancer]\nretry_on = [\"timeout\"]\n[servers]"), RUN, 2, &["`balancer.retry_on`", "needs balancer.server_timeout"]),
        case("a price of 1e308 an hour", valid().replace("[servers]", "[cost]\nserver_per_hour = 1e308\n[servers]"), RUN, 2, &["`cost.server_per_hour`", "between 0 and 1e9"]),
        case("a duplicated topology name", valid().replace("name = \"b\"", "name = \"a\""), RUN, 2, &["`topology[1].name`", "used twice"]),
        // Messages that keep their place.
        case("an unknown key in [[fault]]", with("[[fault]]\nkind = \"crash\"\nat = \"1s\"\nserver = 0\nrestrt_after = \"2s\""), RUN, 2, &["s.toml:24:1", "`fault[0].restrt_after`", "did you mean `restart_after`"]),
        case("a wrong type in [[fault]]", with("[[fault]]\nkind = \"crash\"\nat = 5\nserver = 0"), RUN, 2, &["s.toml:22:1", "`fault[0].at`", "needs a unit"]),
        case("an unknown fault kind", with("[[fault]]\nkind = \"crsh\""), RUN, 2, &["`fault[0].kind`", "did you mean `crash`"]),
        case("a [[fault]] without a kind", with("[[fault]]\nat = \"1s\""), RUN, 2, &["`fault[0]`", "needs a `kind`"]),
        case("--set of an unknown section", valid().to_string(), &run_with(&["--set", "nosuch.key=1"]), 2, &["--set nosuch.key=1", "unknown field `nosuch`"]),
        case("--set of a fault that does not exist", valid().to_string(), &run_with(&["--set", "fault[3].at=1s"]), 2, &["--set fault[3].at=1s", "array of tables"]),
        case("fault written as a table", with("[fault]\nkind = \"crash\""), RUN, 2, &["`fault`", "array of tables"]),
        case("--set of a topology that does not exist", valid().to_string(), &run_with(&["--set", "topology.aa.state=none"]), 2, &["--set topology.aa.state=none", "did you mean `a`"]),
        case("--set nested too deep", valid().to_string(), &run_with(&["--set", &format!("{}=1", vec!["k"; 40].join("."))]), 2, &["segments"]),
        case("--sweep of an unknown key", valid().to_string(), &run_with(&["--sweep", "servers.cuont=1,2"]), 2, &["sweep point servers.cuont=1", "did you mean `count`"]),
        case("a file that is not UTF-8", "name = \"t\"\ndescription = \"caf\u{e9}\"\n".to_string(), &["run", "latin1.toml", "--out", "out"], 2, &["latin1.toml:2:19", "byte offset 29"]),
        case("an unknown key", valid().replace("count = 2", "cuont = 2"), RUN, 2, &["s.toml:9:1", "did you mean `count`"]),
        case("an unknown policy", valid().replace("\"sticky\"", "\"stiky\""), RUN, 2, &["`topology[0].balancer.policy`", "did you mean `sticky`"]),
        case("an unknown topology in [[expect]]", with("[[expect]]\ntopology = \"bb\"\nmetric = \"requests\"\nmin = 0"), RUN, 2, &["`expect[0].topology`", "did you mean `b`"]),
        case("an unknown metric in [[expect]]", with("[[expect]]\ntopology = \"*\"\nmetric = \"latency_p99_sm\"\nmax = 1"), RUN, 2, &["`expect[0].metric`", "did you mean `latency_p99_ms`"]),
        case("an unknown distribution", valid().replace("service_time = \"5ms\"", "service_time = { dist = \"exponentail\", mean = \"5ms\" }"), RUN, 2, &["did you mean `exponential`"]),
        case("an unknown distribution parameter", valid().replace("service_time = \"5ms\"", "service_time = { dist = \"exponential\", maen = \"5ms\" }"), RUN, 2, &["`workload.service_time.maen`", "did you mean `mean`"]),
        case("every type error in one pass, in file order", "name = \"t\"\nduration = 10\n[workload]\nsessions_per_second = \"x\"\nservice_time = \"5ms\"\n[servers]\nworkers = \"two\"\n[[topology]]\nname = \"a\"\nstate = \"server\"\nbalancer = { policy = \"stiky\" }\n".to_string(), RUN, 2, &["s.toml:2:1", "s.toml:4:1", "s.toml:7:1", "s.toml:11:14"]),
        case("a syntax error", "name = \"t\"\nduration = \n".to_string(), RUN, 2, &["s.toml:2:", "invalid TOML"]),
        case("an empty file", String::new(), RUN, 2, &["missing field `name`"]),
        case("binary garbage", "\u{0}\u{1}\u{2}garbage".to_string(), RUN, 2, &["invalid TOML"]),
    ];
    // The files the cases read, besides the scenario.
    let csv = |text: &str| text.as_bytes().to_vec();
    for case in &mut cases {
        match case.name {
            "empirical file: a 50 KB header without the column" => {
                case.files.push(("wide.csv", csv(&huge_header)))
            }
            "empirical file: control characters in the header" => case
                .files
                .push(("ansi.csv", csv("\u{1b}[31mred,other\n1,2\n"))),
            "a file that is not UTF-8" => case.files.push((
                "latin1.toml",
                b"name = \"t\"\ndescription = \"caf\xe9\"\n".to_vec(),
            )),
            "a truncated baseline" => case
                .files
                .push(("cut/summary.csv", csv("scenario,topology,requests\nt,a,12"))),
            "a baseline without a topology column" => case
                .files
                .push(("nocolumn/summary.csv", csv("scenario,requests\nt,12\n"))),
            "merge: a shard of 2^64 - 1" => case.files.push((
                "forged-count.shard",
                forged_shard(dir, ("shard ", "shard 0 18446744073709551615")),
            )),
            "merge: a histogram claiming 4 GB" => case.files.push((
                "forged-histogram.shard",
                forged_shard(dir, ("histogram 0 0", FORGED_HISTOGRAM)),
            )),
            "merge: a run with too few figures" => case.files.push((
                "forged-run.shard",
                forged_shard(dir, ("run 0 0 0", "run 0 0 0 1.0 2.0")),
            )),
            _ => {}
        }
    }
    cases
}

/// Runs one case in a folder of its own; returns what it printed on stderr, with the folder's
/// path replaced by `<dir>` (for the snapshot).
fn run_case(case: &Case) -> String {
    let temp = TempDir::new().unwrap();
    let dir = temp.path().join("case");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("s.toml"), &case.scenario).unwrap();
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("afile"), "not a folder").unwrap();
    std::fs::write(temp.path().join("secret.csv"), "ms\n1\n").unwrap();
    std::os::unix::fs::symlink(temp.path().join("secret.csv"), dir.join("link.csv")).unwrap();
    // Sparse: the size is real, the disk is not used.
    let big = std::fs::File::create(dir.join("big.csv")).unwrap();
    big.set_len(65 * 1024 * 1024).unwrap();
    let huge = std::fs::File::create(dir.join("huge.toml")).unwrap();
    huge.set_len(17 * 1024 * 1024).unwrap();
    for (name, bytes) in &case.files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let output = statesim()
        .current_dir(&dir)
        .args(&case.args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let name = case.name;
    assert_eq!(
        output.status.code(),
        Some(case.code),
        "{name}: exit code; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{name}: panicked:\n{stderr}");
    assert!(
        output.stdout.is_empty(),
        "{name}: printed results:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!dir.join("out").exists(), "{name}: wrote results");
    let strays: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(strays.is_empty(), "{name}: left {strays:?}");
    for needle in &case.needles {
        assert!(
            stderr.contains(needle),
            "{name}: {needle:?} not in\n{stderr}"
        );
    }
    assert!(
        !stderr.contains('\u{1b}'),
        "{name}: an escape character reached stderr"
    );
    assert!(
        stderr.len() < 4000,
        "{name}: a message of {} bytes",
        stderr.len()
    );
    stderr.replace(&temp.path().display().to_string(), "<dir>")
}

#[test]
fn every_hostile_input_is_refused_with_its_place_and_nothing_written() {
    let scratch = TempDir::new().unwrap();
    std::fs::write(scratch.path().join("s.toml"), valid()).unwrap();
    let cases = catalogue(scratch.path());
    assert!(cases.len() >= 60, "the catalogue has {} cases", cases.len());
    let mut snapshot = String::new();
    for case in &cases {
        let stderr = run_case(case);
        snapshot.push_str(&format!(
            "## {}\n$ statesim {}\nexit {}\n{stderr}\n",
            case.name,
            case.args
                .iter()
                .map(|a| if a.len() > 60 {
                    format!("{}…", &a[..60])
                } else {
                    a.clone()
                })
                .collect::<Vec<_>>()
                .join(" "),
            case.code
        ));
    }
    insta::assert_snapshot!("hostile_inputs", snapshot);
}

/// The folder holds the results folder `out` and nothing else (no staging folder, no partial
/// file).
fn assert_only_results_in(dir: &Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["out".to_string()],
        "stray files beside the results"
    );
}

fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A run of a second or so.
const MM1_SHORT: &[&str] = &[
    "run",
    concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/validation/mm1.toml"),
    "--replications",
    "1",
    "--set",
    "duration=20s",
];

#[test]
fn stdout_to_a_full_disk_is_an_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_statesim"))
        .args(MM1_SHORT)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("out"))
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !dir.path().join("out").exists(),
        "results written although stdout failed"
    );
}

#[test]
fn a_closed_pipe_on_stdout_is_not_an_error() {
    let dir = TempDir::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_statesim"))
        .args(MM1_SHORT)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("out"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is printed
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(dir.path().join("out/summary.csv").exists());
}

#[test]
fn allow_path_lets_a_scenario_read_a_folder_it_names() {
    let temp = TempDir::new().unwrap();
    let (scenarios, data) = (temp.path().join("scenarios"), temp.path().join("data"));
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("observed.csv"), "ms\n4\n5\n6\n").unwrap();
    std::fs::write(scenarios.join("s.toml"), empirical("../data/observed.csv")).unwrap();
    let validate = |extra: &[&str]| {
        statesim()
            .current_dir(&scenarios)
            .args(["validate", "s.toml"])
            .args(extra)
            .output()
            .unwrap()
    };
    assert_eq!(
        validate(&[]).status.code(),
        Some(2),
        "outside its folder without the flag"
    );
    let allowed = validate(&["--allow-path", data.to_str().unwrap()]);
    succeeded(&allowed);
}

#[test]
fn check_never_overwrites_the_baseline_it_judges() {
    let temp = TempDir::new().unwrap();
    let scenario = project_path("scenarios/validation/mm1.toml");
    let baseline = temp.path().join("results/mm1");
    let run = statesim()
        .current_dir(temp.path())
        .args(["run", "--quiet", "--set", "duration=20s", "--out"])
        .arg(&baseline)
        .arg(&scenario)
        .output()
        .unwrap();
    succeeded(&run);
    let before = std::fs::read(baseline.join("summary.csv")).unwrap();
    // A different load: the check fails, and must not write its run over the baseline (the
    // default --out of this scenario is results/mm1, the baseline itself).
    let check = statesim()
        .current_dir(temp.path())
        .args([
            "check",
            "--quiet",
            "--set",
            "duration=20s",
            "--set",
            "workload.sessions_per_second=60",
            "--baseline",
            "results/mm1",
        ])
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("results/mm1-check"), "{stderr}");
    assert_eq!(
        std::fs::read(baseline.join("summary.csv")).unwrap(),
        before,
        "the baseline changed"
    );
    assert!(temp.path().join("results/mm1-check/summary.csv").exists());
}

#[test]
fn a_new_run_replaces_every_file_of_the_last_and_leaves_no_stray() {
    let temp = TempDir::new().unwrap();
    let out = temp.path().join("out");
    let run = |scenario: &str| {
        let output = statesim()
            .args(["run", "--quiet", "--out"])
            .arg(&out)
            .arg(project_path(scenario))
            .output()
            .unwrap();
        succeeded(&output);
    };
    run("scenarios/crash.toml");
    assert!(out.join("faults.csv").exists());
    // A scenario without faults: the crash's faults.csv must not stay beside its summary.
    run("scenarios/validation/mm1.toml");
    assert!(
        !out.join("faults.csv").exists(),
        "a file of the earlier run was left"
    );
    assert_only_results_in(temp.path());
    // A folder that holds the user's own files keeps them.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    run("scenarios/crash.toml");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(out.join("faults.csv").exists());
}

#[test]
fn a_run_killed_while_simulating_leaves_the_earlier_results_untouched() {
    let temp = TempDir::new().unwrap();
    let out = temp.path().join("out");
    let first = statesim()
        .args(MM1_SHORT)
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&first);
    let before = std::fs::read(out.join("summary.csv")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_statesim"))
        .args([
            "run",
            "scenarios/validation/mm1.toml",
            "--replications",
            "1",
        ])
        .args(["--set", "duration=500000s", "--quiet", "--out"])
        .current_dir(project_path("."))
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(out.join("summary.csv")).unwrap(), before);
    assert_only_results_in(temp.path());
}
