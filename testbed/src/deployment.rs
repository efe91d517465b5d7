//! One deployment on 127.0.0.1: Redis (for store topologies), the backends and HAProxy, each a
//! [`Process`] stopped by PID when the deployment is dropped, on every path.

use crate::haproxy::{self, Ports};
use crate::measure::BalancerCounts;
use crate::plan::{FaultKind, FaultPlan, StateMode, TopologyPlan};
use crate::procs::{PortPool, Process, start_listening};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How to start a backend: this program's `backend` command with the scenario it plays.
#[derive(Clone, Debug)]
pub struct BackendCommand {
    pub program: PathBuf,
    pub scenario: PathBuf,
    pub overrides: Vec<String>,
    pub allowed_dirs: Vec<PathBuf>,
}

/// The programs the deployment runs.
#[derive(Clone, Debug)]
pub struct Programs {
    pub haproxy: PathBuf,
    pub redis: PathBuf,
    pub backend: BackendCommand,
}

pub struct Deployment {
    backends: Vec<Process>,
    haproxy: Process,
    _redis: Option<Process>,
    spawner: BackendSpawner,
    socket: PathBuf,
}

/// What starting (or restarting) backend `index` takes.
struct BackendSpawner {
    command: BackendCommand,
    topology: String,
    ports: Ports,
    redis_port: Option<u16>,
    /// The fleet's JWT key pair, for the token state.
    jwt: Option<(PathBuf, PathBuf)>,
    seed: u64,
    dir: PathBuf,
}

const START_LIMIT: Duration = Duration::from_secs(20);

impl Deployment {
    /// Starts everything in `dir` (configuration, logs, the admin socket) and waits until each
    /// process listens.
    pub fn start(
        topology: &TopologyPlan,
        idempotent: bool,
        programs: &Programs,
        dir: &Path,
        seed: u64,
    ) -> io::Result<Deployment> {
        std::fs::create_dir_all(dir)?;
        let mut pool = PortPool::default();
        let redis = match topology.state {
            StateMode::Redis { .. } => {
                let (process, ports) = start_listening(&mut pool, 1, START_LIMIT, |ports| {
                    Process::spawn(
                        "redis-server",
                        Command::new(&programs.redis)
                            .args(["--bind", "127.0.0.1", "--port"])
                            .arg(ports[0].to_string())
                            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                            .args(["--protected-mode", "yes", "--dir"])
                            .arg(dir),
                        &dir.join("redis.log"),
                    )
                })?;
                Some((process, ports[0]))
            }
            _ => None,
        };
        let jwt = match topology.state {
            StateMode::Token { .. } => Some(crate::jwt::generate(dir)?),
            _ => None,
        };
        let servers = topology.servers as usize;
        let mut spawner = BackendSpawner {
            command: programs.backend.clone(),
            topology: topology.name.clone(),
            // Each backend's ports are set as it starts; the frontend's as HAProxy does.
            ports: Ports {
                frontend: 0,
                backends: vec![0; servers],
                checks: vec![0; servers],
            },
            redis_port: redis.as_ref().map(|(_, port)| *port),
            jwt,
            seed,
            dir: dir.to_path_buf(),
        };
        let mut backends = Vec::new();
        for index in 0..servers {
            let (backend, _) = start_listening(&mut pool, 2, START_LIMIT, |ports| {
                spawner.ports.backends[index] = ports[0];
                spawner.ports.checks[index] = ports[1];
                spawner.spawn(index)
            })?;
            backends.push(backend);
        }
        let socket = socket_path(dir)?;
        let config = dir.join("haproxy.cfg");
        let (haproxy, _) = start_listening(&mut pool, 1, START_LIMIT, |ports| {
            spawner.ports.frontend = ports[0];
            std::fs::write(
                &config,
                haproxy::config(topology, idempotent, &spawner.ports, &socket),
            )?;
            Process::spawn(
                "haproxy",
                Command::new(&programs.haproxy)
                    .arg("-db")
                    .arg("-f")
                    .arg(&config),
                &dir.join("haproxy.log"),
            )
        })?;
        Ok(Deployment {
            backends,
            haproxy,
            _redis: redis.map(|(process, _)| process),
            spawner,
            socket,
        })
    }

    pub fn frontend(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.spawner.ports.frontend))
    }

    /// A fault's start: `kill -9` (crash) or `kill -STOP` (hang) of its backend.
    pub fn inject(&mut self, fault: &FaultPlan) {
        let backend = &mut self.backends[fault.server as usize];
        match fault.kind {
            FaultKind::Crash => backend.kill(),
            FaultKind::Hang => backend.signal(libc::SIGSTOP),
        }
    }

    /// A fault's end: the backend killed if still there, and started afresh, empty. It is not
    /// waited for: the balancer finds it up through its health checks, as in the simulation.
    pub fn restart(&mut self, server: u32) -> io::Result<()> {
        let index = server as usize;
        self.backends[index].kill();
        self.backends[index] = self.spawner.spawn(index)?;
        Ok(())
    }

    /// Why the run is worthless, if HAProxy or a backend exited on its own (a backend the run
    /// killed does not count; one restarted that could not listen again does).
    pub fn exited_on_its_own(&mut self) -> Option<String> {
        std::iter::once(&mut self.haproxy)
            .chain(self.backends.iter_mut())
            .find_map(|process| {
                let status = process.exited()?;
                Some(format!(
                    "{} exited during the run ({status}){}",
                    process.name(),
                    process.last_words()
                ))
            })
    }

    /// HAProxy's retry and redispatch counters, from its admin socket.
    pub fn balancer_counts(&self) -> Option<BalancerCounts> {
        let mut stream = UnixStream::connect(&self.socket).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(b"show stat\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let (retries, redispatches) = haproxy::retries_from_stats(&text)?;
        Some(BalancerCounts {
            retries,
            redispatches,
        })
    }
}

/// Where HAProxy's admin socket goes: in the run's folder, as an absolute path (HAProxy reads a
/// relative one as a network address), unless that is too long for a Unix socket (108 bytes on
/// Linux); then in the temporary folder, removed with the deployment.
fn socket_path(dir: &Path) -> io::Result<PathBuf> {
    let inside = std::path::absolute(dir.join("haproxy.sock"))?;
    if inside.as_os_str().len() < 100 {
        return Ok(inside);
    }
    let unique = format!(
        "statesim-testbed-{}-{}.sock",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    Ok(std::env::temp_dir().join(unique))
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // HAProxy first (it leaves its socket behind when killed), then the socket if it lives
        // outside the run's folder.
        self.haproxy.kill();
        if self.socket.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl BackendSpawner {
    fn spawn(&self, index: usize) -> io::Result<Process> {
        let backend = &self.command;
        let mut command = Command::new(&backend.program);
        command
            .arg("backend")
            .arg(&backend.scenario)
            .arg("--topology")
            .arg(&self.topology)
            .arg("--port")
            .arg(self.ports.backends[index].to_string())
            .arg("--check-port")
            .arg(self.ports.checks[index].to_string())
            .arg("--seed")
            .arg((self.seed ^ (index as u64) << 32).to_string());
        if let Some(port) = self.redis_port {
            command.arg("--redis-port").arg(port.to_string());
        }
        if let Some((private_pem, public_pem)) = &self.jwt {
            command.arg("--jwt-key").arg(private_pem);
            command.arg("--jwt-public").arg(public_pem);
        }
        for set in &backend.overrides {
            command.arg("--set").arg(set);
        }
        for dir in &backend.allowed_dirs {
            command.arg("--allow-path").arg(dir);
        }
        Process::spawn(
            &format!("backend {index}"),
            &mut command,
            &self.dir.join(format!("backend-{index}.log")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_socket_is_absolute_and_short_enough() {
        let relative = socket_path(Path::new("results/t")).unwrap();
        assert!(relative.is_absolute(), "{}", relative.display());
        assert!(relative.ends_with("results/t/haproxy.sock"));
        let deep = Path::new("/tmp").join("d".repeat(120));
        let moved = socket_path(&deep).unwrap();
        assert!(moved.starts_with(std::env::temp_dir()));
        assert!(moved.as_os_str().len() < 108);
    }
}
