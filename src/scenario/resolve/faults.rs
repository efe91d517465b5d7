//! `[[fault]]` and `[autoscale]`.

use super::Resolver;
use crate::engine::SimTime;
use crate::scenario::schema::*;
use crate::scenario::*;
use toml::Value;

/// Kubernetes terminationGracePeriodSeconds default: 30 s between SIGTERM and SIGKILL.
const DEFAULT_DRAIN: SimTime = SimTime::from_secs(30);
/// Kubernetes HPA: sync period 15 s, scale-down stabilization window 5 minutes.
const DEFAULT_AUTOSCALE_SYNC: SimTime = SimTime::from_secs(15);
const DEFAULT_SCALE_DOWN_STABILIZATION: SimTime = SimTime::from_secs(300);

impl Resolver<'_> {
    fn fault_time(&mut self, at: SimTime, path: &str, duration: SimTime) {
        self.check(
            at < duration,
            format!("{path}.at"),
            format!(
                "the fault at {} would happen after the run ends ({})",
                units::format_duration(at),
                units::format_duration(duration)
            ),
        );
    }

    fn fault_server(&mut self, server: u32, path: &str, topologies: &[Topology]) {
        if let Some(topology) = topologies.iter().find(|t| server >= t.servers.count) {
            self.problems.push(Problem::new(
                format!("{path}.server"),
                format!(
                    "server index {server} is out of range: topology \"{}\" has {} servers (indices 0..{})",
                    topology.name,
                    topology.servers.count,
                    topology.servers.count.saturating_sub(1)
                ),
            ));
        }
    }

    pub(super) fn fault(
        &mut self,
        file: &FaultFile,
        path: &str,
        raw: &ScenarioFile,
        topologies: &[Topology],
    ) -> Fault {
        let duration = raw.duration.0;
        match file {
            FaultFile::Crash(ServerFaultFile {
                at,
                server,
                restart_after,
            })
            | FaultFile::Hang(ServerFaultFile {
                at,
                server,
                restart_after,
            }) => {
                self.fault_time(at.0, path, duration);
                self.fault_server(*server, path, topologies);
                let (at, server, restart_after) = (at.0, *server, restart_after.map(|d| d.0));
                if matches!(file, FaultFile::Crash(_)) {
                    return Fault::Crash {
                        at,
                        server,
                        restart_after,
                    };
                }
                self.check(
                    raw.client.timeout.is_some(),
                    format!("{path}.kind"),
                    "clients learn of a hung server only through their timeout: set client.timeout",
                );
                Fault::Hang {
                    at,
                    server,
                    restart_after,
                }
            }
            FaultFile::RandomCrashes(RandomCrashesFile { mtbf, mttr }) => {
                // A plain duration is the mean of an exponential time to failure (a constant
                // rate of failure); a table names any other family.
                let mtbf_value = match mtbf {
                    Value::String(_) => {
                        let mut table = toml::Table::new();
                        table.insert("dist".into(), Value::String("exponential".into()));
                        table.insert("mean".into(), mtbf.clone());
                        Value::Table(table)
                    }
                    other => other.clone(),
                };
                let mtbf_path = format!("{path}.mtbf");
                let mtbf = self.dist(Some(&mtbf_value), Quantity::Time, &mtbf_path, Dist::zero());
                let mttr = self.dist(
                    Some(mttr),
                    Quantity::Time,
                    &format!("{path}.mttr"),
                    Dist::zero(),
                );
                // Servers failing more than once a second are not a fleet; the runs would be
                // nothing but fault events and faults.csv rows.
                self.check(
                    mtbf.mean().is_some_and(|mean| mean >= 1e9),
                    mtbf_path,
                    "the mean time between failures must be at least 1s",
                );
                Fault::RandomCrashes { mtbf, mttr }
            }
            FaultFile::RollingRestart(RollingRestartFile {
                at,
                batch,
                interval,
                drain,
                startup,
            }) => {
                self.fault_time(at.0, path, duration);
                let batch = batch.unwrap_or(1);
                self.check(batch >= 1, format!("{path}.batch"), "must be at least 1");
                self.check(
                    interval.0 > SimTime::ZERO,
                    format!("{path}.interval"),
                    "must be greater than zero",
                );
                Fault::RollingRestart {
                    at: at.0,
                    batch,
                    interval: interval.0,
                    drain: drain.map_or(DEFAULT_DRAIN, |d| d.0),
                    startup: startup.map_or(SimTime::ZERO, |d| d.0),
                }
            }
            FaultFile::Scale(ScaleFile {
                at,
                count,
                drain,
                startup,
            }) => {
                self.fault_time(at.0, path, duration);
                self.check(
                    (1..=100_000).contains(count),
                    format!("{path}.count"),
                    "a fleet has between 1 and 100000 servers",
                );
                Fault::Scale {
                    at: at.0,
                    count: *count,
                    drain: drain.map_or(DEFAULT_DRAIN, |d| d.0),
                    startup: startup.map_or(SimTime::ZERO, |d| d.0),
                }
            }
            FaultFile::StoreOutage(StoreOutageFile {
                at,
                duration: outage,
                failover,
                wipes,
                shard,
            }) => {
                if let Some(shard) = shard {
                    let stores = topologies.iter().filter_map(|t| t.store().map(|s| (t, s)));
                    for (topology, store) in stores {
                        self.check(
                            *shard < store.shards,
                            format!("{path}.shard"),
                            format!(
                                "shard index {shard} is out of range: topology \"{}\"'s store has {} shards (indices 0..{})",
                                topology.name,
                                store.shards,
                                store.shards - 1
                            ),
                        );
                    }
                }
                self.fault_time(at.0, path, duration);
                self.check(
                    topologies.iter().any(Topology::has_store),
                    format!("{path}.kind"),
                    "no topology has a store (state = \"store\", or replication = \
                     \"store_backup\"), so a store outage would change nothing",
                );
                self.check(
                    outage.0 > SimTime::ZERO,
                    format!("{path}.duration"),
                    "must be greater than zero",
                );
                if let Some(failover) = failover {
                    self.check(
                        failover.0 <= outage.0,
                        format!("{path}.failover"),
                        "a failover after the outage ended would never happen: make it at most the duration",
                    );
                }
                Fault::StoreOutage {
                    at: at.0,
                    duration: outage.0,
                    failover: failover.map(|d| d.0),
                    wipes: *wipes,
                    shard: *shard,
                }
            }
            FaultFile::Slow(SlowFile {
                at,
                server,
                duration: slow_for,
                factor,
            }) => {
                self.fault_time(at.0, path, duration);
                self.fault_server(*server, path, topologies);
                self.positive_duration(slow_for.map(|d| d.0), path);
                self.check(
                    factor.is_finite() && *factor > 0.0 && *factor <= 1e6,
                    format!("{path}.factor"),
                    format!(
                        "must be a multiple of the service time in (0, 1e6] (5 makes the server \
                         five times slower), got {factor}"
                    ),
                );
                Fault::Slow {
                    at: at.0,
                    server: *server,
                    duration: slow_for.map(|d| d.0),
                    factor: *factor,
                }
            }
            FaultFile::Partition(PartitionFile {
                at,
                server,
                duration: cut_for,
                from,
            }) => {
                self.fault_time(at.0, path, duration);
                self.fault_server(*server, path, topologies);
                self.positive_duration(cut_for.map(|d| d.0), path);
                if *from == PartitionSide::Balancer {
                    self.check(
                        raw.client.timeout.is_some(),
                        format!("{path}.from"),
                        "clients learn that a server is cut off from the balancer only through \
                         their timeout: set client.timeout",
                    );
                }
                let affected = match from {
                    PartitionSide::Store => topologies.iter().any(Topology::has_store),
                    PartitionSide::Balancer => true,
                    PartitionSide::Peers => topologies.iter().any(|t| {
                        matches!(&t.state, State::Server { replication, .. } if replication.peer_copies() > 0)
                    }),
                };
                self.check(
                    affected,
                    format!("{path}.from"),
                    format!(
                        "no topology has {}, so this partition would change nothing",
                        match from {
                            PartitionSide::Store => "a store",
                            _ => "replica peers (replication = \"sync\" or \"async\")",
                        }
                    ),
                );
                Fault::Partition {
                    at: at.0,
                    server: *server,
                    duration: cut_for.map(|d| d.0),
                    from: *from,
                }
            }
            FaultFile::ZoneOutage(ZoneOutageFile {
                at,
                zone,
                duration: down_for,
                store_failover,
            }) => {
                self.fault_time(at.0, path, duration);
                self.positive_duration(down_for.map(|d| d.0), path);
                for topology in topologies {
                    let zones = topology.servers.zones.count;
                    self.check(
                        *zone < zones,
                        format!("{path}.zone"),
                        if zones == 1 {
                            format!(
                                "zone index {zone} is out of range: topology \"{}\" has one zone \
                                 (0); set servers.zones",
                                topology.name
                            )
                        } else {
                            format!(
                                "zone index {zone} is out of range: topology \"{}\" has {zones} \
                                 zones (indices 0..{})",
                                topology.name,
                                zones - 1
                            )
                        },
                    );
                }
                if let Some(failover) = store_failover {
                    self.check(
                        failover.0 > SimTime::ZERO,
                        format!("{path}.store_failover"),
                        "must be greater than zero",
                    );
                    self.check(
                        down_for.is_none_or(|down| failover.0 <= down.0),
                        format!("{path}.store_failover"),
                        "a failover after the zone is back would never happen: make it at most the duration",
                    );
                }
                Fault::ZoneOutage {
                    at: at.0,
                    zone: *zone,
                    duration: down_for.map(|d| d.0),
                    store_failover: store_failover.map(|d| d.0),
                }
            }
            FaultFile::Pauses(PausesFile {
                at,
                server,
                duration: pausing_for,
                every,
                pause,
            }) => {
                let at = at.map_or(SimTime::ZERO, |d| d.0);
                self.fault_time(at, path, duration);
                if let Some(server) = server {
                    self.fault_server(*server, path, topologies);
                }
                self.positive_duration(pausing_for.map(|d| d.0), path);
                self.check(
                    every.0 >= super::fleet::MIN_PERIOD,
                    format!("{path}.every"),
                    "must be at least 1ms",
                );
                self.check(
                    pause.0 > SimTime::ZERO && pause.0 < every.0,
                    format!("{path}.pause"),
                    format!(
                        "must be longer than zero and shorter than its period (every = {}), got {}",
                        units::format_duration(every.0),
                        units::format_duration(pause.0)
                    ),
                );
                Fault::Pauses {
                    at,
                    server: *server,
                    duration: pausing_for.map(|d| d.0),
                    every: every.0,
                    pause: pause.0,
                }
            }
        }
    }

    fn positive_duration(&mut self, duration: Option<SimTime>, path: &str) {
        if let Some(duration) = duration {
            self.check(
                duration > SimTime::ZERO,
                format!("{path}.duration"),
                "must be greater than zero",
            );
        }
    }

    /// Two `pauses` faults on one server (or one on every server beside another) would need
    /// two pause clocks on a server; a server has one.
    pub(super) fn overlapping_pauses(&mut self, faults: &[Fault]) {
        let mut seen: Vec<Option<u32>> = Vec::new();
        for (index, fault) in faults.iter().enumerate() {
            let Fault::Pauses { server, .. } = fault else {
                continue;
            };
            let clash = seen
                .iter()
                .any(|other| other.is_none() || server.is_none() || other == server);
            self.check(
                !clash,
                format!("fault[{index}].server"),
                "another `pauses` fault already covers this server: give each server one",
            );
            seen.push(*server);
        }
    }

    pub(super) fn autoscale(&mut self, file: &AutoscaleFile, topologies: &[Topology]) -> Autoscale {
        let autoscale = Autoscale {
            target_utilization: file.target_utilization,
            sync_period: file.sync_period.map_or(DEFAULT_AUTOSCALE_SYNC, |d| d.0),
            scale_down_stabilization: file
                .scale_down_stabilization
                .map_or(DEFAULT_SCALE_DOWN_STABILIZATION, |d| d.0),
            min: file.min,
            max: file.max,
            startup: file.startup.map_or(SimTime::ZERO, |d| d.0),
            drain: file.drain.map_or(DEFAULT_DRAIN, |d| d.0),
        };
        self.check(
            autoscale.target_utilization > 0.0 && autoscale.target_utilization <= 1.0,
            "autoscale.target_utilization",
            format!(
                "must be a utilisation in (0, 1], got {}",
                autoscale.target_utilization
            ),
        );
        self.check(
            autoscale.sync_period >= super::fleet::MIN_PERIOD,
            "autoscale.sync_period",
            "must be at least 1ms (Kubernetes' default is 15s)",
        );
        self.check(autoscale.min >= 1, "autoscale.min", "must be at least 1");
        self.check(
            autoscale.max >= autoscale.min && autoscale.max <= 100_000,
            "autoscale.max",
            "must be at least min and at most 100000",
        );
        for topology in topologies {
            let count = topology.servers.count;
            if count < autoscale.min || count > autoscale.max {
                self.problems.push(Problem::new(
                    "autoscale",
                    format!(
                        "topology \"{}\" starts with {count} servers, outside min..=max ({}..={})",
                        topology.name, autoscale.min, autoscale.max
                    ),
                ));
            }
        }
        autoscale
    }
}
