//! Builds the jobs of a scenario (topologies × replications), runs them in parallel with rayon, and
//! assembles the results in job order, so any `--jobs` writes the same bytes.

use crate::metrics::{RunResult, summarize};
use crate::model::simulate;
use crate::report::Report;
use crate::scenario::Scenario;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

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
    bar
}

/// Runs every job of the scenario and returns the per-run results in job order.
pub fn run_jobs(scenario: &Scenario, options: &RunOptions) -> Result<Vec<RunResult>, RunError> {
    let jobs = jobs(scenario);
    let threads = options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| RunError::ThreadPool {
            jobs: threads,
            source,
        })?;
    let bar = progress_bar(jobs.len(), options.progress);
    let results = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let topology = &scenario.topologies[job.topology];
                let result = simulate(scenario, topology, job.replication);
                bar.inc(1);
                result
            })
            .collect()
    });
    bar.finish_and_clear();
    Ok(results)
}

/// Runs a scenario and aggregates each topology's replications.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Report, RunError> {
    let results = run_jobs(scenario, options)?;
    let replications = scenario.replications as usize;
    let summaries = scenario
        .topologies
        .iter()
        .zip(results.chunks(replications))
        .map(|(topology, runs)| summarize(topology.state.name(), runs))
        .collect();
    Ok(Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        summaries,
    })
}
