//! The side-by-side table printed on stdout after a run.

use super::Report;

struct Column {
    title: &'static str,
    cell: fn(&crate::metrics::TopologySummary) -> String,
}

fn count(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else {
        format!("{value:.0}")
    }
}

fn millis(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

/// A latency with its 95% interval when there are replications to give one: `23.0 ± 0.4`.
fn millis_with_interval(summary: &crate::metrics::TopologySummary, name: &str) -> String {
    let half_width = summary.ci95_of(name);
    let value = millis(summary.get(name));
    if half_width.is_nan() {
        value
    } else {
        format!("{value} ± {}", millis(half_width))
    }
}

fn percent(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else {
        format!("{:.1}%", value * 100.0)
    }
}

const COLUMNS: &[Column] = &[
    Column {
        title: "topology",
        cell: |s| s.topology.clone(),
    },
    Column {
        title: "state",
        cell: |s| s.state.to_string(),
    },
    Column {
        title: "requests",
        cell: |s| count(s.get("requests")),
    },
    Column {
        title: "ok",
        cell: |s| percent(s.get("availability")),
    },
    Column {
        title: "failed",
        cell: |s| count(s.get("failed")),
    },
    Column {
        title: "rejected",
        cell: |s| count(s.get("rejected")),
    },
    Column {
        title: "timed_out",
        cell: |s| count(s.get("timed_out")),
    },
    Column {
        title: "store down",
        cell: |s| count(s.get("store_unavailable")),
    },
    Column {
        title: "p50 ms",
        cell: |s| millis_with_interval(s, "latency_p50_ms"),
    },
    Column {
        title: "p99 ms",
        cell: |s| millis_with_interval(s, "latency_p99_ms"),
    },
    Column {
        title: "p99.9 ms",
        cell: |s| millis_with_interval(s, "latency_p999_ms"),
    },
    Column {
        title: "p99 in fault",
        cell: |s| millis(s.get("latency_p99_during_faults_ms")),
    },
    Column {
        title: "req/s",
        cell: |s| format!("{:.1}", s.get("throughput_rps")),
    },
    Column {
        title: "sessions lost",
        cell: |s| {
            // Sessions measured in the window: carried over from the warm-up, plus new ones.
            let measured = s.get("sessions_at_warmup") + s.get("sessions_started");
            format!("{} of {}", count(s.get("sessions_lost")), count(measured))
        },
    },
    Column {
        title: "util",
        cell: |s| percent(s.get("server_utilization")),
    },
    Column {
        title: "peak MiB/server",
        cell: |s| format!("{:.1}", s.get("peak_session_memory_mb")),
    },
    Column {
        title: "bytes/req",
        cell: |s| count(s.get("bytes_per_request")),
    },
];

/// Renders one row per topology, columns aligned (text left, figures right).
pub fn render_table(report: &Report) -> String {
    // A sweep's parameters lead, one column per swept key.
    let titles: Vec<String> = report
        .sweep_keys
        .iter()
        .cloned()
        .chain(COLUMNS.iter().map(|c| c.title.to_string()))
        .collect();
    let leading = report.sweep_keys.len() + 2; // left-aligned: parameters, topology, state
    let rows: Vec<Vec<String>> = report
        .summaries
        .iter()
        .map(|summary| {
            summary
                .params
                .iter()
                .cloned()
                .chain(COLUMNS.iter().map(|c| (c.cell)(summary)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = titles
        .iter()
        .enumerate()
        .map(|(i, title)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([title.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i < leading {
                    format!("{cell:<w$}", w = widths[i])
                } else {
                    format!("{cell:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(titles.clone());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push_str(&paired_p99_lines(report));
    out.push_str(&fault_lines(report));
    out.push_str(&loss_causes_line(report));
    out.push_str(&steady_memory_lines(report));
    out.push_str(&super::verdict::render_verdict(report));
    out
}

/// The peak session memory of a run that ended before its sessions' state filled the servers
/// (below 90% of the steady state) is not what a server must hold: say so, with the figure.
fn steady_memory_lines(report: &Report) -> String {
    let mut out = String::new();
    for summary in &report.summaries {
        let (peak, steady) = (
            summary.get("peak_session_memory_mb"),
            summary.get("session_memory_steady_mb"),
        );
        if steady > 0.0 && peak < 0.9 * steady {
            let at: String = summary.params.iter().map(|p| format!(" {p}")).collect();
            out.push_str(&format!(
                "{}{at}: peak session memory {peak:.1} MiB per server is {:.0}% of the steady \
                 state, {steady:.1} MiB (Little's law: arrival rate x (session life + \
                 session_ttl) x session bytes x copies / servers)\n",
                summary.topology,
                100.0 * peak / steady
            ));
        }
    }
    out
}

/// Why sessions were lost, for the topologies that lost any (the table shows only the total):
/// `sessions lost by cause: stateful 936 crash; hybrid 12 eviction, 3 misrouted`.
fn loss_causes_line(report: &Report) -> String {
    let parts: Vec<String> = report
        .summaries
        .iter()
        .filter_map(|summary| {
            let causes: Vec<String> = crate::metrics::LossCause::ALL
                .iter()
                .filter_map(|cause| {
                    let lost = summary.get(&format!("sessions_lost_{}", cause.name()));
                    (lost > 0.0).then(|| format!("{} {}", count(lost), cause.name()))
                })
                .collect();
            (!causes.is_empty()).then(|| {
                let at: String = summary.params.iter().map(|p| format!(" {p}")).collect();
                format!("{}{at} {}", summary.topology, causes.join(", "))
            })
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("sessions lost by cause: {}\n", parts.join("; "))
    }
}

/// Without a sweep: for each fault of the scenario, how often it struck per run, how long the
/// balancer took to notice and the service to recover (means over occurrences), and what it cost
/// each topology (per run): the faults.csv figures at a glance.
fn fault_lines(report: &Report) -> String {
    if !report.sweep_keys.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for (fault, kind) in report.fault_kinds.iter().enumerate() {
        let rows_of = |summary: &crate::metrics::TopologySummary| {
            summary
                .faults
                .iter()
                .flatten()
                .filter(|row| row[0] as usize == fault)
                .copied()
                .collect::<Vec<_>>()
        };
        let all: Vec<_> = report.summaries.iter().flat_map(rows_of).collect();
        if all.is_empty() {
            continue;
        }
        let mean_delay = |column: usize| {
            let delays: Vec<f64> = all
                .iter()
                .filter(|row| !row[column].is_nan())
                .map(|row| row[column] - row[2])
                .collect();
            if delays.is_empty() {
                "never".to_string()
            } else {
                format!("{:.1} s", delays.iter().sum::<f64>() / delays.len() as f64)
            }
        };
        let runs: f64 = report
            .summaries
            .iter()
            .map(|s| f64::from(s.replications))
            .sum();
        let costs: Vec<String> = report
            .summaries
            .iter()
            .map(|summary| {
                let rows = rows_of(summary);
                let per_run = f64::from(summary.replications.max(1));
                let failed: f64 = rows.iter().map(|row| row[5]).sum::<f64>() / per_run;
                let lost: f64 = rows.iter().map(|row| row[6]).sum::<f64>() / per_run;
                format!("{} {failed:.0}/{lost:.0}", summary.topology)
            })
            .collect();
        let label = if *kind == "autoscale" {
            "autoscaler (servers added or removed)".to_string()
        } else {
            format!("fault {fault} ({kind})")
        };
        out.push_str(&format!(
            "{label}: {:.1} per run, detected after {}, recovered after {}; \
             requests failed/sessions lost per run, warm-up included: {}\n",
            all.len() as f64 / runs,
            mean_delay(3),
            mean_delay(4),
            costs.join(", ")
        ));
    }
    out
}

/// With replications: how much higher or lower each topology's p99 is than the first topology's,
/// paired replication by replication (same random numbers), with its 95% interval.
fn paired_p99_lines(report: &Report) -> String {
    let Some(p99) = crate::metrics::metric_index("latency_p99_ms") else {
        return String::new();
    };
    let mut out = String::new();
    for (summary, reference) in super::paired_rows(report) {
        let (difference, half_width) = super::paired_difference(summary, reference, p99);
        if half_width.is_nan() {
            continue;
        }
        let direction = if difference >= 0.0 { "higher" } else { "lower" };
        let point: String = report
            .point_of(summary)
            .iter()
            .map(|pair| format!("{pair} "))
            .collect();
        out.push_str(&format!(
            "{point}{}: p99 {} ms ± {} ms {direction} than {} (paired, {} replications)\n",
            summary.topology,
            millis(difference.abs()),
            millis(half_width),
            reference.topology,
            summary.replications
        ));
    }
    out
}
