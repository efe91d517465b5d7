//! report.html: one self-contained page about a results folder. Its charts are SVG files beside
//! it and, so the page opens alone from disk or as a CI artifact, embedded in it as data URIs;
//! its stylesheet is inline; it has no script and refers to nothing outside itself.
//!
//! Everything comes from the folder's CSV files (see [`super::folder`]), so a folder merged from
//! shards or copied from CI gets the same report as the run that wrote it. A sweep's charts other
//! than the sweep curves show its last point, as the verdict on stdout does.

use super::charts::{self, Band, ChartError, Panel, Series, Stack, SweepAxis, SweepSeries};
use super::folder::{FolderError, ResultsFolder, Table};
use crate::metrics::LossCause;
use crate::text::escape_markup as escape;
use base64::Engine;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Folder(#[from] FolderError),
    #[error("{0}")]
    Chart(#[from] ChartError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Reads the results folder `dir` and writes report.html and its charts into it. Everything is
/// read and drawn before the first file is written, so bad input writes nothing; each file is
/// written beside its name and renamed, and charts of an earlier report that this one lacks are
/// removed.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let folder = super::folder::read(dir)?;
    let page = build(&folder)?;
    let mut files: Vec<(String, &str)> = page
        .charts
        .iter()
        .map(|chart| (chart.file_name.clone(), chart.svg.as_str()))
        .collect();
    files.push((REPORT_FILE.to_string(), page.html.as_str()));
    remove_stale_charts(dir, &page.charts)?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(&name);
        crate::output::write_file(&path, text).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// The page's file name.
pub const REPORT_FILE: &str = "report.html";

/// Whether a file of a results folder belongs to a report: report.html and its `report-*.svg`.
pub fn is_report_file(name: &str) -> bool {
    name == REPORT_FILE || (name.starts_with("report-") && name.ends_with(".svg"))
}

fn remove_stale_charts(dir: &Path, charts: &[Chart]) -> Result<(), ReportError> {
    let failed = |source| ReportError::Write {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let name = entry.map_err(failed)?.file_name();
        let name = name.to_string_lossy();
        if is_report_file(&name)
            && name != REPORT_FILE
            && !charts.iter().any(|c| c.file_name == name)
        {
            std::fs::remove_file(dir.join(name.as_ref())).map_err(failed)?;
        }
    }
    Ok(())
}

/// A chart of the page: the SVG file it is written to and embedded from.
#[derive(Clone, Debug)]
pub struct Chart {
    pub file_name: String,
    pub title: String,
    pub svg: String,
}

/// The page and its charts.
#[derive(Debug)]
pub struct Page {
    pub html: String,
    pub charts: Vec<Chart>,
}

/// Builds report.html and its charts from a results folder, in memory.
pub fn build(folder: &ResultsFolder) -> Result<Page, ReportError> {
    let view = View::of(folder)?;
    let mut charts = vec![latency_chart(folder, &view)?];
    charts.extend(sweep_charts(folder, &view)?);
    charts.extend(timeline_charts(folder, &view)?);
    charts.extend(lost_chart(folder, &view)?);
    charts.push(server_chart(folder, &view)?);
    let html = page(folder, &view, &charts)?;
    Ok(Page { html, charts })
}

/// Which rows the page shows: the last sweep point (the only one without a sweep), and the
/// topologies in summary.csv's order, which gives each its colour.
struct View {
    point: Vec<String>,
    topologies: Vec<String>,
    /// Each topology's state mechanism (`server`, `store`, `token`, ...).
    states: Vec<String>,
}

impl View {
    fn of(folder: &ResultsFolder) -> Result<View, FolderError> {
        let summary = &folder.summary;
        let last = summary.rows().last().expect("a read table has rows");
        let point = summary.point(last);
        let mut topologies = Vec::new();
        let mut states = Vec::new();
        for row in summary
            .rows()
            .iter()
            .filter(|row| summary.point(row) == point)
        {
            topologies.push(summary.text(row, "topology")?.to_string());
            states.push(summary.text(row, "state")?.to_string());
        }
        Ok(View {
            point,
            topologies,
            states,
        })
    }

    /// The rows of `table` at the shown sweep point.
    fn rows<'t>(&self, table: &'t Table) -> impl Iterator<Item = &'t csv::StringRecord> {
        table
            .rows()
            .iter()
            .filter(move |row| table.point(row) == self.point)
    }

    fn colour_of(&self, topology: &str) -> usize {
        self.topologies
            .iter()
            .position(|t| t == topology)
            .unwrap_or(self.topologies.len())
    }
}

fn latency_chart(folder: &ResultsFolder, view: &View) -> Result<Chart, ReportError> {
    let series = per_topology(&folder.latency, view, ("percentile", "latency_ms"), 1.0)?;
    Ok(Chart {
        file_name: "report-latency.svg".into(),
        title: "Latency distribution, p50 to p99.99".into(),
        svg: charts::latency_cdf(&series)?,
    })
}

/// A line per topology of the shown point, in the topologies' colours: (x, y × `scale`) from
/// the table's rows.
fn per_topology(
    table: &Table,
    view: &View,
    (x, y): (&str, &str),
    scale: f64,
) -> Result<Vec<Series>, FolderError> {
    let mut series: Vec<Series> = view
        .topologies
        .iter()
        .enumerate()
        .map(|(index, name)| Series {
            name: name.clone(),
            colour: index,
            points: Vec::new(),
        })
        .collect();
    for row in view.rows(table) {
        let topology = table.text(row, "topology")?;
        if let Some(line) = series.iter_mut().find(|s| s.name == topology) {
            line.points
                .push((table.number(row, x)?, scale * table.number(row, y)?));
        }
    }
    Ok(series)
}

/// Throughput, p99 and efficiency against the last swept key, one line per series (a topology at
/// the values of the other swept keys).
fn sweep_charts(folder: &ResultsFolder, view: &View) -> Result<Vec<Chart>, ReportError> {
    let Some(scalability) = &folder.scalability else {
        return Ok(Vec::new());
    };
    let summary = &folder.summary;
    scalability.row_per_row_of(summary)?;
    let params = summary.columns_starting("param_");
    let Some(swept) = params.last() else {
        return Ok(Vec::new());
    };
    let key = swept.trim_start_matches("param_");
    // The swept values in order of appearance; numbers if they all are.
    let mut values: Vec<String> = Vec::new();
    for row in summary.rows() {
        let value = summary.text(row, swept)?;
        if !values.iter().any(|v| v == value) {
            values.push(value.to_string());
        }
    }
    let numeric = values.iter().all(|v| v.parse::<f64>().is_ok());
    let position = |value: &str| -> f64 {
        if numeric {
            value.parse().unwrap_or(f64::NAN)
        } else {
            values.iter().position(|v| v == value).unwrap_or(0) as f64
        }
    };
    let axis = if numeric {
        SweepAxis::Numeric
    } else {
        SweepAxis::Named(values.clone())
    };
    let figures = [
        ("throughput_rps", "Throughput", "throughput (requests/s)"),
        ("latency_p99_ms", "p99 latency", "p99 latency (ms)"),
    ];
    let mut charts = Vec::new();
    for (metric, title, y_label) in figures {
        let mut series: Vec<SweepSeries> = Vec::new();
        for (row, knee_row) in summary.rows().iter().zip(scalability.rows()) {
            let name = series_name(summary, row, &params)?;
            let colour = series_colour(view, summary.text(row, "topology")?, &params, series.len());
            let x = position(summary.text(row, swept)?);
            let band = Band {
                x,
                mean: summary.number(row, metric)?,
                half_width: summary.number(row, &format!("{metric}_ci95"))?,
            };
            let knee = scalability.text(knee_row, "knee")? == "true";
            let index = match series.iter().position(|s| s.name == name) {
                Some(index) => index,
                None => {
                    series.push(SweepSeries {
                        name: name.clone(),
                        colour,
                        points: Vec::new(),
                        knee: None,
                    });
                    series.len() - 1
                }
            };
            series[index].points.push(band);
            if knee {
                series[index].knee = Some(x);
            }
        }
        charts.push(Chart {
            file_name: format!("report-sweep-{}.svg", metric.trim_end_matches("_rps").trim_end_matches("_ms")),
            title: format!("{title} against {key}, with 95% intervals; the knee is the last point within the [slo]"),
            svg: charts::sweep(&format!("{title} against {key}"), key, y_label, &axis, &series)?,
        });
    }
    let mut efficiency: Vec<SweepSeries> = Vec::new();
    for row in scalability.rows() {
        let name = series_name(scalability, row, &params)?;
        let colour = series_colour(
            view,
            scalability.text(row, "topology")?,
            &params,
            efficiency.len(),
        );
        let x = position(scalability.text(row, swept)?);
        let band = Band {
            x,
            mean: scalability.number(row, "efficiency")?,
            half_width: f64::NAN,
        };
        match efficiency.iter_mut().find(|s| s.name == name) {
            Some(line) => line.points.push(band),
            None => efficiency.push(SweepSeries {
                name,
                colour,
                points: vec![band],
                knee: None,
            }),
        }
    }
    charts.push(Chart {
        file_name: "report-sweep-efficiency.svg".into(),
        title: format!(
            "Efficiency against {key}: throughput per server relative to each line's first point"
        ),
        svg: charts::sweep(
            &format!("Efficiency against {key}"),
            key,
            "efficiency (1 = linear)",
            &axis,
            &efficiency,
        )?,
    });
    Ok(charts)
}

/// A sweep series' colour: its topology's, unless other swept keys split a topology into
/// several series, which then take the next colours in turn.
fn series_colour(view: &View, topology: &str, params: &[String], index: usize) -> usize {
    if params.len() == 1 {
        view.colour_of(topology)
    } else {
        index
    }
}

/// A sweep series' name: its topology, and the values of the swept keys other than the last.
fn series_name(
    table: &Table,
    row: &csv::StringRecord,
    params: &[String],
) -> Result<String, FolderError> {
    let mut name = table.text(row, "topology")?.to_string();
    for column in &params[..params.len().saturating_sub(1)] {
        let _ = write!(
            name,
            " {}={}",
            column.trim_start_matches("param_"),
            table.text(row, column)?
        );
    }
    Ok(name)
}

/// Per topology, replication 0's timeline around the faults (the whole run without faults):
/// throughput, failures per second by outcome, p99, healthy servers, active sessions and sessions
/// lost, with each fault's window shaded.
fn timeline_charts(folder: &ResultsFolder, view: &View) -> Result<Vec<Chart>, ReportError> {
    let Some(table) = &folder.timeseries else {
        return Ok(Vec::new());
    };
    let mut charts = Vec::new();
    for (index, topology) in view.topologies.iter().enumerate() {
        let rows: Vec<&csv::StringRecord> = view
            .rows(table)
            .filter(|row| table.text(row, "topology").ok() == Some(topology.as_str()))
            .collect();
        if rows.len() < 2 {
            continue;
        }
        let times = rows
            .iter()
            .map(|row| table.number(row, "time_s"))
            .collect::<Result<Vec<f64>, _>>()?;
        let bucket = (times[1] - times[0]).max(1e-9);
        let column = |name: &str, per_second: bool| -> Result<Vec<(f64, f64)>, FolderError> {
            rows.iter()
                .zip(&times)
                .map(|(row, &t)| {
                    let value = table.number(row, name)?;
                    Ok((t, if per_second { value / bucket } else { value }))
                })
                .collect()
        };
        let single = |title: &str, y_label: &str, points| Panel {
            title: title.into(),
            y_label: y_label.into(),
            lines: vec![Series {
                name: topology.clone(),
                colour: index,
                points,
            }],
        };
        let outcomes = ["rejected", "failed", "timed_out", "store_unavailable"];
        let failures = outcomes
            .iter()
            .enumerate()
            .map(|(k, outcome)| {
                Ok(Series {
                    name: outcome.replace('_', " "),
                    colour: 2 + k * 2,
                    points: column(outcome, true)?,
                })
            })
            .collect::<Result<Vec<_>, FolderError>>()?;
        let mut panels = vec![
            single("Throughput", "requests/s", column("throughput_rps", false)?),
            Panel {
                title: "Failed requests by outcome".into(),
                y_label: "requests/s".into(),
                lines: failures,
            },
            single(
                "p99 latency per bucket",
                "p99 (ms)",
                column("latency_p99_ms", false)?,
            ),
        ];
        if table.has("healthy_servers") {
            panels.push(single(
                "Healthy servers",
                "servers",
                column("healthy_servers", false)?,
            ));
        }
        panels.push(single(
            "Active sessions",
            "sessions",
            column("active_sessions", false)?,
        ));
        panels.push(single(
            "Sessions lost",
            "sessions per bucket",
            column("sessions_lost", false)?,
        ));
        let windows = fault_windows(
            folder,
            view,
            topology,
            *times.last().unwrap_or(&0.0) + bucket,
        )?;
        let span = around(&windows, times[0], times[times.len() - 1] + bucket);
        charts.push(Chart {
            file_name: timeline_file(&view.topologies, index),
            title: format!("{topology}: timeline of replication 0, fault windows shaded"),
            svg: charts::timeline(&format!("{topology} over time"), &panels, &windows, span)?,
        });
    }
    Ok(charts)
}

/// A timeline's file: `report-timeline-<topology>.svg`, with the topology's index added when
/// another topology's name makes the same file name (`a b` and `a_b`).
fn timeline_file(topologies: &[String], index: usize) -> String {
    let name = super::safe_file_name(&topologies[index]);
    let shared = topologies
        .iter()
        .filter(|other| super::safe_file_name(other) == name)
        .count()
        > 1;
    if shared {
        format!("report-timeline-{name}-{index}.svg")
    } else {
        format!("report-timeline-{name}.svg")
    }
}

/// Each fault of replication 0 of a topology, from its start to its recovery (the run's end if
/// it never recovered). The autoscaler's rows are decisions, not faults.
fn fault_windows(
    folder: &ResultsFolder,
    view: &View,
    topology: &str,
    end: f64,
) -> Result<Vec<(f64, f64)>, FolderError> {
    let Some(table) = &folder.faults else {
        return Ok(Vec::new());
    };
    let mut windows = Vec::new();
    for row in view.rows(table) {
        if table.text(row, "topology")? != topology
            || table.text(row, "replication")? != "0"
            || table.text(row, "kind")? == "autoscaler"
        {
            continue;
        }
        let start = table.number(row, "start_s")?;
        let recovered = table.number(row, "recovered_at_s")?;
        windows.push((
            start,
            if recovered.is_finite() {
                recovered
            } else {
                end
            },
        ));
    }
    Ok(windows)
}

/// The time range a timeline shows: the faults with a margin either side, within the run.
fn around(windows: &[(f64, f64)], first: f64, last: f64) -> std::ops::Range<f64> {
    if windows.is_empty() {
        return first..last;
    }
    let start = windows.iter().map(|w| w.0).fold(f64::INFINITY, f64::min);
    let end = windows
        .iter()
        .map(|w| w.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let margin = ((end - start) * 0.5).max(30.0);
    (start - margin).max(first)..(end + margin).min(last)
}

/// One colour per loss cause, in [`LossCause::ALL`]'s order, apart from the topologies' own.
const CAUSE_COLOURS: [plotters::style::RGBColor; LossCause::ALL.len()] = [
    plotters::style::RGBColor(178, 34, 34),
    plotters::style::RGBColor(255, 140, 0),
    plotters::style::RGBColor(70, 130, 180),
    plotters::style::RGBColor(106, 90, 205),
    plotters::style::RGBColor(46, 139, 87),
    plotters::style::RGBColor(218, 165, 32),
    plotters::style::RGBColor(139, 69, 19),
    plotters::style::RGBColor(112, 128, 144),
    plotters::style::RGBColor(199, 21, 133),
];

/// Sessions lost by cause, stacked per topology; left out when no session was lost.
fn lost_chart(folder: &ResultsFolder, view: &View) -> Result<Option<Chart>, ReportError> {
    let table = &folder.summary;
    let rows: Vec<&csv::StringRecord> = view.rows(table).collect();
    let mut stacks = Vec::new();
    for (k, cause) in LossCause::ALL.iter().enumerate() {
        let column = format!("sessions_lost_{}", cause.name());
        if !table.has(&column) {
            continue;
        }
        let values = rows
            .iter()
            .map(|row| {
                table
                    .number(row, &column)
                    .map(|v| if v.is_finite() { v } else { 0.0 })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        if values.iter().any(|v| *v > 0.0) {
            stacks.push(Stack {
                name: cause.name().replace('_', " "),
                colour: CAUSE_COLOURS[k % CAUSE_COLOURS.len()],
                values,
            });
        }
    }
    if stacks.is_empty() {
        return Ok(None);
    }
    Ok(Some(Chart {
        file_name: "report-sessions-lost.svg".into(),
        title: "Sessions lost by cause (mean per replication)".into(),
        svg: charts::stacked_bars(
            "Sessions lost by cause",
            "sessions lost",
            &view.topologies,
            &stacks,
        )?,
    }))
}

/// Utilisation per server, side by side per topology: sticky imbalance shows as uneven bars.
fn server_chart(folder: &ResultsFolder, view: &View) -> Result<Chart, ReportError> {
    let series = per_topology(&folder.servers, view, ("server", "utilization"), 100.0)?;
    Ok(Chart {
        file_name: "report-servers.svg".into(),
        title: "Utilisation per server (mean over replications)".into(),
        svg: charts::server_bars("Load per server", "utilisation (%)", &series)?,
    })
}

fn page(folder: &ResultsFolder, view: &View, charts: &[Chart]) -> Result<String, FolderError> {
    let summary = &folder.summary;
    let first = &summary.rows()[0];
    let name = summary.text(first, "scenario")?;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>statesim: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(name),
        escape(name)
    );
    if !folder.description.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"description\">{}</p>",
            escape(&folder.description)
        );
    }
    let _ = writeln!(
        html,
        "<p class=\"provenance\">seed {} · scenario hash {} · statesim {} · {} replication(s)</p>",
        escape(summary.text(first, "seed")?),
        escape(summary.text(first, "scenario_hash")?),
        escape(summary.text(first, "statesim_version")?),
        escape(summary.text(first, "replications")?),
    );
    if !view.point.is_empty() {
        let params = summary.columns_starting("param_");
        let shown: Vec<String> = params
            .iter()
            .zip(&view.point)
            .map(|(key, value)| format!("{}={}", key.trim_start_matches("param_"), value))
            .collect();
        let _ = writeln!(
            html,
            "<p class=\"note\">A sweep: the verdict and the charts other than the sweep curves \
             show its last point, {}.</p>",
            escape(&shown.join(", "))
        );
    }
    html.push_str("<h2>Topologies</h2>\n<ul class=\"topologies\">\n");
    for (index, (topology, state)) in view.topologies.iter().zip(&view.states).enumerate() {
        let colour = charts::colour(index);
        let _ = writeln!(
            html,
            "<li><span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>{} \
             <span class=\"state\">state in {}</span></li>",
            colour.0,
            colour.1,
            colour.2,
            escape(topology),
            escape(state)
        );
    }
    html.push_str("</ul>\n");
    if let Some(comparison) = &folder.comparison {
        html.push_str(&verdict_table(comparison, view)?);
    }
    for chart in charts {
        let encoded = base64::engine::general_purpose::STANDARD.encode(chart.svg.as_bytes());
        let _ = writeln!(
            html,
            "<figure>\n<img src=\"data:image/svg+xml;base64,{encoded}\" alt=\"{}\">\n\
             <figcaption>{} <span class=\"file\">({})</span></figcaption>\n</figure>",
            escape(&chart.title),
            escape(&chart.title),
            escape(&chart.file_name)
        );
    }
    html.push_str(
        "<p class=\"footer\">Written by statesim report from the CSV files beside this page.</p>\n\
         </body>\n</html>\n",
    );
    Ok(html)
}

/// comparison.csv at the shown point as a table: a row per figure, a column per topology, the
/// best of each row marked.
fn verdict_table(table: &Table, view: &View) -> Result<String, FolderError> {
    let mut html = String::from(
        "<h2>Verdict</h2>\n<table class=\"verdict\">\n<thead><tr><th>characteristic</th><th>figure</th>",
    );
    for topology in &view.topologies {
        let _ = write!(html, "<th>{}</th>", escape(topology));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    let mut current: Option<(String, String)> = None;
    let mut cells = vec![String::new(); view.topologies.len()];
    let flush = |html: &mut String, key: &Option<(String, String)>, cells: &mut Vec<String>| {
        if let Some((characteristic, metric)) = key {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td>",
                escape(characteristic),
                escape(metric)
            );
            for cell in cells.iter_mut() {
                html.push_str(if cell.is_empty() { "<td></td>" } else { cell });
                cell.clear();
            }
            html.push_str("</tr>\n");
        }
    };
    for row in view.rows(table) {
        let key = (
            table.text(row, "characteristic")?.to_string(),
            table.text(row, "metric")?.to_string(),
        );
        if current.as_ref() != Some(&key) {
            flush(&mut html, &current, &mut cells);
            current = Some(key);
        }
        let column = view.colour_of(table.text(row, "topology")?);
        let value = table.number(row, "value")?;
        let ci95 = table.number(row, "ci95")?;
        let best = table.text(row, "best")? == "true";
        let text = if ci95.is_finite() && ci95 > 0.0 {
            format!("{} ± {}", figure(value), figure(ci95))
        } else {
            figure(value)
        };
        if let Some(cell) = cells.get_mut(column) {
            *cell = if best {
                format!("<td class=\"best\">★ {}</td>", escape(&text))
            } else {
                format!("<td>{}</td>", escape(&text))
            };
        }
    }
    flush(&mut html, &current, &mut cells);
    html.push_str("</tbody>\n</table>\n<p class=\"note\">★ the best of the row (ties share it); ± the 95% interval over replications.</p>\n");
    Ok(html)
}

/// A figure with four significant digits, an integer as it is; a fraction near 1 (an
/// availability) with six decimals, so 0.999993 and 0.999990 stay apart and neither reads 1.
fn figure(value: f64) -> String {
    if !value.is_finite() {
        return String::new();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    if (0.99..1.0).contains(&value.abs()) {
        return format!("{value:.6}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 6) as usize;
    format!("{value:.decimals$}")
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:960px;\
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}h1{margin-bottom:.2em}\
.provenance,.note,.footer,.file,.state{color:#666;font-size:.9em}\
.topologies{list-style:none;padding:0}.topologies li{margin:.2em 0}\
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.5em;vertical-align:middle;border-radius:2px}\
table.verdict{border-collapse:collapse;font-size:.9em;width:100%}\
table.verdict th,table.verdict td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:right}\
table.verdict th:first-child,table.verdict td:first-child,table.verdict th:nth-child(2),\
table.verdict td:nth-child(2){text-align:left}td.best{font-weight:bold;background:#eef6ee}\
figure{margin:2em 0}figure img{width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.9em}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_four_significant_digits() {
        assert_eq!(figure(936.0), "936");
        assert_eq!(figure(0.99679), "0.996790");
        assert_eq!(figure(0.768), "0.7680");
        assert_eq!(figure(12.566527), "12.57");
        assert_eq!(figure(1211.275), "1211");
        assert_eq!(figure(0.999993), "0.999993");
        assert_eq!(figure(1.0000004), "1.000");
        assert_eq!(figure(f64::NAN), "");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn timelines_frame_the_faults() {
        assert_eq!(around(&[], 0.0, 300.0), 0.0..300.0);
        assert_eq!(around(&[(180.0, 270.0)], 0.0, 300.0), 135.0..300.0);
        assert_eq!(around(&[(100.0, 110.0)], 0.0, 300.0), 70.0..140.0);
    }
}
