//! Builds the jobs of a scenario (topologies × replications), runs them in parallel with rayon, and
//! assembles the results in job order, so any `--jobs` writes the same bytes.

use crate::metrics::{RunResult, new_latency_histogram, summarize};
use crate::model::simulate;
use crate::report::Report;
use crate::scenario::{Scenario, SweepPoint};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Worker threads; `None` uses every available core.
    pub jobs: Option<usize>,
    /// Show a progress bar on stderr (the caller decides: terminal, not quiet, not CI).
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start {jobs} worker threads: {source}")]
    ThreadPool {
        jobs: usize,
        source: rayon::ThreadPoolBuildError,
    },
}

/// How much simulating a run did and how fast (`--stats`). Never written to result files: the
/// timing differs from machine to machine, the results must not.
#[derive(Clone, Debug)]
pub struct RunStats {
    /// Simulations run (topologies × replications).
    pub simulations: usize,
    pub threads: usize,
    /// Events taken off the event queue, over all simulations.
    pub events: u64,
    /// Requests clients sent, over all simulations (warm-up included).
    pub requests: u64,
    /// Wall time of the simulations (from the first start to the last finish).
    pub elapsed: Duration,
}

/// One single-threaded simulation: a topology in a replication, at a sweep point.
#[derive(Clone, Copy, Debug)]
struct Job {
    point: usize,
    topology: usize,
    replication: u32,
}

/// Every job, point-major, then topology, then replication: the order results are reported in.
fn jobs(points: &[&Scenario]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (point, scenario) in points.iter().enumerate() {
        for topology in 0..scenario.topologies.len() {
            for replication in 0..scenario.replications {
                jobs.push(Job {
                    point,
                    topology,
                    replication,
                });
            }
        }
    }
    jobs
}

fn progress_bar(total: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta}",
        )
        .expect("static progress template is valid"),
    );
    bar.tick(); // draw at once, not only after the first run finishes
    bar
}

fn threads(options: &RunOptions) -> usize {
    options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs every job of the scenario on the pool and returns `per_job(job, result)` in job order.
fn execute<T: Send>(
    points: &[&Scenario],
    options: &RunOptions,
    per_job: impl Fn(Job, RunResult) -> T + Sync,
) -> Result<Vec<T>, RunError> {
    let jobs = jobs(points);
    let threads = threads(options);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| RunError::ThreadPool {
            jobs: threads,
            source,
        })?;
    let bar = progress_bar(jobs.len(), options.progress);
    let outputs = pool.install(|| {
        jobs.par_iter()
            .map(|&job| {
                let scenario = points[job.point];
                let topology = &scenario.topologies[job.topology];
                let result = simulate(scenario, topology, job.replication);
                bar.inc(1);
                per_job(job, result)
            })
            .collect()
    });
    bar.finish_and_clear();
    Ok(outputs)
}

/// Runs every job and returns the full per-run results in job order (topology-major). Each result
/// holds a latency histogram; for many replications prefer [`run`], which keeps memory flat.
pub fn run_jobs(scenario: &Scenario, options: &RunOptions) -> Result<Vec<RunResult>, RunError> {
    execute(&[scenario], options, |_, result| result)
}

/// Runs a scenario and aggregates each topology's replications. Only each run's scalar figures are
/// kept; histograms are merged as runs finish. Merging adds integer counts, so the pooled histogram
/// is the same in any completion order, and the output stays identical for any `--jobs`.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<(Report, RunStats), RunError> {
    let point = SweepPoint {
        params: Vec::new(),
        series_fixed: 0,
        scenario: scenario.clone(),
    };
    run_points(std::slice::from_ref(&point), options)
}

/// [`run`] for every point of a sweep, all points' jobs on one pool. Summaries come point-major,
/// each carrying its point's parameter values.
pub fn run_points(
    points: &[SweepPoint],
    options: &RunOptions,
) -> Result<(Report, RunStats), RunError> {
    let scenarios: Vec<&Scenario> = points.iter().map(|point| &point.scenario).collect();
    // One pooled histogram per (point, topology), found from the point's offset.
    let offsets: Vec<usize> = scenarios
        .iter()
        .scan(0, |next, scenario| {
            let offset = *next;
            *next += scenario.topologies.len();
            Some(offset)
        })
        .collect();
    let total_topologies: usize = scenarios.iter().map(|s| s.topologies.len()).sum();
    let pooled: Vec<Mutex<Histogram<u64>>> = (0..total_topologies)
        .map(|_| Mutex::new(new_latency_histogram()))
        .collect();
    let started = Instant::now();
    let per_job = execute(&scenarios, options, |job, result| {
        pooled[offsets[job.point] + job.topology]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(&result.latency)
            .expect("auto-resizing histograms of equal precision always merge");
        (
            result.metric_values(),
            result.events,
            result.requests_simulated,
        )
    })?;
    let stats = RunStats {
        simulations: per_job.len(),
        threads: threads(options),
        events: per_job.iter().map(|(_, events, _)| events).sum(),
        requests: per_job.iter().map(|(_, _, requests)| requests).sum(),
        elapsed: started.elapsed(),
    };
    let mut values = per_job.into_iter().map(|(values, _, _)| values);
    let mut pooled = pooled.into_iter();
    let mut summaries = Vec::new();
    for point in points {
        let params: Vec<String> = point
            .params
            .iter()
            .map(|(_, value)| value.clone())
            .collect();
        for topology in &point.scenario.topologies {
            let runs: Vec<Vec<f64>> = values
                .by_ref()
                .take(point.scenario.replications as usize)
                .collect();
            let histogram = pooled
                .next()
                .expect("one histogram per topology")
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner);
            let mut summary = summarize(&topology.name, topology.state.name(), runs, histogram);
            summary.params = params.clone();
            summary.servers = topology.servers.count;
            summaries.push(summary);
        }
    }
    let first = &points[0].scenario;
    let report = Report {
        scenario: first.name.clone(),
        seed: first.seed,
        scenario_hash: first.source_hash,
        sweep_keys: points[0]
            .params
            .iter()
            .map(|(key, _)| key.clone())
            .collect(),
        series_fixed: points[0].series_fixed,
        slo: first.slo.clone(),
        summaries,
    };
    Ok((report, stats))
}
