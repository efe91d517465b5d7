//! Faults, recovery and replication against what theory and the mechanisms promise: availability
//! under random crashes, sessions lost per crash, replication that loses nothing (sync) or the
//! writes within its lag (async), health-check detection windows, drains, outages, the
//! autoscaler, caches and retries.

use super::support::{
    Finished, load, metric, number, project_path, read_csv, run_ok, simulate, simulate_text,
};
use statesim::metrics::RunResult;

fn run_scenario(name: &str) -> Finished {
    let path = project_path(&format!("scenarios/{name}.toml"));
    run_ok(&[path.to_str().unwrap(), "--quiet"])
}

fn by_name<'a>(runs: &'a [RunResult], name: &str) -> &'a RunResult {
    runs.iter()
        .find(|r| r.topology == name)
        .expect("topology exists")
}

/// A light fleet: 8 servers of 2 workers, sessions of 5 requests 10 s apart.
fn fleet(duration: &str, rate: f64, topologies_and_faults: &str) -> String {
    format!(
        r#"name = "fleet"
seed = 7
duration = "{duration}"
[workload]
sessions_per_second = {rate}
requests_per_session = 5
think_time = {{ dist = "exponential", mean = "10s" }}
service_time = {{ dist = "exponential", mean = "5ms" }}
[servers]
count = 8
workers = 2
[balancer.health_check]
interval = "10s"
unhealthy_threshold = 3
timeout = "1s"
{topologies_and_faults}"#
    )
}

#[test]
fn random_crashes_give_the_availability_mtbf_over_mtbf_plus_mttr() {
    // Renewal theory: the long-run share of time up is MTBF / (MTBF + MTTR) whatever the
    // distribution of the time to failure (exponential, or a wear-out Weibull).
    for time_to_failure in [
        "\"10m\"",
        "{ dist = \"weibull\", mean = \"10m\", shape = 2 }",
    ] {
        let text = fleet(
            "24h",
            1.0,
            &format!(
                r#"[[topology]]
name = "plain"
state = "none"
[[fault]]
kind = "random_crashes"
mtbf = {time_to_failure}
mttr = {{ dist = "exponential", mean = "1m" }}
"#
            ),
        );
        let runs = simulate_text(&text);
        let measured = metric(&runs[0], "server_availability");
        let (mtbf, mttr): (f64, f64) = (10.0, 1.0);
        let expected = mtbf / (mtbf + mttr);
        // Renewal-reward: the estimate ΣU/Σ(U+D) over N cycles has variance
        // Var((1-A)U - A·D) / (N·E[U+D]²); with exponential up (U) and down (D) times (the
        // Weibull's up times vary less, so this bound is conservative for it).
        let cycles = 8.0 * 24.0 * 60.0 / (mtbf + mttr);
        let variance = ((1.0 - expected).powi(2) * mtbf * mtbf + expected.powi(2) * mttr * mttr)
            / (cycles * (mtbf + mttr).powi(2));
        let tolerance = 3.0 * variance.sqrt();
        assert!(
            (measured - expected).abs() < tolerance,
            "mtbf = {time_to_failure}: availability {measured:.4}, expected {expected:.4} ± {tolerance:.4}"
        );
    }
}

#[test]
fn a_crash_loses_the_active_sessions_of_one_server() {
    let text = fleet(
        "6h",
        20.0,
        r#"[[topology]]
name = "sticky"
state = "server"
balancer = { policy = "sticky", fallback = "round_robin" }
[[fault]]
kind = "random_crashes"
mtbf = "20m"
mttr = "30s"
"#,
    );
    let runs = simulate_text(&text);
    let run = &runs[0];
    let losses: Vec<f64> = run.faults.iter().map(|row| row[6]).collect();
    let n = losses.len() as f64;
    assert!(n > 100.0, "{n} crashes");
    let mean = losses.iter().sum::<f64>() / n;
    let sd = (losses.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    // Little's law gives the active sessions; a crash takes those homed on one of the servers up.
    let expected = run.mean_active_sessions / run.mean_servers_up;
    // Three standard errors, plus 5% for what the ratio leaves out: a restarted server refills
    // over one session lifetime (~40 s of a 20-minute cycle), and new sessions sent to a dead
    // server during the ~25 s before detection are placed elsewhere later.
    let tolerance = 3.0 * sd / n.sqrt() + 0.05 * expected;
    assert!(
        (mean - expected).abs() < tolerance,
        "{mean:.1} sessions lost per crash, expected {expected:.1} ± {tolerance:.1}"
    );
}

#[test]
fn sync_replication_and_the_hybrid_lose_no_session_to_a_single_server_loss() {
    for file in ["crash", "hang", "rolling-restart", "scale"] {
        let scenario = load(&format!("scenarios/{file}.toml"), &[]);
        let runs = simulate(&scenario);
        let lost = |name| metric(by_name(&runs, name), "sessions_lost");
        assert!(
            lost("stateful") > 100.0,
            "{file}: the control loses sessions"
        );
        for name in [
            "stateful-sync",
            "hybrid",
            "stateless-store",
            "stateless-token",
        ] {
            assert_eq!(lost(name), 0.0, "{file}: {name} lost sessions");
        }
        for name in ["stateful-sync", "hybrid"] {
            let moved = metric(by_name(&runs, name), "sessions_failed_over");
            assert!(moved > 100.0, "{file}: {name} failed over {moved} sessions");
        }
    }
}

/// `bytes_per_request` counts store traffic: the hybrid's write-through copy goes to the store
/// (every request writes here), a replica on a peer server is not store traffic.
#[test]
fn the_hybrids_write_through_is_store_traffic_and_a_replica_copy_replication_traffic() {
    let text = fleet(
        "60s",
        20.0,
        r#"[[topology]]
name = "hybrid"
state = "server"
session_bytes = 4000
replication = "store_backup"
write_fraction = 1.0
store = { workers = 1, read = "100us", write = "100us" }
balancer = { policy = "sticky", fallback = "round_robin" }
[[topology]]
name = "sync"
state = "server"
session_bytes = 4000
replication = "sync"
write_fraction = 1.0
balancer = { policy = "sticky", fallback = "round_robin" }"#,
    );
    let runs = simulate_text(&text);
    // Every request changes its session: the hybrid writes it through to the store, sync
    // replication copies it to its one replica.
    let (hybrid, sync) = (by_name(&runs, "hybrid"), by_name(&runs, "sync"));
    assert_eq!(metric(hybrid, "store_bytes_per_request"), 4000.0);
    assert_eq!(metric(hybrid, "replication_bytes_per_request"), 0.0);
    assert_eq!(metric(sync, "replication_bytes_per_request"), 4000.0);
    assert_eq!(metric(sync, "store_bytes_per_request"), 0.0);
    assert_eq!(metric(sync, "bytes_per_request"), 4000.0);
}

#[test]
fn async_replication_loses_the_sessions_written_within_its_lag() {
    let topologies = r#"[[topology]]
name = "none"
state = "server"
balancer = { policy = "sticky", fallback = "round_robin" }
[[topology]]
name = "async"
state = "server"
replication = "async"
replication_lag = "1s"
balancer = { policy = "sticky", fallback = "round_robin" }
[[fault]]
kind = "crash"
at = "5m"
server = 3
"#;
    let text = fleet("6m", 40.0, topologies).replace("seed = 7", "seed = 7\nreplications = 4");
    let scenario = statesim::scenario::load_str(&text, "t", std::path::Path::new("."), &[])
        .expect("valid scenario");
    let runs = simulate(&scenario);
    let total = |name: &str, column: &str| -> f64 {
        runs.iter()
            .filter(|r| r.topology == name)
            .map(|r| metric(r, column))
            .sum()
    };
    let homed = total("none", "sessions_lost_crash");
    let lagging = total("async", "sessions_lost_replication_lag");
    assert_eq!(total("async", "sessions_lost_crash"), 0.0);
    // Every request writes; between requests a session thinks for an exponential 10 s, so the
    // chance that its last write is under 1 s old is 1 - e^(-1/10) (age of a Poisson renewal).
    let expected = 1.0 - (-0.1f64).exp();
    let share = lagging / homed;
    // Binomial sampling error, plus 0.02 for sessions younger than the lag (their first write is
    // recent by construction; sessions last ~40 s).
    let tolerance = 3.0 * (expected * (1.0 - expected) / homed).sqrt() + 0.02;
    assert!(
        (share - expected).abs() < tolerance,
        "{lagging} of {homed} homed sessions lost to the lag: {share:.3}, expected {expected:.3} ± {tolerance:.3}"
    );
}

#[test]
fn detection_takes_between_threshold_minus_one_and_threshold_intervals_plus_the_timeout() {
    for (threshold, interval) in [(1u32, 5.0f64), (2, 10.0), (3, 10.0), (4, 7.0)] {
        for kind in ["crash", "hang"] {
            let faults = if kind == "crash" {
                "[[fault]]\nkind = \"random_crashes\"\nmtbf = \"10m\"\nmttr = \"2m\"\n".to_string()
            } else {
                (0..8)
                    .map(|server| {
                        format!(
                            "[[fault]]\nkind = \"hang\"\nat = \"{}s\"\nserver = {server}\nrestart_after = \"2m\"\n",
                            100 + 37 * server
                        )
                    })
                    .collect()
            };
            let text = fleet(
                "2h",
                2.0,
                &format!("[client]\ntimeout = \"2s\"\n[[topology]]\nname = \"plain\"\nstate = \"none\"\n{faults}"),
            )
            .replace("interval = \"10s\"", &format!("interval = \"{interval}s\""))
            .replace("unhealthy_threshold = 3", &format!("unhealthy_threshold = {threshold}"));
            let runs = simulate_text(&text);
            let timeout = 1.0;
            let low = f64::from(threshold - 1) * interval;
            let high = f64::from(threshold) * interval + if kind == "hang" { timeout } else { 0.0 };
            let detected: Vec<f64> = runs[0]
                .faults
                .iter()
                .filter(|row| !row[3].is_nan())
                .map(|row| row[3] - row[2])
                .collect();
            assert!(
                detected.len() >= 8,
                "{kind}: only {} detections",
                detected.len()
            );
            for delay in detected {
                assert!(
                    (low..=high).contains(&delay),
                    "{kind}, threshold {threshold}, interval {interval}s: detected after {delay}s, not in [{low}, {high}]"
                );
            }
        }
    }
}

#[test]
fn a_drain_longer_than_any_session_loses_none_and_a_short_one_loses_the_homed_sessions() {
    let deploy = |drain: &str| {
        fleet(
            "5m",
            10.0,
            &format!(
                r#"[[topology]]
name = "sticky"
state = "server"
balancer = {{ policy = "sticky", fallback = "round_robin" }}
[[fault]]
kind = "rolling_restart"
at = "60s"
batch = 4
interval = "10s"
drain = "{drain}"
"#
            ),
        )
        .replace(
            "think_time = { dist = \"exponential\", mean = \"10s\" }",
            "think_time = \"5s\"",
        )
    };
    // Sessions of 5 requests 5 s apart last about 20 s.
    let long = simulate_text(&deploy("60s"));
    assert_eq!(metric(&long[0], "sessions_lost"), 0.0);
    let short = simulate_text(&deploy("5s"));
    assert!(metric(&short[0], "sessions_lost_drain") > 50.0);
    assert_eq!(
        metric(&short[0], "sessions_lost_drain"),
        metric(&short[0], "sessions_lost")
    );
}

#[test]
fn a_store_outage_fails_every_store_request_while_it_lasts() {
    let finished = run_scenario("store-outage");
    let rows = read_csv(&finished.out("timeseries.csv"));
    let in_outage = |row: &std::collections::BTreeMap<String, String>| {
        let t: f64 = row["time_s"].parse().unwrap();
        // From the second bucket on: requests that read the store before 180 s may finish in it.
        (181.0..209.0).contains(&t)
    };
    for row in rows.iter().filter(|r| in_outage(r)) {
        let count = |c: &str| row[c].parse::<f64>().unwrap();
        match row["topology"].as_str() {
            "stateless-store" => assert_eq!(count("ok"), 0.0, "{row:?}"),
            "stateless-token" | "stateful" => assert_eq!(count("store_unavailable"), 0.0),
            _ => {}
        }
    }
    let store = finished.topology("stateless-store");
    let faults = read_csv(&finished.out("faults.csv"));
    let outage = faults
        .iter()
        .find(|r| r["topology"] == "stateless-store")
        .expect("a fault row");
    assert_eq!(outage["kind"], "store_outage");
    assert_eq!(outage["recovered_at_s"], "210");
    assert_eq!(
        number(&store, "store_unavailable"),
        outage["requests_failed"].parse::<f64>().unwrap()
    );
}

/// Two outages overlap (10–40 s, and 20–30 s that wipes): the store stays down until the last
/// ends and comes back empty then. One faults.csv row covers both, in every topology.
#[test]
fn overlapping_store_outages_keep_the_store_down_until_the_last_one_ends() {
    let text = fleet(
        "60s",
        50.0,
        r#"[[topology]]
name = "store"
state = "store"
store = { workers = 1, read = "100us", write = "100us" }
[[topology]]
name = "token"
state = "token"
[[fault]]
kind = "store_outage"
at = "10s"
duration = "30s"
[[fault]]
kind = "store_outage"
at = "20s"
duration = "10s"
wipes = true"#,
    );
    let runs = simulate_text(&text);
    let column = |name: &str| {
        statesim::metrics::SERIES_COLUMNS
            .iter()
            .position(|c| *c == name)
            .expect("a timeseries column")
    };
    let (ok, unavailable) = (column("ok"), column("store_unavailable"));
    let store = by_name(&runs, "store");
    // Between the end of the short outage (30 s) and of the long one (40 s): still down.
    for row in &store.series[31..39] {
        assert_eq!(row[ok], 0.0, "{row:?}");
        assert!(row[unavailable] > 0.0, "{row:?}");
    }
    assert!(store.series[45][ok] > 0.0, "back after 40 s");
    // It came back empty at 40 s: the sessions the store held were lost then, not at 30 s.
    assert!(metric(store, "sessions_lost_store_outage") > 0.0);
    for run in &runs {
        let [row] = run.faults.as_slice() else {
            panic!("one faults.csv row in {}: {:?}", run.topology, run.faults);
        };
        let (start, recovered) = (row[2], row[4]);
        assert_eq!((start, recovered), (10.0, 40.0), "{}", run.topology);
    }
}

#[test]
fn the_autoscaler_settles_at_the_fleet_its_target_asks_for() {
    let finished = run_scenario("autoscale");
    let rows = read_csv(&finished.out("timeseries.csv"));
    for topology in ["stateful", "stateless-token"] {
        let last = rows.iter().rfind(|r| r["topology"] == topology).unwrap();
        // 16 servers at ~30% busy with a 60% target: 8 servers.
        assert_eq!(last["servers_running"], "8", "{topology}");
    }
    let lost = |name| number(&finished.topology(name), "sessions_lost_scale_in");
    assert!(lost("stateful") > 500.0);
    assert_eq!(lost("stateful-sync"), 0.0);
    assert_eq!(lost("stateless-store"), 0.0);
}

#[test]
fn after_a_scale_out_sticky_sessions_leave_the_new_servers_underused() {
    let finished = run_scenario("scale");
    let rows = read_csv(&finished.out("timeseries.csv"));
    let mean_imbalance = |topology: &str| {
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r["topology"] == topology)
            .filter(|r| (175.0..215.0).contains(&r["time_s"].parse::<f64>().unwrap()))
            .map(|r| r["load_imbalance"].parse::<f64>().unwrap())
            .collect();
        values.iter().sum::<f64>() / values.len() as f64
    };
    let sticky = mean_imbalance("stateful");
    let even = mean_imbalance("stateless-token");
    assert!(
        sticky > 1.3 && even < 1.1,
        "sticky {sticky:.2}, stateless {even:.2}"
    );
}

#[test]
fn a_cache_helps_only_with_affinity() {
    let finished = run_scenario("store-cache");
    let hits = |name| number(&finished.topology(name), "cache_hit_ratio");
    assert!(hits("store-cache-round-robin") < 0.25);
    assert!(hits("store-cache-sticky") > 0.75);
    assert!(hits("store-cache-consistent-hash") > 0.75);
    let load = |name| number(&finished.topology(name), "store_utilization");
    assert!(load("store-cache-sticky") < 0.5 * load("store"));
}

#[test]
fn retries_stay_within_max_attempts_and_the_budget() {
    let scenario = load("scenarios/hang.toml", &[]);
    for run in simulate(&scenario) {
        let (requests, attempts) = (metric(&run, "requests"), metric(&run, "attempts"));
        assert!(
            attempts > requests && attempts <= 3.0 * requests,
            "{}",
            run.topology
        );
    }
    let budgeted = load("scenarios/hang.toml", &["client.retry_budget=0.001"]);
    for run in simulate(&budgeted) {
        let retries = metric(&run, "attempts") - metric(&run, "requests");
        // The budget counts the warm-up's requests too; the window holds two thirds of the run.
        assert!(
            retries <= 0.001 * metric(&run, "requests") * 1.5 + 1.0,
            "{}: {retries} retries",
            run.topology
        );
    }
    let once = load("scenarios/hang.toml", &["client.max_attempts=1"]);
    for run in simulate(&once) {
        assert_eq!(metric(&run, "attempts"), metric(&run, "requests"));
        assert_eq!(metric(&run, "retry_amplification"), 1.0);
    }
}

/// A balancer's retries decide who notices a crash (the testbed behind this: HAProxy with
/// `option redispatch` and its default `retries 3`, 4 backends, Redis, kill -9; not one request
/// of the store fleet failed, and the sticky fleet failed exactly its lost sessions). With
/// idempotent requests even the resets of the requests in flight are redispatched, so a
/// round-robin fleet with a store fails nothing; sticky sessions fail once per session lost,
/// because a redispatched request reaches a server without its state; and without retries every
/// request routed to the dead server before detection fails.
#[test]
fn balancer_retries_absorb_a_crash_for_a_stateless_fleet_but_not_for_lost_sessions() {
    let topologies = r#"[workload.extra]
[[topology]]
name = "store"
state = "store"
[[topology]]
name = "sticky"
state = "server"
balancer = { policy = "sticky" }
[[fault]]
kind = "crash"
at = "60s"
server = 2
restart_after = "60s"
"#;
    let text = fleet("180s", 40.0, topologies)
        .replace("[workload.extra]\n", "")
        .replace("service_time = {", "idempotent = true\nservice_time = {");
    let runs = simulate_text(&text);
    let (store, sticky) = (by_name(&runs, "store"), by_name(&runs, "sticky"));
    assert!(
        store.counters.requests_to_dead_server > 20,
        "{:?}",
        store.counters
    );
    assert_eq!(store.counters.failed, 0, "{:?}", store.counters);
    assert!(store.counters.balancer_retries >= store.counters.requests_to_dead_server);
    assert!(metric(sticky, "sessions_lost") > 10.0);
    assert_eq!(
        sticky.counters.failed, sticky.counters.sessions_lost,
        "one failed request per session lost and none for new sessions: {:?}",
        sticky.counters
    );

    // Not idempotent: a reset is not retried, so the store fleet fails what was in flight.
    let not_idempotent = simulate_text(&text.replace("idempotent = true\n", ""));
    let store = by_name(&not_idempotent, "store");
    assert!(store.counters.failed <= 4, "{:?}", store.counters);

    // No retries: every request routed to the dead server before detection fails.
    let without = simulate_text(&text.replace(
        "[balancer.health_check]",
        "[balancer]\nretries = 0\n[balancer.health_check]",
    ));
    let store = by_name(&without, "store");
    assert_eq!(store.counters.balancer_retries, 0);
    assert!(
        store.counters.failed >= store.counters.requests_to_dead_server,
        "{:?}",
        store.counters
    );
}

/// A sticky request whose home is dead is retried on its home after the pause (HAProxy's
/// one-second turn-around), and only its last retry is redispatched: with `retries = 3`, three
/// refused tries and a fourth elsewhere, which fails for want of its session.
#[test]
fn sticky_retries_wait_on_the_home_before_redispatching() {
    let text = r#"name = "pause"
duration = "40s"
[workload]
sessions_per_second = 5
requests_per_session = 20
think_time = "500ms"
service_time = "1ms"
[servers]
count = 2
[balancer]
policy = "sticky"
retry_pause = "1s"
[balancer.health_check]
interval = "30s"
unhealthy_threshold = 3
[[topology]]
name = "sticky"
state = "server"
[[fault]]
kind = "crash"
at = "10s"
server = 0
"#;
    let run = &simulate_text(text)[0];
    let c = &run.counters;
    // Each session homed on the dead server meets it once more: its try and 2 retries there,
    // then the last retry elsewhere, which fails for want of the session. A new session placed
    // there (least connections favours a server that answers at once) is refused once and
    // redispatched at once. Either way every refused try is retried exactly once.
    assert!(c.sessions_lost > 5, "{c:?}");
    assert_eq!(c.failed, c.sessions_lost, "{c:?}");
    assert_eq!(c.requests_to_dead_server, c.balancer_retries, "{c:?}");
    assert!(
        c.balancer_retries > 3 * c.sessions_lost,
        "new sessions redispatched: {c:?}"
    );

    // The two pauses on the home take 2 s: a client that waits 1.5 s gives up first, unless the
    // pause is short.
    let impatient = text.replace("[servers]", "[client]\ntimeout = \"1500ms\"\n[servers]");
    let waited = &simulate_text(&impatient)[0];
    assert!(waited.counters.timed_out > 0, "{:?}", waited.counters);
    let short =
        &simulate_text(&impatient.replace("retry_pause = \"1s\"", "retry_pause = \"100ms\""))[0];
    assert_eq!(short.counters.timed_out, 0, "{:?}", short.counters);
}

/// A hung server accepts connections and answers nothing. A balancer with a `server_timeout`
/// gives up on it first: a 504, or with `timeout` in `retry_on` (idempotent requests) a retry
/// elsewhere, so the clients see no failure at all; without one, every request sent there waits
/// for the client's own timeout.
#[test]
fn a_balancer_timeout_turns_a_hang_into_a_504_or_a_retry() {
    let topologies = r#"[[topology]]
name = "store"
state = "store"
[[fault]]
kind = "hang"
at = "60s"
server = 2
restart_after = "60s"
"#;
    let text = fleet("180s", 40.0, topologies)
        .replace("service_time = {", "idempotent = true\nservice_time = {")
        .replace("[servers]", "[client]\ntimeout = \"5s\"\n[servers]");
    let with = |balancer: &str| {
        let text = text.replace(
            "[balancer.health_check]",
            &format!("[balancer]\n{balancer}\n[balancer.health_check]"),
        );
        simulate_text(&text).remove(0).counters
    };
    // What was sent there, plus the few it held when it hung (2 workers, a short queue).
    let sent_there = |c: &statesim::metrics::Counters, n: u64| {
        (c.requests_to_dead_server..=c.requests_to_dead_server + 4).contains(&n)
    };
    let waits = with("");
    assert!(waits.requests_to_dead_server > 20, "{waits:?}");
    assert!(sent_there(&waits, waits.timed_out), "{waits:?}");
    let gives_up = with("server_timeout = \"1s\"");
    assert_eq!(gives_up.timed_out, 0, "{gives_up:?}");
    assert!(sent_there(&gives_up, gives_up.failed), "{gives_up:?}");
    let retries =
        with("server_timeout = \"1s\"\nretry_on = [\"connect_failure\", \"reset\", \"timeout\"]");
    assert_eq!(retries.timed_out + retries.failed, 0, "{retries:?}");
    assert!(
        retries.balancer_retries >= retries.requests_to_dead_server,
        "{retries:?}"
    );
}

#[test]
fn outlier_ejection_stops_routing_to_a_dead_server_without_waiting_for_probes() {
    // The quickstart's crash without balancer retries: round robin keeps sending to the dead
    // server until three 10-second probes fail (21 s). With Envoy-style outlier ejection after 5
    // failed answers in a row, the balancer takes it out at the fifth: the one request the crash
    // reset and four refused connections.
    let base = [
        "--quiet",
        "--set",
        "duration=60s",
        "--set",
        "warmup=5s",
        "--set",
        "fault.0.at=20s",
        "--set",
        "balancer.retries=0",
    ];
    let probes_only = run_ok(&base);
    let mut with_outlier = base.to_vec();
    with_outlier.extend(["--set", "balancer.outlier={consecutive_failures = 5}"]);
    let ejecting = run_ok(&with_outlier);
    for topology in ["stateless-store", "stateless-token"] {
        let slow = probes_only.topology(topology);
        let fast = ejecting.topology(topology);
        assert!(
            number(&slow, "failed") > 1000.0,
            "{topology}: {}",
            slow["failed"]
        );
        assert_eq!(number(&fast, "failed"), 5.0, "{topology}");
        assert_eq!(number(&fast, "outlier_ejections"), 1.0, "{topology}");
        assert_eq!(number(&slow, "outlier_ejections"), 0.0);
        let detected = |run: &super::support::Finished| {
            let rows = read_csv(&run.out("faults.csv"));
            let row = rows
                .iter()
                .find(|r| r["topology"] == topology)
                .unwrap()
                .clone();
            number(&row, "detected_at_s") - number(&row, "start_s")
        };
        assert!(
            detected(&probes_only) > 10.0,
            "probes need at least one interval"
        );
        assert!(
            detected(&ejecting) < 1.0,
            "the fifth failure ejects it: {}",
            detected(&ejecting)
        );
    }
    // The sticky fleet still loses the sessions homed on the dead server.
    let lost = number(&ejecting.topology("stateful"), "sessions_lost");
    assert_eq!(
        lost,
        number(&probes_only.topology("stateful"), "sessions_lost")
    );
}

/// Four servers under round robin, one request per session, with a store: the partition
/// tests' fleet.
const PARTITIONED: &str = r#"
name = "partition"
seed = 9
duration = "120s"
warmup = "10s"
[workload]
sessions_per_second = 100
service_time = "5ms"
[client]
timeout = "1s"
[servers]
count = 4
workers = 4
[balancer]
policy = "round_robin"
retries = 0
[balancer.health_check]
interval = "5s"
unhealthy_threshold = 2
timeout = "500ms"
[[topology]]
name = "store"
state = "store"
[[topology]]
name = "token"
state = "token"
"#;

#[test]
fn a_server_cut_off_from_the_store_fails_exactly_the_store_requests_it_gets() {
    // Round robin sends it every fourth request; each needs the store, so a quarter fail with
    // store_unavailable, and its probes pass: the balancer never takes it out.
    let text = format!(
        "{PARTITIONED}[[fault]]\nkind = \"partition\"\nat = \"0s\"\nserver = 1\nfrom = \"store\"\n"
    );
    let runs = simulate_text(&text);
    let store = &runs[0];
    let share = metric(store, "store_unavailable") / metric(store, "requests");
    assert!((share - 0.25).abs() < 0.002, "share {share}");
    assert_eq!(
        metric(&runs[1], "store_unavailable"),
        0.0,
        "tokens need no store"
    );
    assert!(
        metric(store, "time_to_detect_s").is_nan(),
        "probes pass: never detected"
    );
}

#[test]
fn a_server_cut_off_from_the_balancer_is_found_by_its_probes_and_keeps_its_sessions() {
    // From 30 s to 60 s: its tries and answers are lost until the client's 1 s timeout, and its
    // probes time out. Detection takes two failed probes: between one and two 5 s intervals plus
    // the 500 ms probe timeout. Recovery is the first probe that passes after the cut ends.
    let text = format!(
        "{PARTITIONED}[[fault]]\nkind = \"partition\"\nat = \"30s\"\nserver = 2\nduration = \"30s\"\nfrom = \"balancer\"\n"
    );
    for run in simulate_text(&text) {
        let detect = metric(&run, "time_to_detect_s");
        assert!(
            (5.5..=10.5).contains(&detect),
            "{}: detected after {detect}",
            run.topology
        );
        let recover = metric(&run, "time_to_recover_s");
        assert!(
            (30.0..=35.0).contains(&recover),
            "{}: recovered after {recover}",
            run.topology
        );
        assert!(metric(&run, "timed_out") > 0.0);
        assert_eq!(metric(&run, "sessions_lost"), 0.0);
        run.counters.conservation().unwrap();
    }
}

#[test]
fn a_partition_from_peers_fails_sync_writes_and_starves_the_async_replica() {
    // Server 1 crashes at 90 s; with the cut, it has been cut off from its peers since 30 s.
    // Sync replication refuses the writes it cannot replicate, so its replicas stay current and
    // the crash loses nothing; async replication keeps writing locally, and every session
    // written during the cut is lost with the server (replication lag).
    let scenario = |cut: bool| {
        let partition = if cut {
            "[[fault]]\nkind = \"partition\"\nat = \"30s\"\nserver = 1\nfrom = \"peers\"\n"
        } else {
            ""
        };
        format!(
            r#"
name = "peers"
seed = 4
duration = "120s"
warmup = "10s"
[workload]
sessions_per_second = 40
requests_per_session = 20
think_time = "1s"
service_time = "5ms"
[servers]
count = 4
workers = 4
[balancer]
policy = "sticky"
fallback = "round_robin"
[[topology]]
name = "sync"
state = "server"
replication = "sync"
write_fraction = 0.5
[[topology]]
name = "async"
state = "server"
replication = "async"
replication_lag = "100ms"
write_fraction = 0.5
[[fault]]
kind = "crash"
at = "90s"
server = 1
{partition}"#
        )
    };
    let plain = simulate_text(&scenario(false));
    let cut = simulate_text(&scenario(true));
    assert!(
        metric(&cut[0], "failed") > 100.0,
        "sync writes on server 1 fail"
    );
    assert_eq!(metric(&plain[0], "sessions_lost"), 0.0);
    assert_eq!(
        metric(&cut[0], "sessions_lost"),
        0.0,
        "sync replicas stay current"
    );
    let lag = |run: &RunResult| metric(run, "sessions_lost_replication_lag");
    assert!(
        lag(&cut[1]) > 10.0 * lag(&plain[1]).max(1.0),
        "async: {} lost to lag with the cut, {} without",
        lag(&cut[1]),
        lag(&plain[1])
    );
    for run in plain.iter().chain(&cut) {
        run.counters.conservation().unwrap();
    }
}

/// A session whose home crashed waits for its next request to be fetched from its replica; if
/// the replica's server crashes first, nothing is left to fetch. Sync replication to the next
/// server: server 3 crashes, then server 4, which held its replicas, one second later, long
/// before the sessions of server 3 are sent anywhere else (the balancer has not noticed, and
/// retries a sticky request on its home for a second at a time). Server 4's own sessions have
/// their replicas on server 5 and survive; server 3's are lost with server 4. Crashing server 5
/// instead, which held nothing of server 3's, loses nothing.
#[test]
fn a_replica_lost_before_its_session_was_fetched_loses_the_session() {
    let text = |second: u32| {
        fleet(
            "120s",
            20.0,
            &format!(
                r#"[[topology]]
name = "sync"
state = "server"
replication = "sync"
balancer = {{ policy = "sticky", fallback = "round_robin" }}
[[fault]]
kind = "crash"
at = "60s"
server = 3
[[fault]]
kind = "crash"
at = "61s"
server = {second}"#
            ),
        )
    };
    let runs = simulate_text(&text(4));
    let run = by_name(&runs, "sync");
    let lost_with_4 = run.faults[1][6];
    assert_eq!(run.faults[0][6], 0.0, "server 3's own crash loses nothing");
    // Server 3 homed about an eighth of the ~1,000 sessions in flight (20/s × ~40 s).
    assert!(
        (50.0..200.0).contains(&lost_with_4),
        "server 3's sessions lost with their replicas: {lost_with_4}"
    );
    assert_eq!(
        metric(run, "sessions_lost"),
        metric(run, "sessions_lost_crash")
    );
    let unrelated = simulate_text(&text(5));
    assert_eq!(
        metric(by_name(&unrelated, "sync"), "sessions_lost"),
        0.0,
        "server 5 held no replica of server 3's sessions"
    );
}
