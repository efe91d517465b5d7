//! statesim-testbed: plays a statesim scenario on a real deployment on 127.0.0.1 (HAProxy, Redis,
//! backends of this program) and compares what it measures with the simulation.

mod backend;
mod calibrate;
mod compare;
mod deployment;
mod haproxy;
mod http;
mod jwt;
mod load;
mod measure;
mod orchestrate;
mod plan;
mod procs;
mod resp;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "statesim-testbed",
    version,
    about = "Play a statesim scenario on a real HAProxy + Redis deployment on 127.0.0.1 and \
             compare the measurements with the calibrated simulation",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run each topology on a real deployment, calibrate the simulation to it, compare.
    ///
    /// Supported: constant session arrivals; state in server memory (sticky or not), in one
    /// Redis, in an RS256 JWT, or none; HAProxy policies round_robin, random, least_connections, power_of_two,
    /// consistent_hash and sticky, with retries, redispatch and health checks; `crash` (kill -9)
    /// and `hang` (kill -STOP) faults with a restart; client timeouts and retries. Anything else
    /// is refused before a process starts (exit code 2).
    Run(RunArgs),
    /// Turn a deployment's request log into the scenario keys that feed it to the simulation.
    ///
    /// Reads CSV files with a testbed run's requests.csv columns (latency_ms, backend_us,
    /// busy_us; optional store_get_us, store_set_us, attempts, outcome), writes the empirical
    /// samples into --out and prints the `--set` flags that use them (also in overrides.txt).
    Calibrate(CalibrateArgs),
    /// A backend server (started by `run`; not for use by hand).
    #[command(hide = true)]
    Backend(BackendArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// Override a scenario key, as `statesim run --set` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Play only this topology (repeatable; default: every topology).
    #[arg(long, value_name = "NAME")]
    topology: Vec<String>,
    /// Testbed runs of each topology (each lasts the scenario's duration, in real time).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Replications of the calibrated simulation.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    sim_replications: u32,
    /// Where measured/, simulated/, calibration/, work/ (configurations and logs) and
    /// testbed.csv go [default: results/testbed/SCENARIO-NAME].
    #[arg(long)]
    out: Option<PathBuf>,
    /// A folder besides the scenario's own that its files may be read from.
    #[arg(long, value_name = "DIR")]
    allow_path: Vec<PathBuf>,
    /// The HAProxy program.
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// The Redis server program.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct CalibrateArgs {
    /// Request logs (CSV), pooled.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// Where the samples and overrides.txt go.
    #[arg(long, default_value = "results/calibration")]
    out: PathBuf,
    /// The store's own mean service time in microseconds, taken out of each round trip
    /// (the scenario's store read time).
    #[arg(long, default_value_t = 0.0, value_name = "MICROSECONDS")]
    store_service_us: f64,
    /// A token topology that gets the log's verification times (`verify_us`) as its
    /// verify_time (repeatable).
    #[arg(long, value_name = "NAME")]
    token_topology: Vec<String>,
}

#[derive(Args, Debug)]
struct BackendArgs {
    scenario: PathBuf,
    #[arg(long)]
    topology: String,
    #[arg(long)]
    port: u16,
    /// Where the balancer's health checks are answered.
    #[arg(long)]
    check_port: u16,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    redis_port: Option<u16>,
    /// The fleet's JWT private and public keys (PEM), for the token state.
    #[arg(long, requires = "jwt_public")]
    jwt_key: Option<PathBuf>,
    #[arg(long)]
    jwt_public: Option<PathBuf>,
    #[arg(long = "set")]
    set: Vec<String>,
    #[arg(long)]
    allow_path: Vec<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Calibrate(args) => calibrate(args),
        Command::Backend(args) => backend(args),
    };
    std::process::exit(code);
}

fn run(args: RunArgs) -> i32 {
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(error) => {
            eprintln!("error: cannot find this program to start backends: {error}");
            return 1;
        }
    };
    let config = orchestrate::RunConfig {
        scenario: args.scenario.clone(),
        overrides: args.set.clone(),
        allowed_dirs: args.allow_path.clone(),
        topologies: args.topology,
        runs: args.runs,
        out: args.out,
        sim_replications: args.sim_replications,
        programs: deployment::Programs {
            haproxy: args.haproxy,
            redis: args.redis_server,
            backend: deployment::BackendCommand {
                program,
                scenario: args.scenario,
                overrides: args.set,
                allowed_dirs: args.allow_path,
            },
        },
        quiet: args.quiet,
    };
    match orchestrate::run(&config) {
        Ok(_) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}

fn calibrate(args: CalibrateArgs) -> i32 {
    let mut samples = calibrate::Samples::default();
    for log in &args.logs {
        if let Err(error) = samples.read_log(log) {
            eprintln!("error: {error}");
            return 2;
        }
    }
    if samples.service.is_empty() {
        eprintln!("error: no successful request in the logs: nothing to calibrate from");
        return 2;
    }
    match calibrate::write(
        &samples,
        &args.out,
        args.store_service_us.max(0.0),
        &args.token_topology,
    ) {
        Ok(overrides) => {
            for line in overrides {
                println!("--set '{line}'");
            }
            eprintln!(
                "{} requests: service time median {:.0} us, hop overhead median {:.0} us; \
                 samples in {} (pass --allow-path {} to statesim run)",
                samples.service.len(),
                calibrate::median(&samples.service),
                calibrate::median(&samples.hop),
                args.out.display(),
                args.out.display()
            );
            0
        }
        Err(error) => {
            eprintln!("error: cannot write {}: {error}", args.out.display());
            1
        }
    }
}

fn backend(args: BackendArgs) -> i32 {
    let options = statesim::scenario::LoadOptions {
        overrides: args.set,
        allowed_dirs: args.allow_path,
        ..Default::default()
    };
    let loaded = statesim::scenario::load_points_file(&args.scenario, &options)
        .map_err(|e| e.to_string())
        .and_then(|mut points| {
            let scenario = points.remove(0).scenario;
            let plan = plan::plan(&scenario, std::slice::from_ref(&args.topology))
                .map_err(|e| e.to_string())?;
            Ok((scenario, plan))
        });
    let (scenario, plan) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("backend: {error}");
            return 2;
        }
    };
    let topology = &plan.topologies[0];
    let keys = match (&topology.state, &args.jwt_key, &args.jwt_public) {
        (plan::StateMode::Token { token_bytes }, Some(private), Some(public)) => {
            match jwt::Keys::load(private, public, *token_bytes) {
                Ok(keys) => Some(std::sync::Arc::new(keys)),
                Err(error) => {
                    eprintln!("backend: cannot read the JWT keys: {error}");
                    return 1;
                }
            }
        }
        _ => None,
    };
    let config = backend::BackendConfig {
        workers: topology.workers,
        queue_limit: topology.queue_limit,
        state: topology.state.clone(),
        redis_port: args.redis_port,
        service_time: scenario.workload.service_time.clone(),
        seed: args.seed,
        keys,
    };
    backend::tighten_timer_slack();
    let served = std::net::TcpListener::bind(("127.0.0.1", args.check_port))
        .map(backend::serve_checks)
        .and_then(|()| std::net::TcpListener::bind(("127.0.0.1", args.port)))
        .and_then(|listener| backend::serve(listener, config));
    match served {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("backend on port {}: {error}", args.port);
            1
        }
    }
}
