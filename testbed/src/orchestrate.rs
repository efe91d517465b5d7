//! `statesim-testbed run`: every chosen topology of a scenario played on a real deployment
//! `runs` times, its figures written as `statesim run` writes them (measured/), the deployment's
//! calibration (calibration/), the calibrated simulation (simulated/), and both side by side
//! (stdout, testbed.csv).

use crate::calibrate::{self, Samples};
use crate::compare;
use crate::deployment::{Deployment, Programs};
use crate::load::{self, Recorded};
use crate::measure::{self, BalancerCounts};
use crate::plan::{FaultPlan, Plan, StateMode, TopologyPlan, plan};
use statesim::metrics::{TopologySummary, new_latency_histogram, summarize};
use statesim::model::Limits;
use statesim::report::{Exporter, LatencyCsv, ReplicationsCsv, Report, SummaryCsv};
use statesim::run::RunOptions;
use statesim::scenario::{LoadOptions, Scenario, ScenarioError, load_points_file};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub scenario: PathBuf,
    pub overrides: Vec<String>,
    pub allowed_dirs: Vec<PathBuf>,
    pub topologies: Vec<String>,
    pub runs: u32,
    /// `--out`; `None`: results/testbed/SCENARIO-NAME.
    pub out: Option<PathBuf>,
    pub sim_replications: u32,
    pub programs: Programs,
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Unsupported(#[from] crate::plan::Unsupported),
    #[error(
        "{program} is needed and was not found ({source}); on Debian: apt-get install {package}"
    )]
    Missing {
        program: String,
        package: &'static str,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("the testbed run failed: {0}")]
    Run(String),
    #[error("the calibrated simulation failed: {0}")]
    Simulation(#[from] statesim::run::RunError),
    #[error("interrupted; every process the testbed started was stopped")]
    Interrupted,
}

impl TestbedError {
    /// 2 for a scenario the testbed refuses, 1 for a run that failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            TestbedError::Scenario(_) | TestbedError::Unsupported(_) => 2,
            _ => 1,
        }
    }
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestbedError {
    let what = what.into();
    move |source| TestbedError::Io { what, source }
}

fn load(config: &RunConfig, extra: &[String]) -> Result<Scenario, ScenarioError> {
    let options = LoadOptions {
        overrides: config.overrides.iter().chain(extra).cloned().collect(),
        allowed_dirs: config.allowed_dirs.clone(),
        ..LoadOptions::default()
    };
    Ok(load_points_file(&config.scenario, &options)?
        .remove(0)
        .scenario)
}

/// Checks a program answers `--version` (`-v` for HAProxy) before anything starts.
fn check_program(program: &Path, flag: &str, package: &'static str) -> Result<(), TestbedError> {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .map(|_| ())
        .map_err(|source| TestbedError::Missing {
            program: program.display().to_string(),
            package,
            source,
        })
}

pub fn run(config: &RunConfig) -> Result<Vec<compare::Row>, TestbedError> {
    let scenario = load(config, &[])?;
    let plan = plan(&scenario, &config.topologies)?;
    check_programs(config, &plan)?;
    let out = config.out.clone().unwrap_or_else(|| {
        Path::new("results/testbed").join(statesim::report::safe_file_name(&scenario.name))
    });
    std::fs::create_dir_all(&out).map_err(io_error(format!("cannot create {}", out.display())))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_error("cannot start the load generator's runtime"))?;
    let mut samples = Samples::default();
    let summaries = plan
        .topologies
        .iter()
        .map(|topology| play_topology(config, &plan, topology, &out, &runtime, &mut samples))
        .collect::<Result<Vec<_>, _>>()?;
    let measured = report(&scenario, summaries);
    write(&measured, &out.join("measured"), &measured_exporters())?;
    let simulated = simulate_calibrated(config, &scenario, &plan, &samples, &out)?;
    write(
        &simulated,
        &out.join("simulated"),
        &statesim::report::default_exporters(),
    )?;
    let rows = compare::rows(&measured.summaries, &simulated.summaries);
    let path = out.join("testbed.csv");
    std::fs::File::create(&path)
        .and_then(|file| compare::write_csv(&rows, file))
        .map_err(io_error(format!("cannot write {}", path.display())))?;
    if !config.quiet {
        eprintln!("{}", calibration_summary(&samples));
    }
    let heading = format!(
        "{}: testbed ({} runs of {:?}) vs simulation (calibrated, {} replications)\n",
        plan.scenario, config.runs, plan.duration, config.sim_replications
    );
    std::io::stdout()
        .lock()
        .write_all((heading + &compare::table(&rows)).as_bytes())
        .map_err(io_error("cannot write the comparison to stdout"))?;
    Ok(rows)
}

/// Checks, before anything starts, that the programs the plan needs are installed.
fn check_programs(config: &RunConfig, plan: &Plan) -> Result<(), TestbedError> {
    let any = |state: fn(&StateMode) -> bool| plan.topologies.iter().any(|t| state(&t.state));
    check_program(&config.programs.haproxy, "-v", "haproxy")?;
    if any(|state| matches!(state, StateMode::Redis { .. })) {
        check_program(&config.programs.redis, "--version", "redis-server")?;
    }
    if any(|state| matches!(state, StateMode::Token { .. })) {
        check_program(Path::new("openssl"), "version", "openssl")?;
    }
    Ok(())
}

/// Every run of one topology: each run's requests.csv in its work folder, its timings added to
/// the calibration's samples, and the runs summarised as `statesim run` summarises
/// replications.
fn play_topology(
    config: &RunConfig,
    plan: &Plan,
    topology: &TopologyPlan,
    out: &Path,
    runtime: &tokio::runtime::Runtime,
    samples: &mut Samples,
) -> Result<TopologySummary, TestbedError> {
    let mut runs = Vec::new();
    let mut pooled = new_latency_histogram();
    for replication in 0..config.runs {
        if !config.quiet {
            eprintln!(
                "testbed: {} run {}/{} ({:?} of load)",
                topology.name,
                replication + 1,
                config.runs,
                plan.duration
            );
        }
        let name = statesim::report::safe_file_name(&topology.name);
        let dir = out.join("work").join(format!("{name}-{replication}"));
        let (recorded, counts) =
            runtime.block_on(one_run(config, plan, topology, replication, &dir))?;
        let requests = dir.join("requests.csv");
        std::fs::File::create(&requests)
            .and_then(|file| recorded.write_requests(std::io::BufWriter::new(file)))
            .map_err(io_error(format!("cannot write {}", requests.display())))?;
        samples.add(&recorded);
        let (figures, latency) = measure::figures(&recorded, plan, topology, counts);
        pooled
            .add(&latency)
            .map_err(|e| TestbedError::Run(e.to_string()))?;
        runs.push(figures);
    }
    Ok(summarize(
        &topology.name,
        topology.state.name(),
        runs,
        pooled,
    ))
}

/// The scenario simulated with the deployment's calibration (calibration/ in the results
/// folder), only the topologies the testbed played kept.
fn simulate_calibrated(
    config: &RunConfig,
    scenario: &Scenario,
    plan: &Plan,
    samples: &Samples,
    out: &Path,
) -> Result<Report, TestbedError> {
    let calibration_dir = out.join("calibration");
    let token_topologies: Vec<String> = plan
        .topologies
        .iter()
        .filter(|t| matches!(t.state, StateMode::Token { .. }))
        .map(|t| t.name.clone())
        .collect();
    let mut extra = calibrate::write(
        samples,
        &calibration_dir,
        store_service_us(scenario),
        &token_topologies,
    )
    .map_err(io_error("cannot write the calibration"))?;
    extra.push(format!("replications={}", config.sim_replications));
    let mut calibrated_config = config.clone();
    calibrated_config
        .allowed_dirs
        .push(std::path::absolute(&calibration_dir).map_err(io_error("calibration folder"))?);
    let calibrated = load(&calibrated_config, &extra)?;
    // The simulation's cost is bounded by what the deployment just did in real time.
    let options = RunOptions {
        jobs: None,
        progress: false,
        shard: None,
        limits: Arc::new(Limits::unlimited()),
    };
    let (mut simulated, _) = statesim::run::run(&calibrated, &options)?;
    simulated
        .summaries
        .retain(|s| plan.topologies.iter().any(|t| t.name == s.topology));
    Ok(simulated)
}

/// The calibration's medians, for stderr.
fn calibration_summary(samples: &Samples) -> String {
    let mut text = format!(
        "calibrated: service time median {:.0} us, hop overhead median {:.0} us round trip",
        calibrate::median(&samples.service),
        calibrate::median(&samples.hop),
    );
    if !samples.store_round_trip.is_empty() {
        text.push_str(&format!(
            ", Redis round trip median {:.0} us",
            calibrate::median(&samples.store_round_trip)
        ));
    }
    if !samples.verify.is_empty() {
        text.push_str(&format!(
            ", token verification median {:.0} us",
            calibrate::median(&samples.verify)
        ));
    }
    text
}

/// The store's mean service time (µs), taken out of each measured Redis round trip.
fn store_service_us(scenario: &Scenario) -> f64 {
    scenario
        .topologies
        .iter()
        .find_map(|t| t.store())
        .and_then(|store| store.read.mean())
        .map_or(0.0, |nanos| nanos / 1e3)
}

fn measured_exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(SummaryCsv),
        Box::new(ReplicationsCsv),
        Box::new(LatencyCsv),
    ]
}

fn report(scenario: &Scenario, summaries: Vec<TopologySummary>) -> Report {
    Report {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        seed: scenario.seed,
        scenario_hash: scenario.source_hash,
        sweep_keys: Vec::new(),
        series_fixed: 0,
        slo: Vec::new(),
        fault_kinds: Vec::new(),
        summaries,
    }
}

fn write(report: &Report, dir: &Path, exporters: &[Box<dyn Exporter>]) -> Result<(), TestbedError> {
    statesim::output::write_results(report, dir, exporters)
        .map(|_| ())
        .map_err(io_error(format!("cannot write {}", dir.display())))
}

/// One run: a fresh deployment, the load played with the faults injected on time, HAProxy's
/// counters read, and everything stopped (when the deployment is dropped, on every path).
async fn one_run(
    config: &RunConfig,
    plan: &Plan,
    topology: &TopologyPlan,
    replication: u32,
    dir: &Path,
) -> Result<(Recorded, Option<BalancerCounts>), TestbedError> {
    let seed = plan.seed ^ u64::from(replication).wrapping_mul(0x9E37_79B9);
    let mut deployment = Deployment::start(
        topology,
        plan.workload.idempotent,
        &config.programs,
        dir,
        seed,
    )
    .map_err(io_error(format!(
        "cannot start the deployment for {}",
        topology.name
    )))?;
    wait_until_served(&deployment).await?;
    let start = tokio::time::Instant::now();
    let frontend = deployment.frontend();
    let played = async {
        let load = load::play(plan, replication, frontend, start);
        let faults = inject_faults(&mut deployment, &plan.faults, start, plan.duration);
        let (recorded, injected) = tokio::join!(load, faults);
        injected.and(recorded.map_err(TestbedError::Run))
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io_error("cannot watch for SIGTERM"))?;
    // Interrupted or terminated: the deployment is dropped on the way out, which stops and reaps
    // every process it started.
    let recorded = tokio::select! {
        recorded = played => recorded?,
        _ = tokio::signal::ctrl_c() => return Err(TestbedError::Interrupted),
        _ = terminate.recv() => return Err(TestbedError::Interrupted),
    };
    if let Some(why) = deployment.exited_on_its_own() {
        return Err(TestbedError::Run(why));
    }
    Ok((recorded, deployment.balancer_counts()))
}

/// Waits until the balancer answers an empty request (its servers are in rotation).
async fn wait_until_served(deployment: &Deployment) -> Result<(), TestbedError> {
    let frontend = deployment.frontend();
    for _ in 0..200 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(frontend).await {
            use tokio::io::AsyncWriteExt;
            let request = b"GET /ping HTTP/1.1\r\nHost: testbed\r\nConnection: close\r\n\r\n";
            if stream.write_all(request).await.is_ok()
                && let Ok(head) = load::get_head(&mut stream).await
                && head.status == 200
            {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(TestbedError::Run(
        "the balancer did not answer an empty request within 10 s".into(),
    ))
}

/// Injects each fault at its time from `start`, and restarts its server `restart_after` later.
async fn inject_faults(
    deployment: &mut Deployment,
    faults: &[FaultPlan],
    start: tokio::time::Instant,
    end: Duration,
) -> Result<(), TestbedError> {
    enum Step {
        Inject(FaultPlan),
        Restart(u32),
    }
    let mut steps: Vec<(Duration, Step)> = Vec::new();
    for fault in faults {
        steps.push((fault.at, Step::Inject(*fault)));
        if let Some(after) = fault.restart_after {
            steps.push((fault.at.saturating_add(after), Step::Restart(fault.server)));
        }
    }
    steps.retain(|(at, _)| *at < end);
    steps.sort_by_key(|(at, _)| *at);
    for (at, step) in steps {
        tokio::time::sleep_until(start + at).await;
        match step {
            Step::Inject(fault) => deployment.inject(&fault),
            Step::Restart(server) => deployment
                .restart(server)
                .map_err(io_error(format!("cannot restart backend {server}")))?,
        }
    }
    Ok(())
}
