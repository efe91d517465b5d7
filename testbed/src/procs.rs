//! The processes a testbed run starts (HAProxy, Redis, backends), each stopped by its PID on every
//! path: when its handle is dropped (a normal end, an error, a panic unwinding) and, should the
//! orchestrator itself be killed, by the kernel (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started process, killed with SIGKILL and reaped when dropped.
pub struct Process {
    name: String,
    child: Option<Child>,
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
        })
    }

    pub fn name(&self) -> &str {
        &self.name
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
pub fn wait_for_port(port: u16, process: &mut Process, limit: Duration) -> io::Result<()> {
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            return Err(io::Error::other(format!(
                "{} exited ({status}) before listening on port {port}",
                process.name()
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

/// A free TCP port on 127.0.0.1 (asked of the kernel; the listener is closed at once).
pub fn free_port() -> io::Result<u16> {
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
}
