//! What people look at and scripts read: report.html and its SVG charts, `--format json` and
//! summary.json, shell completions and the man page.

use super::support::{SHORT_QUICKSTART, folder_with, read_csv, run_ok, statesim};
use base64::Engine;
use std::path::Path;

/// Every text of an SVG (labels, legend entries, title), trimmed; panics unless it is XML.
fn svg_texts(svg: &str) -> Vec<String> {
    let document = roxmltree::Document::parse(svg)
        .unwrap_or_else(|e| panic!("not XML: {e}\n{}", &svg[..svg.len().min(300)]));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(|text| text.trim().to_string())
        .collect()
}

fn chart(dir: &Path, name: &str) -> Vec<String> {
    let path = dir.join(name);
    let svg = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    svg_texts(&svg)
}

fn assert_has(texts: &[String], wanted: &[&str], chart: &str) {
    for text in wanted {
        assert!(
            texts.iter().any(|t| t == text),
            "{chart} has no text \"{text}\"; it has {texts:?}"
        );
    }
}

#[test]
fn the_quickstart_report_holds_every_chart_and_nothing_from_outside() {
    let mut args = SHORT_QUICKSTART.to_vec();
    args.push("--report");
    let run = run_ok(&args);
    let out = run.dir.path().join("out");
    let topologies = ["stateful", "stateless-store", "stateless-token"];

    let latency = chart(&out, "report-latency.svg");
    assert_has(&latency, &topologies, "latency");
    assert_has(
        &latency,
        &[
            "latency (ms, log scale)",
            "percentile",
            "p50",
            "p99",
            "p99.9",
            "p99.99",
        ],
        "latency",
    );
    for topology in topologies {
        let timeline = chart(&out, &format!("report-timeline-{topology}.svg"));
        assert_has(
            &timeline,
            &[
                topology,
                "Throughput",
                "Failed requests by outcome",
                "p99 latency per bucket",
                "Healthy servers",
                "Active sessions",
                "Sessions lost",
                "time (s)",
                "requests/s",
                "failed",
                "timed out",
            ],
            "timeline",
        );
    }
    // Only the sticky topology loses sessions, all to the crash.
    let lost = chart(&out, "report-sessions-lost.svg");
    assert_has(
        &lost,
        &["crash", "sessions lost", "topology", "stateful"],
        "lost",
    );
    let servers = chart(&out, "report-servers.svg");
    assert_has(&servers, &topologies, "servers");
    assert_has(
        &servers,
        &["server", "utilisation (%)", "0", "7"],
        "servers",
    );
    assert!(
        !out.join("report-sweep-throughput.svg").exists(),
        "no sweep, no sweep chart"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_self_contained(&html);
    for text in ["quickstart", "seed 42", "Verdict", "fault tolerance", "★"] {
        assert!(html.contains(text), "report.html lacks {text}");
    }
    // Every chart file is embedded, byte for byte.
    let embedded = embedded_images(&html);
    assert_eq!(
        embedded.len(),
        6,
        "latency, 3 timelines, sessions lost, servers"
    );
    for svg in &embedded {
        svg_texts(svg);
    }
    let on_disk = std::fs::read_to_string(out.join("report-latency.svg")).unwrap();
    assert!(embedded.contains(&on_disk));

    // `statesim report` on the folder writes the same page again.
    let again = statesim()
        .current_dir(run.dir.path())
        .args(["report", "out", "--quiet"])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        html
    );
}

/// No script, stylesheet, font or image from anywhere but the page itself.
fn assert_self_contained(html: &str) {
    let lower = html.to_lowercase();
    for forbidden in [
        "<script", "<link", "<iframe", "@import", "url(", "http:", "https:", "//",
    ] {
        assert!(
            !lower.contains(forbidden),
            "report.html contains {forbidden}"
        );
    }
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in lower.match_indices(attribute) {
            let value = &lower[at + attribute.len()..];
            assert!(
                value.starts_with("data:image/svg+xml;base64,"),
                "{attribute} points outside the page: {}",
                &value[..value.len().min(60)]
            );
        }
    }
}

fn embedded_images(html: &str) -> Vec<String> {
    let marker = "src=\"data:image/svg+xml;base64,";
    html.match_indices(marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            let encoded = &rest[..rest.find('"').unwrap()];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap();
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

#[test]
fn a_sweep_report_draws_each_topology_against_the_swept_key_with_bands_and_the_knee() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::copy(
        super::support::project_path("scenarios/load-sweep.toml"),
        dir.path().join("load-sweep.toml"),
    )
    .unwrap();
    let run = super::support::run_in(
        dir,
        &[
            "load-sweep.toml",
            "--quiet",
            "--report",
            "--set",
            "duration=60s",
            "--set",
            "warmup=10s",
            "--set",
            "replications=2",
            "--set",
            "sweep.workload.sessions_per_second=[100, 400]",
        ],
    );
    let out = run.dir.path().join("out");
    let knees: Vec<Row> = read_csv(&out.join("scalability.csv"))
        .into_iter()
        .filter(|row| row["knee"] == "true")
        .collect();
    assert!(
        !knees.is_empty(),
        "400 sessions/s is past the fleet's capacity"
    );
    for (file, y_label) in [
        ("report-sweep-throughput.svg", "throughput (requests/s)"),
        ("report-sweep-latency_p99.svg", "p99 latency (ms)"),
        ("report-sweep-efficiency.svg", "efficiency (1 = linear)"),
    ] {
        let texts = chart(&out, file);
        assert_has(
            &texts,
            &[
                "stateful",
                "stateless-store",
                "stateless-token",
                "workload.sessions_per_second",
                y_label,
            ],
            file,
        );
        if file != "report-sweep-efficiency.svg" {
            assert_has(&texts, &["knee"], file);
            let svg = std::fs::read_to_string(out.join(file)).unwrap();
            assert!(svg.contains("<polygon"), "{file} draws no 95% band");
        }
    }
    // The other charts show the last point.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("workload.sessions_per_second=400"),
        "the page names the point it shows"
    );
}

type Row = std::collections::BTreeMap<String, String>;

#[test]
fn report_refuses_a_folder_that_is_not_results_and_writes_nothing() {
    let empty = tempfile::TempDir::new().unwrap();
    let refused = |dir: &Path, wanted: &str| {
        let output = statesim().args(["report"]).arg(dir).output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(wanted), "expected {wanted:?} in: {stderr}");
    };
    refused(empty.path(), "summary.csv is missing");
    refused(&empty.path().join("nowhere"), "not a folder");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    // A results folder that lost a file: the report says which, and writes nothing.
    let run = run_ok(&[
        "--quiet",
        "--set",
        "duration=20s",
        "--set",
        "warmup=2s",
        "--set",
        "fault=[]",
    ]);
    let out = run.dir.path().join("out");
    std::fs::remove_file(out.join("servers.csv")).unwrap();
    let before = std::fs::read_dir(&out).unwrap().count();
    refused(&out, "servers.csv is missing");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), before);

    let broken = folder_with(&[
        ("summary.csv", "scenario,topology\nx,y\n"),
        ("latency.csv", ""),
        ("servers.csv", ""),
    ]);
    refused(broken.path(), "has no column `state`");
}

#[test]
fn json_on_stdout_is_summary_json_and_its_figures_are_summary_csv_s() {
    let run = run_ok(&[
        "--quiet",
        "--format",
        "json",
        "--set",
        "duration=30s",
        "--set",
        "warmup=5s",
        "--set",
        "fault.0.at=10s",
    ]);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.out("summary.json")).unwrap()).unwrap();
    assert_eq!(document, file);
    assert_eq!(document["scenario"]["name"], "quickstart");
    assert_eq!(document["scenario"]["seed"], 42);
    let rows = read_csv(&run.out("summary.csv"));
    let json_rows = document["summary"].as_array().unwrap();
    assert_eq!(json_rows.len(), rows.len());
    for (row, object) in rows.iter().zip(json_rows) {
        let object = object.as_object().unwrap();
        assert_eq!(object.len(), row.len(), "the same columns");
        for (column, cell) in row {
            let value = &object[column];
            match value {
                serde_json::Value::Null => assert_eq!(cell, "", "{column}"),
                serde_json::Value::Number(number) => {
                    assert_eq!(
                        number.as_f64().unwrap(),
                        cell.parse::<f64>().unwrap(),
                        "{column}"
                    )
                }
                serde_json::Value::String(text) => assert_eq!(text, cell, "{column}"),
                serde_json::Value::Bool(flag) => assert_eq!(flag.to_string(), *cell, "{column}"),
                other => panic!("{column}: unexpected {other}"),
            }
        }
    }
    let comparison = read_csv(&run.out("comparison.csv"));
    assert_eq!(
        document["verdict"].as_array().unwrap().len(),
        comparison.len()
    );
    assert!(json_rows.iter().all(|row| row["scenario_hash"].is_string()));
}

#[test]
fn check_in_json_adds_the_checks_and_whether_they_passed() {
    let scenario = folder_with(&[(
        "s.toml",
        r#"
name = "json-check"
duration = "20s"
[workload]
sessions_per_second = 10
requests_per_session = 3
think_time = "1s"
service_time = "5ms"
[servers]
count = 2
[[topology]]
name = "token"
state = "token"
[[expect]]
topology = "token"
metric = "latency_p99_ms"
max = 0.001
"#,
    )]);
    let output = statesim()
        .current_dir(scenario.path())
        .args([
            "check", "s.toml", "--quiet", "--format", "json", "--out", "out",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["passed"], false);
    let checks = document["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["metric"], "latency_p99_ms");
    assert_eq!(checks[0]["passed"], false);
    assert_eq!(
        document["verdict"].as_array().unwrap().len(),
        0,
        "one topology: no comparison"
    );
}

#[test]
fn completions_and_the_man_page_are_generated_from_the_command_line() {
    for (shell, marker) in [
        ("bash", "complete"),
        ("zsh", "#compdef statesim"),
        ("fish", "complete -c statesim"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let output = statesim().args(["completions", shell]).output().unwrap();
        assert!(output.status.success());
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker}");
        assert!(
            script.contains("--max-replications"),
            "{shell} completes run's flags"
        );
    }
    let output = statesim().arg("man").output().unwrap();
    assert!(output.status.success());
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH statesim"),
        "{}",
        &page[..200]
    );
    for section in [".SH NAME", ".SH SYNOPSIS", "statesim\\-run", "Exit codes"] {
        assert!(page.contains(section), "the man page lacks {section}");
    }
}

#[test]
fn progress_adds_up_to_the_simulated_time_of_every_run() {
    use statesim::model::{Limits, simulate_within};
    let scenario = super::support::load(
        "scenarios/quickstart.toml",
        &["duration=40s", "warmup=5s", "fault.0.at=20s"],
    );
    let limits = Limits::new(u64::MAX, None, u64::MAX);
    for topology in &scenario.topologies {
        simulate_within(&scenario, topology, 0, &limits).unwrap();
    }
    // The bar's length is this sum, known before the runs; each run adds its share as it goes
    // (every 4,096 requests) and the rest at its end.
    assert_eq!(
        limits.simulated_nanos(),
        scenario.duration.nanos() * scenario.topologies.len() as u64
    );
}

#[test]
fn hostile_names_stay_text_in_the_report() {
    let scenario = folder_with(&[(
        "s.toml",
        r#"
name = "<script>alert(1)</script>"
description = "<img src=x onerror=alert(2)> & \"quotes\""
duration = "20s"
[workload]
sessions_per_second = 10
service_time = "5ms"
[servers]
count = 2
[[topology]]
name = "a b</text><script>"
state = "token"
[[topology]]
name = "a_b__text__script_"
state = "none"
"#,
    )]);
    let run = super::support::run_in(scenario, &["s.toml", "--quiet", "--report"]);
    let out = run.dir.path().join("out");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_self_contained(&html);
    assert!(!html.contains("<img src=x"), "the description is escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // In the charts the name is text, not markup: the SVG parses, has no script element, and
    // the legend holds the name as written.
    let latency = std::fs::read_to_string(out.join("report-latency.svg")).unwrap();
    let document = roxmltree::Document::parse(&latency).unwrap();
    assert!(
        !document
            .descendants()
            .any(|node| node.has_tag_name("script"))
    );
    assert_has(&svg_texts(&latency), &["a b</text><script>"], "latency");
    // Two names that make the same file name get a timeline each.
    let timelines = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("report-timeline-")
        })
        .count();
    assert_eq!(timelines, 2);
}
