//! Builds the jobs of a scenario (topologies × replications), runs them in parallel with rayon, and
//! assembles the results in job order, so any `--jobs` writes the same bytes.

use crate::engine::SimTime;
use crate::metrics::{RunFigures, RunResult, new_latency_histogram, summarize};
use crate::model::{Limits, Stopped, latency_per_second, simulate_within};
use crate::report::Report;
use crate::scenario::{Scenario, SweepPoint};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Worker threads; `None` uses every available core.
    pub jobs: Option<usize>,
    /// Show a progress bar on stderr (the caller decides: terminal, not quiet, not CI).
    pub progress: bool,
    /// Run only every `count`-th job starting at `index` (`--shard INDEX/COUNT`).
    pub shard: Option<Shard>,
    /// What the runs may use (shared by every run, pilots and rounds included).
    pub limits: Arc<Limits>,
}

/// One of `count` disjoint parts of a run's jobs (`--shard index/count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start {jobs} worker threads: {source}")]
    ThreadPool {
        jobs: usize,
        source: rayon::ThreadPoolBuildError,
    },
    #[error("{0}")]
    Stopped(Stopped),
}

impl RunError {
    /// Whether `--time-limit` stopped the run (rather than the scenario being too big).
    pub fn is_time_limit(&self) -> bool {
        matches!(self, RunError::Stopped(Stopped::TimeLimit))
    }
}

/// The first reason a run stopped, in job order; a run stopped only because another did
/// (`Cancelled`) names no reason of its own.
fn first_stop<T>(outputs: Vec<Result<T, Stopped>>) -> Result<Vec<T>, RunError> {
    let mut reason: Option<Stopped> = None;
    let mut done = Vec::with_capacity(outputs.len());
    for output in outputs {
        match output {
            Ok(value) => done.push(value),
            Err(stopped) => {
                if reason.as_ref().is_none_or(|r| *r == Stopped::Cancelled) {
                    reason = Some(stopped);
                }
            }
        }
    }
    match reason {
        Some(stopped) => Err(RunError::Stopped(stopped)),
        None => Ok(done),
    }
}

/// How much simulating a run did and how fast (`--stats`). Never written to result files: the
/// timing differs from machine to machine, the results must not.
#[derive(Clone, Debug, Default)]
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
/// Each point runs replications `first..` its own count (or `until`, when given).
fn jobs(points: &[&Scenario], first: u32, until: Option<u32>) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (point, scenario) in points.iter().enumerate() {
        for topology in 0..scenario.topologies.len() {
            for replication in first..until.unwrap_or(scenario.replications) {
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

/// A bar over the simulated time of every job (in ms), so one long run moves it too; the
/// message counts finished runs.
fn progress_bar(total_ms: u64, runs: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_ms.max(1)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% of simulated time, {msg}, ETA {eta}",
        )
        .expect("static progress template is valid"),
    );
    bar.set_message(format!("0/{runs} runs"));
    bar.tick(); // draw at once, not only after the first run finishes
    bar
}

/// Moves `bar` to the simulated time the runs have got through since `started_ms` (the limits
/// are shared by the rounds of `--precision`), ten times a second, until `done` is set. Runs
/// beside the pool, on its own thread: the runs only add to a counter.
fn follow_progress(bar: &ProgressBar, limits: &Limits, started_ms: u64, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        bar.set_position((limits.simulated_nanos() / 1_000_000).saturating_sub(started_ms));
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

/// The pool `--jobs` asks for.
fn thread_pool(options: &RunOptions) -> Result<rayon::ThreadPool, RunError> {
    let threads = threads(options.jobs);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| RunError::ThreadPool {
            jobs: threads,
            source,
        })
}

/// The threads `--jobs` asks for (every core without it).
pub fn threads(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs every job of the scenario on the pool and returns `per_job(job, result)` in job order.
fn execute<T: Send>(
    points: &[&Scenario],
    replications: (u32, Option<u32>),
    options: &RunOptions,
    per_job: impl Fn(Job, RunResult) -> T + Sync,
) -> Result<Vec<T>, RunError> {
    let mut jobs = jobs(points, replications.0, replications.1);
    if let Some(shard) = options.shard {
        jobs = jobs
            .into_iter()
            .enumerate()
            .filter(|(number, _)| number % shard.count == shard.index)
            .map(|(_, job)| job)
            .collect();
    }
    let pool = thread_pool(options)?;
    let limits = &options.limits;
    let total_ms: u64 = jobs
        .iter()
        .map(|job| points[job.point].duration.nanos() / 1_000_000)
        .sum();
    let bar = progress_bar(total_ms, jobs.len(), options.progress);
    let started = limits.simulated_nanos() / 1_000_000;
    let finished = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let outputs = std::thread::scope(|scope| {
        let follower = (!bar.is_hidden()).then(|| {
            let bar = bar.clone();
            let done = &done;
            scope.spawn(move || follow_progress(&bar, limits, started, done))
        });
        let outputs = pool.install(|| {
            jobs.par_iter()
                .map(|&job| {
                    let scenario = points[job.point];
                    let topology = &scenario.topologies[job.topology];
                    let result = simulate_within(scenario, topology, job.replication, limits)
                        .inspect_err(|stopped| limits.cancel_unless_own(stopped))?;
                    let count = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    bar.set_message(format!("{count}/{} runs", jobs.len()));
                    Ok(per_job(job, result))
                })
                .collect()
        });
        done.store(true, Ordering::Relaxed);
        if let Some(follower) = follower {
            follower.thread().unpark();
        }
        outputs
    });
    bar.finish_and_clear();
    first_stop(outputs)
}

/// Runs every job and returns the full per-run results in job order (topology-major). Each result
/// holds a latency histogram; for many replications prefer [`run`], which keeps memory flat.
pub fn run_jobs(scenario: &Scenario, options: &RunOptions) -> Result<Vec<RunResult>, RunError> {
    execute(&[scenario], (0, None), options, |_, result| result)
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
    let collected = run_replications(points, 0, None, options)?;
    let stats = collected.stats.clone();
    Ok((assemble(points, collected), stats))
}

/// Where each point's topologies start in a flat (point, topology) list, and its length.
fn topology_slots(scenarios: &[&Scenario]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::with_capacity(scenarios.len());
    let mut total = 0;
    for scenario in scenarios {
        offsets.push(total);
        total += scenario.topologies.len();
    }
    (offsets, total)
}

/// One shard's share of a run: each of its runs' figures, keyed by (point, topology,
/// replication), and each (point, topology)'s histogram of those runs.
pub struct ShardResults {
    pub runs: Vec<((usize, usize, u32), RunFigures)>,
    pub histograms: Vec<((usize, usize), Histogram<u64>)>,
    pub stats: RunStats,
}

/// Runs the jobs of `options.shard` only, keeping what [`merge_shards`] needs.
pub fn run_shard(points: &[SweepPoint], options: &RunOptions) -> Result<ShardResults, RunError> {
    let scenarios: Vec<&Scenario> = points.iter().map(|point| &point.scenario).collect();
    let started = Instant::now();
    let per_job = execute(&scenarios, (0, None), options, |job, result| (job, result))?;
    let mut histograms: Vec<((usize, usize), Histogram<u64>)> = Vec::new();
    let mut runs = Vec::new();
    let mut stats = RunStats {
        simulations: per_job.len(),
        threads: threads(options.jobs),
        ..RunStats::default()
    };
    for (job, result) in per_job {
        stats.events += result.events;
        stats.requests += result.requests_simulated;
        let slot = (job.point, job.topology);
        match histograms.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, histogram)) => histogram
                .add(&result.latency)
                .expect("auto-resizing histograms of equal precision always merge"),
            None => histograms.push((slot, result.latency.clone())),
        }
        let key = (job.point, job.topology, job.replication);
        runs.push((key, result.into_figures()));
    }
    stats.elapsed = started.elapsed();
    Ok(ShardResults {
        runs,
        histograms,
        stats,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("the shards do not cover the run: {0}")]
    Incomplete(String),
}

/// Puts shards back together into the report the whole run would have given: runs in job order,
/// histograms summed (integer counts: the same in any order). Every job must be present once.
pub fn merge_shards(
    points: &[SweepPoint],
    shards: Vec<ShardResults>,
) -> Result<Report, MergeError> {
    let scenarios: Vec<&Scenario> = points.iter().map(|point| &point.scenario).collect();
    let (offsets, total_topologies) = topology_slots(&scenarios);
    let mut runs: Vec<Vec<(u32, RunFigures)>> = vec![Vec::new(); total_topologies];
    let mut histograms: Vec<Histogram<u64>> = (0..total_topologies)
        .map(|_| new_latency_histogram())
        .collect();
    let slot = |point: usize, topology: usize| -> Result<usize, MergeError> {
        let within = scenarios
            .get(point)
            .is_some_and(|s| topology < s.topologies.len());
        if within {
            Ok(offsets[point] + topology)
        } else {
            Err(MergeError::Incomplete(format!(
                "a run of point {point}, topology {topology}, which the scenario does not have"
            )))
        }
    };
    for shard in shards {
        for ((point, topology, replication), values) in shard.runs {
            runs[slot(point, topology)?].push((replication, values));
        }
        for ((point, topology), histogram) in shard.histograms {
            histograms[slot(point, topology)?]
                .add(&histogram)
                .expect("auto-resizing histograms of equal precision always merge");
        }
    }
    let mut ordered = Vec::new();
    for (point, scenario) in scenarios.iter().enumerate() {
        for topology in 0..scenario.topologies.len() {
            let mut these = std::mem::take(&mut runs[offsets[point] + topology]);
            these.sort_by_key(|(replication, _)| *replication);
            let replications: Vec<u32> = these.iter().map(|(r, _)| *r).collect();
            if replications != (0..scenario.replications).collect::<Vec<_>>() {
                return Err(MergeError::Incomplete(format!(
                    "point {point}, topology \"{}\" has replications {replications:?}, expected 0..{}",
                    scenario.topologies[topology].name, scenario.replications
                )));
            }
            ordered.push(these.into_iter().map(|(_, values)| values).collect());
        }
    }
    let collected = Collected {
        runs: ordered,
        histograms,
        stats: RunStats::default(),
    };
    Ok(assemble(points, collected))
}

/// What some replications of every (point, topology) produced, in (point, topology) order: each
/// run's figures in replication order and the runs' pooled latency histogram.
struct Collected {
    runs: Vec<Vec<RunFigures>>,
    histograms: Vec<Histogram<u64>>,
    stats: RunStats,
}

impl Collected {
    /// Appends a later batch of replications (same points and topologies).
    fn extend(&mut self, later: Collected) {
        for (runs, more) in self.runs.iter_mut().zip(later.runs) {
            runs.extend(more);
        }
        for (histogram, more) in self.histograms.iter_mut().zip(&later.histograms) {
            histogram
                .add(more)
                .expect("auto-resizing histograms of equal precision always merge");
        }
        self.stats.simulations += later.stats.simulations;
        self.stats.events += later.stats.events;
        self.stats.requests += later.stats.requests;
        self.stats.elapsed += later.stats.elapsed;
    }
}

/// Runs replications `first..until` (each point's own count without `until`) of every point.
/// Histograms are merged as runs finish: merging adds integer counts, so the result is the same
/// in any completion order, and the output is identical for any `--jobs`.
fn run_replications(
    points: &[SweepPoint],
    first: u32,
    until: Option<u32>,
    options: &RunOptions,
) -> Result<Collected, RunError> {
    let scenarios: Vec<&Scenario> = points.iter().map(|point| &point.scenario).collect();
    // One pooled histogram per (point, topology), found from the point's offset.
    let (offsets, total_topologies) = topology_slots(&scenarios);
    let pooled: Vec<Mutex<Histogram<u64>>> = (0..total_topologies)
        .map(|_| Mutex::new(new_latency_histogram()))
        .collect();
    let started = Instant::now();
    let per_job = execute(&scenarios, (first, until), options, |job, result| {
        pooled[offsets[job.point] + job.topology]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(&result.latency)
            .expect("auto-resizing histograms of equal precision always merge");
        let slot = offsets[job.point] + job.topology;
        let (events, requests) = (result.events, result.requests_simulated);
        (slot, result.into_figures(), events, requests)
    })?;
    let stats = RunStats {
        simulations: per_job.len(),
        threads: threads(options.jobs),
        events: per_job.iter().map(|(_, _, events, _)| events).sum(),
        requests: per_job.iter().map(|(_, _, _, requests)| requests).sum(),
        elapsed: started.elapsed(),
    };
    let mut runs = vec![Vec::new(); total_topologies];
    for (slot, values, _, _) in per_job {
        runs[slot].push(values); // jobs come back in job order: replications in order
    }
    let histograms = pooled
        .into_iter()
        .map(|histogram| {
            histogram
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
        })
        .collect();
    Ok(Collected {
        runs,
        histograms,
        stats,
    })
}

/// The report of everything collected: one summary per (point, topology).
fn assemble(points: &[SweepPoint], collected: Collected) -> Report {
    let mut runs = collected.runs.into_iter();
    let mut histograms = collected.histograms.into_iter();
    let mut summaries = Vec::new();
    for point in points {
        let params: Vec<String> = point
            .params
            .iter()
            .map(|(_, value)| value.clone())
            .collect();
        for topology in &point.scenario.topologies {
            let (Some(runs), Some(histogram)) = (runs.next(), histograms.next()) else {
                unreachable!("one slot per (point, topology)");
            };
            let mut summary = summarize(&topology.name, topology.state.name(), runs, histogram);
            summary.params = params.clone();
            summary.servers = topology.servers.count;
            summary.placement = topology.state.placement();
            summaries.push(summary);
        }
    }
    let first = &points[0].scenario;
    Report {
        scenario: first.name.clone(),
        description: first.description.clone(),
        seed: first.seed,
        scenario_hash: first.source_hash,
        sweep_keys: points[0]
            .params
            .iter()
            .map(|(key, _)| key.clone())
            .collect(),
        series_fixed: points[0].series_fixed,
        slo: first.slo.clone(),
        fault_kinds: first
            .faults
            .iter()
            .map(|fault| fault.kind())
            .chain(first.autoscale.as_ref().map(|_| "autoscale"))
            .collect(),
        summaries,
    }
}

const PILOT_REPLICATIONS: u32 = 5;

/// Resolves `warmup = "auto"`: a pilot run (replication 0, no warm-up) of every topology of each
/// such point records its mean latency per second, MSER-5 picks where the transient ends, and
/// the point's warm-up becomes the latest of its topologies' cuts (one window for all, so the
/// topologies stay comparable). Returns each point's chosen warm-up (`None` where it was fixed).
/// Deterministic: the pilots are ordinary seeded runs, so shards and merges agree.
pub fn resolve_auto_warmup(
    points: &mut [SweepPoint],
    options: &RunOptions,
) -> Result<Vec<Option<SimTime>>, RunError> {
    let pilots: Vec<(usize, usize)> = points
        .iter()
        .enumerate()
        .filter(|(_, point)| point.scenario.warmup_auto)
        .flat_map(|(index, point)| (0..point.scenario.topologies.len()).map(move |t| (index, t)))
        .collect();
    let pool = thread_pool(options)?;
    let limits = &options.limits;
    let cuts = pool.install(|| {
        pilots
            .par_iter()
            .map(|&(index, topology)| {
                let scenario = &points[index].scenario;
                let series =
                    latency_per_second(scenario, &scenario.topologies[topology], 0, limits)
                        .inspect_err(|stopped| limits.cancel_unless_own(stopped))?;
                Ok((index, crate::stats::mser5_truncation(&series) as u64))
            })
            .collect()
    });
    let cuts: Vec<(usize, u64)> = first_stop(cuts)?;
    let mut chosen = vec![None; points.len()];
    for (index, seconds) in cuts {
        let cut = SimTime::from_secs(seconds);
        let slot = chosen[index].get_or_insert(SimTime::ZERO);
        *slot = (*slot).max(cut);
    }
    for (point, cut) in points.iter_mut().zip(&chosen) {
        if let Some(cut) = cut {
            point.scenario.warmup = *cut;
        }
    }
    Ok(chosen)
}

/// A precision target for the sequential procedure: the 95% interval of `metric` within
/// `relative` of its mean, for every topology (and sweep point) where the metric is defined.
#[derive(Clone, Debug)]
pub struct PrecisionTarget {
    pub metric: usize,
    pub relative: f64,
}

/// How the sequential procedure ended.
#[derive(Clone, Debug)]
pub struct PrecisionOutcome {
    pub replications: u32,
    /// The worst remaining (metric name, relative half-width, wanted) when the cap stopped it.
    pub unmet: Option<(&'static str, f64, f64)>,
}

/// Runs replications until every target holds, or `max_replications` is reached. Each round
/// estimates the replications needed from the widest interval (half-widths shrink as 1/sqrt(n)),
/// so it usually ends in two or three rounds. Replication `r` is the same run in every round, so
/// the result depends only on the scenario, never on `--jobs` or the rounds.
pub fn run_to_precision(
    points: &[SweepPoint],
    targets: &[PrecisionTarget],
    max_replications: u32,
    options: &RunOptions,
) -> Result<(Report, RunStats, PrecisionOutcome), RunError> {
    // A pilot of at least 5: with fewer, Student's t (12.7 at 2 replications) makes the first
    // interval so wide that the estimate of what is needed overshoots.
    let start = points
        .iter()
        .map(|p| p.scenario.replications)
        .max()
        .unwrap_or(PILOT_REPLICATIONS)
        .max(PILOT_REPLICATIONS)
        .min(max_replications.max(2));
    let mut collected = run_replications(points, 0, Some(start), options)?;
    let mut done = start;
    loop {
        let worst = widest_interval(&collected, targets);
        let finished = worst.is_none_or(|(_, ratio, _)| ratio <= 1.0) || done >= max_replications;
        if finished {
            let unmet = worst
                .filter(|(_, ratio, _)| *ratio > 1.0)
                .map(|(target, _, half)| {
                    let name = crate::metrics::METRICS[target.metric].name;
                    (name, half, target.relative)
                });
            let stats = collected.stats.clone();
            let outcome = PrecisionOutcome {
                replications: done,
                unmet,
            };
            return Ok((assemble(points, collected), stats, outcome));
        }
        let (_, ratio, _) = worst.expect("not finished, so a target is unmet");
        let needed = (f64::from(done) * ratio * ratio * 1.1).ceil() as u32;
        // At most 4x per round: the estimate is itself noisy.
        let next = needed.clamp(done + 1, max_replications.min(done * 4).max(done + 1));
        collected.extend(run_replications(points, done, Some(next), options)?);
        done = next;
    }
}

/// The target furthest from holding: (target, half-width / wanted half-width, relative
/// half-width). `None` when no target applies (the metric is undefined everywhere).
fn widest_interval<'t>(
    collected: &Collected,
    targets: &'t [PrecisionTarget],
) -> Option<(&'t PrecisionTarget, f64, f64)> {
    let mut worst: Option<(&PrecisionTarget, f64, f64)> = None;
    for runs in &collected.runs {
        for target in targets {
            let values: Vec<f64> = runs
                .iter()
                .map(|run| run.values[target.metric])
                .filter(|v| !v.is_nan())
                .collect();
            let (mean, half_width) = crate::stats::mean_and_half_width(&values, 0.95);
            if mean.is_nan() || half_width.is_nan() {
                continue;
            }
            let relative = if mean == 0.0 {
                if half_width == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                half_width / mean.abs()
            };
            let ratio = relative / target.relative;
            if worst.is_none_or(|(_, r, _)| ratio > r) {
                worst = Some((target, ratio, relative));
            }
        }
    }
    worst
}
