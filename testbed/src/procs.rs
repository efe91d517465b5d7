//! The processes a testbed run starts (HAProxy, Redis, backends), each stopped by its PID on every
//! path: when its handle is dropped (a normal end, an error, a panic unwinding) and, should the
//! orchestrator itself be killed, by the kernel (`PR_SET_PDEATHSIG`).

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started process, killed with SIGKILL and reaped when dropped.
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its stdout and stderr in `log` (appended: a restarted backend keeps
    /// one log).
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> io::Result<Process> {
        let out = File::options().create(true).append(true).open(log)?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // SAFETY: prctl is async-signal-safe, and nothing else runs between fork and exec.
        // It makes the kernel kill the child if the orchestrator dies first (it must spawn from
        // a thread that lives as long as the child: the orchestrator's main thread).
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot start {name} ({:?}): {error}", command.get_program()),
            )
        })?;
        Ok(Process {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// To end an error about the process: the last line it wrote (its stdout and stderr share
    /// the log), so that the error says why it stopped without sending the user to the file; the
    /// log's path when it wrote nothing.
    pub fn last_words(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        match text.lines().rev().find(|line| !line.trim().is_empty()) {
            Some(line) => format!(": {}", line.trim().chars().take(300).collect::<String>()),
            None => format!("; its log is {}", self.log.display()),
        }
    }

    /// Sends `signal` (SIGSTOP for a hang); nothing once the process is gone.
    pub fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child
            && let Ok(pid) = libc::pid_t::try_from(child.id())
        {
            // SAFETY: kill(2) with the PID of a child we have not reaped yet.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// `kill -9` and reap. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it exited on its own (a crash of the testbed's own making is an error).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until something accepts connections on `port` of 127.0.0.1, or `limit` passes.
fn wait_for_port(port: u16, process: &mut Process, limit: Duration) -> io::Result<()> {
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            return Err(io::Error::other(format!(
                "{} exited ({status}) before listening on port {port}{}",
                process.name(),
                process.last_words()
            )));
        }
        if start.elapsed() > limit {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not listen on port {port} within {limit:?}",
                    process.name()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many times a process that exits before it listens is started, each time on fresh ports.
const START_ATTEMPTS: usize = 3;

/// Starts a process on `count` fresh ports from `pool` (`spawn` gets them and must listen on the
/// first) and waits until it listens. A port the kernel called free can be taken by another
/// socket before the child binds it (nothing can hold a port for a child that binds it itself),
/// so a process that exits before it listens is started again on fresh ports, up to
/// [`START_ATTEMPTS`] times in all; the last failure is the error. One that stays up without
/// listening is not tried again: it would only wait as long once more.
pub fn start_listening(
    pool: &mut PortPool,
    count: usize,
    limit: Duration,
    mut spawn: impl FnMut(&[u16]) -> io::Result<Process>,
) -> io::Result<(Process, Vec<u16>)> {
    let mut attempt = 1;
    loop {
        let ports = (0..count)
            .map(|_| pool.take())
            .collect::<io::Result<Vec<_>>>()?;
        let mut process = spawn(&ports)?;
        match wait_for_port(ports[0], &mut process, limit) {
            Ok(()) => return Ok((process, ports)),
            Err(error) if error.kind() == io::ErrorKind::TimedOut => return Err(error),
            Err(error) if attempt == START_ATTEMPTS => return Err(error),
            Err(_) => attempt += 1,
        }
    }
}

/// The ports of one deployment: each asked of the kernel and never handed out twice. The kernel
/// may offer a port again once the probe that found it is closed, and two processes told the
/// same port would leave one of them unable to listen.
#[derive(Default)]
pub struct PortPool {
    given: HashSet<u16>,
}

impl PortPool {
    pub fn take(&mut self) -> io::Result<u16> {
        for _ in 0..1000 {
            let port = free_port()?;
            if self.given.insert(port) {
                return Ok(port);
            }
        }
        Err(io::Error::other(
            "the kernel offered no TCP port on 127.0.0.1 that was not handed out already",
        ))
    }
}

/// A free TCP port on 127.0.0.1 (asked of the kernel; the listener is closed at once).
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_process_is_killed_and_reaped() {
        let dir = std::env::temp_dir().join(format!("testbed-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let process = Process::spawn(
            "sleeper",
            Command::new("sleep").arg("600"),
            &dir.join("log"),
        )
        .unwrap();
        let pid = process.child.as_ref().unwrap().id();
        drop(process);
        // Reaped: no such process any more (not even a zombie).
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pool_never_hands_out_a_port_twice() {
        let mut pool = PortPool::default();
        let ports: Vec<u16> = (0..300).map(|_| pool.take().unwrap()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("testbed-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_process_that_exits_before_listening_is_started_again_on_fresh_ports() {
        let dir = scratch("retry");
        let mut pool = PortPool::default();
        let mut tried: Vec<Vec<u16>> = Vec::new();
        // The first start dies at once (as a backend whose port was taken does); the second
        // listens (the test holds the port for it; `sleep` stands for the process).
        let mut listeners = Vec::new();
        let (mut process, ports) = start_listening(&mut pool, 2, Duration::from_secs(5), |ports| {
            tried.push(ports.to_vec());
            let mut program = if tried.len() == 1 {
                Command::new("false")
            } else {
                listeners.push(std::net::TcpListener::bind(("127.0.0.1", ports[0])).unwrap());
                let mut sleep = Command::new("sleep");
                sleep.arg("60");
                sleep
            };
            Process::spawn("server", &mut program, &dir.join("log"))
        })
        .unwrap();
        assert_eq!(tried.len(), 2);
        assert_eq!(ports, tried[1]);
        assert!(
            tried[0].iter().all(|port| !tried[1].contains(port)),
            "{tried:?}"
        );
        assert!(process.exited().is_none());
        drop(process);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_process_that_never_listens_fails_with_its_last_words_after_the_last_attempt() {
        let dir = scratch("gives-up");
        let mut pool = PortPool::default();
        let mut starts = 0;
        let error = start_listening(&mut pool, 1, Duration::from_secs(5), |_| {
            starts += 1;
            Process::spawn(
                "server",
                Command::new("sh").args(["-c", "echo 'bind: Address already in use' >&2; exit 1"]),
                &dir.join("log"),
            )
        })
        .err()
        .unwrap();
        assert_eq!(starts, START_ATTEMPTS);
        let message = error.to_string();
        assert!(message.starts_with("server exited"), "{message}");
        assert!(
            message.ends_with(": bind: Address already in use"),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
