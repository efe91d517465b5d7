//! Builds the jobs of a scenario (topologies × replications), runs them in parallel with rayon, and
//! assembles the results in job order, so any `--jobs` writes the same bytes.

use crate::metrics::{RunResult, new_latency_histogram, summarize};
use crate::model::simulate;
use crate::report::Report;
use crate::scenario::Scenario;
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

/// One single-threaded simulation: a topology in a replication.
#[derive(Clone, Copy, Debug)]
struct Job {
    topology: usize,
    replication: u32,
}

fn jobs(scenario: &Scenario) -> Vec<Job> {
    (0..scenario.topologies.len())
        .flat_map(|topology| {
            (0..scenario.replications).map(move |replication| Job {
                topology,
                replication,
            })
        })
        .collect()
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
    scenario: &Scenario,
    options: &RunOptions,
    per_job: impl Fn(Job, RunResult) -> T + Sync,
) -> Result<Vec<T>, RunError> {
    let jobs = jobs(scenario);
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
    execute(scenario, options, |_, result| result)
}

/// Runs a scenario and aggregates each topology's replications. Only each run's scalar figures are
/// kept; histograms are merged as runs finish. Merging adds integer counts, so the pooled histogram
/// is the same in any completion order, and the output stays identical for any `--jobs`.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<(Report, RunStats), RunError> {
    let pooled: Vec<Mutex<Histogram<u64>>> = scenario
        .topologies
        .iter()
        .map(|_| Mutex::new(new_latency_histogram()))
        .collect();
    let started = Instant::now();
    let per_job = execute(scenario, options, |job, result| {
        pooled[job.topology]
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
    let values: Vec<Vec<f64>> = per_job.into_iter().map(|(values, _, _)| values).collect();
    let replications = scenario.replications as usize;
    let summaries = scenario
        .topologies
        .iter()
        .zip(values.chunks(replications))
        .zip(pooled)
        .map(|((topology, runs), histogram)| {
            let histogram = histogram
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner);
            summarize(
                &topology.name,
                topology.state.name(),
                runs.to_vec(),
                histogram,
            )
        })
        .collect();
    let report = Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        scenario_hash: scenario.source_hash,
        summaries,
    };
    Ok((report, stats))
}
