//! Conservation over random scenarios: whatever mix of state placements, faults, timeouts,
//! retries and autoscaling, every request ends in exactly one outcome or is still in flight,
//! every session is completed, lost (for exactly one cause) or still active, and nothing panics.

use proptest::prelude::*;
use statesim::metrics::RunResult;
use statesim::scenario::load_str;
use std::path::Path;

#[derive(Debug, Clone)]
struct Shape {
    servers: u32,
    workers: u32,
    queue_limit: Option<u32>,
    rate: u32,
    requests: u32,
    duration_s: u32,
    warmup_s: u32,
    timeout_ms: Option<u32>,
    max_attempts: u32,
    jitter: usize,
    budget: Option<u32>,
    relogin: bool,
    policy: usize,
    states: Vec<usize>,
    faults: Vec<(usize, u32, u32)>,
    memory_kb: Option<u32>,
    autoscale: bool,
    outlier: bool,
    hedge_ms: Option<u32>,
    zones: u32,
    zone_affinity: bool,
    same_zone: bool,
}

const POLICIES: [&str; 6] = [
    "round_robin",
    "random",
    "least_connections",
    "power_of_two",
    "consistent_hash",
    "sticky",
];
const JITTERS: [&str; 4] = ["none", "full", "equal", "decorrelated"];

/// The state placements the topologies draw from (`{n}` is the topology's index).
const STATES: [&str; 7] = [
    "state = \"none\"",
    "state = \"server\"\nsession_ttl = \"5s\"",
    "state = \"server\"\nreplication = \"sync\"\nwrite_fraction = 0.5",
    "state = \"server\"\nreplication = \"async\"\nreplication_lag = \"300ms\"",
    "state = \"server\"\nreplication = \"store_backup\"\nstore = { shards = 2, workers = 1, read = \"1ms\", write = \"1ms\", queue_limit = 3 }",
    "state = \"store\"\nstore = { shards = 3, hot_share = 0.5, workers = 1, read = \"1ms\", write = \"1ms\", write_fraction = 0.3 }\ncache = { capacity = 5, ttl = \"2s\" }",
    "state = \"token\"",
];

fn shape() -> impl Strategy<Value = Shape> {
    (
        (
            1u32..6,
            1u32..3,
            proptest::option::of(0u32..4),
            2u32..40,
            1u32..6,
        ),
        (
            10u32..40,
            0u32..8,
            proptest::option::of(5u32..400),
            1u32..4,
            0usize..4,
        ),
        (proptest::option::of(1u32..50), any::<bool>(), 0usize..6),
        proptest::collection::vec(0usize..STATES.len(), 1..4),
        proptest::collection::vec((0usize..10, 0u32..100, 0u32..100), 0..4),
        (
            proptest::option::of(20u32..200),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(5u32..200),
        ),
        (1u32..4, any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (servers, workers, queue_limit, rate, requests),
                (duration_s, warmup_s, timeout_ms, max_attempts, jitter),
                (budget, relogin, policy),
                states,
                faults,
                (memory_kb, autoscale, outlier, hedge_ms),
                (zones, zone_affinity, same_zone),
            )| Shape {
                servers,
                workers,
                queue_limit,
                rate,
                requests,
                duration_s,
                warmup_s,
                timeout_ms,
                max_attempts,
                jitter,
                budget,
                relogin,
                policy,
                states,
                faults,
                memory_kb,
                autoscale,
                outlier,
                hedge_ms,
                zones,
                zone_affinity,
                same_zone,
            },
        )
}

fn scenario_text(shape: &Shape) -> String {
    let mut text = format!(
        "name = \"random\"\nseed = 3\nduration = \"{}s\"\nwarmup = \"{}s\"\n",
        shape.duration_s,
        shape.warmup_s.min(shape.duration_s - 1)
    );
    text += &format!(
        "[workload]\nsessions_per_second = {}\nrequests_per_session = {{ dist = \"geometric\", mean = {} }}\n\
         think_time = {{ dist = \"exponential\", mean = \"300ms\" }}\n\
         service_time = {{ dist = \"exponential\", mean = \"20ms\" }}\non_session_lost = \"{}\"\n",
        shape.rate,
        shape.requests,
        if shape.relogin { "relogin" } else { "abandon" }
    );
    text += &format!(
        "[client]\nmax_attempts = {}\nbackoff = {{ base = \"10ms\", cap = \"200ms\", jitter = \"{}\" }}\n",
        shape.max_attempts, JITTERS[shape.jitter]
    );
    if let Some(timeout) = shape.timeout_ms {
        text += &format!("timeout = \"{timeout}ms\"\n");
    }
    if let Some(hedge) = shape.hedge_ms {
        text += &format!("hedge_after = \"{hedge}ms\"\n");
    }
    if let Some(budget) = shape.budget {
        text += &format!("retry_budget = {}\n", f64::from(budget) / 100.0);
    }
    text += "[network]\nbalancer_server = \"1ms\"\nserver_server = \"1ms\"\nserver_store = \"1ms\"\ncross_zone = \"500us\"\n";
    text += &format!(
        "[servers]\ncount = {}\nworkers = {}\nzones = {}\n",
        shape.servers, shape.workers, shape.zones
    );
    if let Some(limit) = shape.queue_limit {
        text += &format!("queue_limit = {limit}\n");
    }
    if let Some(kb) = shape.memory_kb {
        text += &format!(
            "memory_mb = {}\non_memory_full = \"evict_lru\"\n",
            f64::from(kb) / 1024.0
        );
    }
    text += &format!(
        "[balancer]\npolicy = \"{}\"\nfallback = \"round_robin\"\nzone_affinity = {}\n[balancer.health_check]\ninterval = \"2s\"\nunhealthy_threshold = 2\ntimeout = \"500ms\"\n",
        POLICIES[shape.policy], shape.zone_affinity
    );
    if shape.outlier {
        text += "[balancer.outlier]\nconsecutive_failures = 2\nejection_time = \"1s\"\nmax_ejected_percent = 50\n";
    }
    if shape.autoscale {
        text += &format!(
            "[autoscale]\ntarget_utilization = 0.5\nmin = 1\nmax = {}\nsync_period = \"3s\"\nscale_down_stabilization = \"6s\"\nstartup = \"1s\"\ndrain = \"2s\"\n",
            shape.servers + 3
        );
    }
    for (index, state) in shape.states.iter().enumerate() {
        let mut state = STATES[*state].to_string();
        if shape.servers < 2 {
            state = state.replace("replication = \"sync\"", "replication = \"none\"");
        }
        // Replicas by zone: in another one whenever there are two (every zone then has a server
        // and another zone does too), in the same one when every zone has two servers.
        let placement = if shape.same_zone && shape.servers >= 2 * shape.zones {
            Some("same_zone")
        } else if shape.zones >= 2 && shape.servers >= 2 {
            Some("other_zone")
        } else {
            None
        };
        if let Some(placement) = placement
            && (state.contains("\"sync\"") || state.contains("\"async\""))
        {
            state += &format!("\nreplica_placement = \"{placement}\"");
        }
        text += &format!("[[topology]]\nname = \"t{index}\"\n{state}\n");
    }
    let mut pausing = false;
    for &(kind, at, extra) in &shape.faults {
        let at_s = f64::from(at) / 100.0 * f64::from(shape.duration_s - 1);
        let server = extra % shape.servers;
        let fault = match kind {
            0 => format!(
                "kind = \"crash\"\nat = \"{at_s}s\"\nserver = {server}\nrestart_after = \"{}s\"",
                extra % 7 + 1
            ),
            1 if shape.timeout_ms.is_some() => format!(
                "kind = \"hang\"\nat = \"{at_s}s\"\nserver = {server}\nrestart_after = \"{}s\"",
                extra % 5 + 1
            ),
            1 => format!("kind = \"crash\"\nat = \"{at_s}s\"\nserver = {server}"),
            2 => "kind = \"random_crashes\"\nmtbf = \"8s\"\nmttr = \"1s\"".to_string(),
            3 => format!(
                "kind = \"rolling_restart\"\nat = \"{at_s}s\"\nbatch = {}\ninterval = \"2s\"\ndrain = \"1s\"\nstartup = \"500ms\"",
                extra % 3 + 1
            ),
            4 => format!(
                "kind = \"scale\"\nat = \"{at_s}s\"\ncount = {}\ndrain = \"1s\"",
                extra % 6 + 1
            ),
            6 => format!(
                "kind = \"slow\"\nat = \"{at_s}s\"\nserver = {server}\nfactor = {}\nduration = \"{}s\"",
                extra % 9 + 1,
                extra % 5 + 1
            ),
            // A balancer partition needs a client timeout; a store or peers partition is valid
            // only beside a topology it can affect, which a random mix may lack: store and peers
            // come with a crash of the same server, which every topology has.
            8 if shape.timeout_ms.is_some() => format!(
                "kind = \"partition\"\nat = \"{at_s}s\"\nserver = {server}\nduration = \"{}s\"\nfrom = \"balancer\"",
                extra % 5 + 1
            ),
            8 if shape.states.iter().any(|state| matches!(state, 4 | 5)) => format!(
                "kind = \"partition\"\nat = \"{at_s}s\"\nserver = {server}\nfrom = \"store\""
            ),
            8 if shape.servers >= 2 && shape.states.iter().any(|state| matches!(state, 2 | 3)) => {
                format!(
                    "kind = \"partition\"\nat = \"{at_s}s\"\nserver = {server}\nfrom = \"peers\""
                )
            }
            9 => format!(
                "kind = \"zone_outage\"\nat = \"{at_s}s\"\nzone = {}{}",
                extra % shape.zones,
                if extra % 2 == 0 {
                    format!(
                        "\nduration = \"{}s\"{}",
                        extra % 5 + 1,
                        if extra % 4 == 0 {
                            "\nstore_failover = \"500ms\""
                        } else {
                            ""
                        }
                    )
                } else {
                    String::new()
                }
            ),
            // One pause clock per server: one `pauses` fault per scenario here.
            7 if !pausing => {
                pausing = true;
                format!(
                    "kind = \"pauses\"\nat = \"{at_s}s\"\nevery = \"{}ms\"\npause = \"{}ms\"",
                    500 + extra * 10,
                    extra % 400 + 1
                )
            }
            // A store outage needs a topology with a store (STATES 4 and 5) to be valid.
            _ if shape.states.iter().any(|state| matches!(state, 4 | 5)) => format!(
                "kind = \"store_outage\"\nat = \"{at_s}s\"\nduration = \"{}s\"\nwipes = {}{}",
                extra % 4 + 1,
                extra % 2 == 0,
                // Every store here has at least 2 shards: sometimes one of them fails alone.
                if extra % 3 == 0 { "\nshard = 1" } else { "" }
            ),
            _ => format!("kind = \"crash\"\nat = \"{at_s}s\"\nserver = {server}"),
        };
        text += &format!("[[fault]]\n{fault}\n");
    }
    text
}

fn check_conservation(run: &RunResult) -> Result<(), TestCaseError> {
    run.counters
        .conservation()
        .map_err(|broken| TestCaseError::fail(format!("{}: {broken}", run.topology)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_random_scenario_conserves_requests_and_sessions(shape in shape()) {
        let text = scenario_text(&shape);
        let scenario = load_str(&text, "random.toml", Path::new("."), &[])
            .map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
        for topology in &scenario.topologies {
            let run = statesim::model::simulate(&scenario, topology, 0);
            check_conservation(&run)?;
        }
    }
}
