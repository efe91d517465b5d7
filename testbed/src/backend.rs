//! A backend server: `workers` threads take connections from one FIFO queue (the waiting room,
//! bounded by `queue_limit`), look the session up where the topology keeps it, sleep for a
//! service time drawn from the scenario, and answer. Sleeping, not spinning, so that the 2-core
//! machine is not the bottleneck: the backends model servers whose workers wait on something.
//!
//! Routes: `GET /r?s=SESSION&i=INDEX` (a session's request; `i = 0` is its first, which creates
//! it; with an `Authorization: Bearer` token for the token state) and `GET /ping` (nothing: an
//! empty request, to see the chain answer before a run). Answers: 200; 410 when the
//! session is not here (lost); 503 with `X-Reason: rejected` (waiting room full) or `store`
//! (Redis failed). Timing headers, in microseconds: `X-Wait-Us` (queued), `X-Service-Us` (the
//! sleep really taken), `X-Get-Us` and `X-Set-Us` (Redis round trips), `X-Verify-Us` (signing or
//! verifying a token; a new token comes in `X-Token`), `X-Busy-Us` (a worker's
//! time on it) and `X-Backend-Us` (accepted to answered).

use crate::http;
use crate::jwt::Keys;
use crate::plan::StateMode;
use crate::resp::Redis;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use statesim::scenario::Dist;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct BackendConfig {
    pub workers: u32,
    pub queue_limit: Option<u32>,
    pub state: StateMode,
    pub redis_port: Option<u16>,
    pub service_time: Dist,
    pub seed: u64,
    /// The fleet's JWT keys, for the token state.
    pub keys: Option<Arc<Keys>>,
}

/// A connection waiting for a worker, with when it was accepted.
type Queued = (TcpStream, Instant);

/// Sessions held in memory: when each was last used.
type Sessions = Mutex<HashMap<u64, Instant>>;

/// How long a worker waits for a request's head before dropping a connection that sends none.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers the balancer's health checks on a port of their own, at once, so that a probe never
/// waits behind requests in the workers' queue (the simulation's probes do not) and still fails
/// when the process is stopped (`hang`) or gone (`crash`).
pub fn serve_checks(listener: TcpListener) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if read_head(&mut stream).is_some() {
                let _ = stream.write_all(&http::response(200, &[]));
            }
        }
    });
}

/// Serves on `listener` until the process is killed.
pub fn serve(listener: TcpListener, config: BackendConfig) -> io::Result<()> {
    let (queue, taken) = channel::<Queued>();
    let taken = Arc::new(Mutex::new(taken));
    // Connections accepted and not yet answered: queued or with a worker.
    let present = Arc::new(AtomicUsize::new(0));
    let sessions: Arc<Sessions> = Arc::new(Mutex::new(HashMap::new()));
    for worker in 0..config.workers {
        let mut state = Worker {
            config: config.clone(),
            rng: SmallRng::seed_from_u64(config.seed ^ u64::from(worker).wrapping_mul(0x9E37)),
            redis: None,
            sessions: Arc::clone(&sessions),
            served: 0,
        };
        let (taken, present) = (Arc::clone(&taken), Arc::clone(&present));
        std::thread::Builder::new()
            .name(format!("worker-{worker}"))
            .spawn(move || state.run(&taken, &present))?;
    }
    // The waiting room is full when every worker is busy and `queue_limit` more wait.
    let capacity = config
        .queue_limit
        .map(|limit| limit as usize + config.workers as usize);
    accept(listener, &queue, &present, capacity)
}

fn accept(
    listener: TcpListener,
    queue: &Sender<Queued>,
    present: &AtomicUsize,
    capacity: Option<usize>,
) -> io::Result<()> {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let accepted = Instant::now();
        if capacity.is_some_and(|capacity| present.load(Ordering::Relaxed) >= capacity) {
            reject(stream);
            continue;
        }
        present.fetch_add(1, Ordering::Relaxed);
        if queue.send((stream, accepted)).is_err() {
            return Err(io::Error::other("every worker stopped"));
        }
    }
    Ok(())
}

/// A full waiting room answers at once, on a thread of its own so that accepting goes on. The
/// request is read first: closing a socket with unread data sends a reset, not the answer.
fn reject(mut stream: TcpStream) {
    std::thread::spawn(move || {
        if read_head(&mut stream).is_some() {
            let _ = stream.write_all(&http::response(503, &[("X-Reason", "rejected".into())]));
        }
    });
}

struct Worker {
    config: BackendConfig,
    rng: SmallRng,
    redis: Option<Redis>,
    sessions: Arc<Sessions>,
    served: u64,
}

/// What a request found and cost.
#[derive(Default)]
struct Work {
    status: u16,
    reason: Option<&'static str>,
    service: Duration,
    get: Option<Duration>,
    verify: Option<Duration>,
    /// A token signed for the session's first request.
    token: Option<String>,
    set: Option<Duration>,
}

impl Worker {
    fn run(&mut self, taken: &Mutex<Receiver<Queued>>, present: &AtomicUsize) {
        loop {
            let next = taken.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok((stream, accepted)) = next else { return };
            self.handle(stream, accepted);
            present.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn handle(&mut self, mut stream: TcpStream, accepted: Instant) {
        let picked = Instant::now();
        let Some(head) = read_head(&mut stream) else {
            return; // a health check, or a client that gave up
        };
        let work = match head.target.split('?').next() {
            Some("/ping") => Work {
                status: 200,
                ..Work::default()
            },
            Some("/r") => match (head.query("s"), head.query("i")) {
                (Some(session), Some(index)) => match (session.parse(), index.parse()) {
                    (Ok(session), Ok(index)) => {
                        let token = head
                            .header("Authorization")
                            .and_then(|value| value.strip_prefix("Bearer "));
                        self.request(session, index, token)
                    }
                    _ => bad_request(),
                },
                _ => bad_request(),
            },
            _ => bad_request(),
        };
        let done = Instant::now();
        let micros = |d: Duration| d.as_micros().to_string();
        let mut headers = vec![
            ("X-Wait-Us", micros(picked - accepted)),
            ("X-Service-Us", micros(work.service)),
            ("X-Busy-Us", micros(done - picked)),
            ("X-Backend-Us", micros(done - accepted)),
        ];
        if let Some(verify) = work.verify {
            headers.push(("X-Verify-Us", micros(verify)));
        }
        if let Some(token) = work.token {
            headers.push(("X-Token", token));
        }
        if let Some(get) = work.get {
            headers.push(("X-Get-Us", micros(get)));
        }
        if let Some(set) = work.set {
            headers.push(("X-Set-Us", micros(set)));
        }
        if let Some(reason) = work.reason {
            headers.push(("X-Reason", reason.into()));
        }
        let _ = stream.write_all(&http::response(work.status, &headers));
    }

    /// Request `index` of `session`: the state looked up, the service slept, the state written.
    fn request(&mut self, session: u64, index: u32, token: Option<&str>) -> Work {
        let mut work = Work {
            status: 200,
            ..Work::default()
        };
        match self.config.state.clone() {
            StateMode::None => {}
            StateMode::Token { .. } => {
                let Some(keys) = self.config.keys.clone() else {
                    return failed(&mut work, "no keys");
                };
                // A request without a token logs in: a session's first, or the next one after
                // the first failed (the state in a token is never lost). Signing stays in the
                // worker's time; verifying is timed on its own, as the simulation's
                // `verify_time`.
                match token {
                    None => match keys.sign(session) {
                        Ok(signed) => work.token = Some(signed),
                        Err(_) => return failed(&mut work, "token"),
                    },
                    Some(token) => {
                        let start = Instant::now();
                        let valid = keys.verify(token, session);
                        work.verify = Some(start.elapsed());
                        if !valid {
                            work.status = 401;
                            work.reason = Some("token");
                            return work;
                        }
                    }
                }
            }
            StateMode::Memory { ttl } => {
                if !self.touch(session, index == 0, ttl) {
                    work.status = 410;
                    work.reason = Some("session lost");
                    return work;
                }
            }
            StateMode::Redis { .. } => {
                let key = format!("s:{session}");
                let start = Instant::now();
                let read = self.redis().and_then(|redis| redis.get(key.as_bytes()));
                work.get = Some(start.elapsed());
                if read.is_err() {
                    return self.store_failed(work);
                }
            }
        }
        work.service = self.sleep_service();
        if let StateMode::Redis {
            session_bytes,
            write_fraction,
        } = self.config.state
            && rand::RngExt::random::<f64>(&mut self.rng) < write_fraction
        {
            let key = format!("s:{session}");
            let value = vec![b's'; session_bytes];
            let start = Instant::now();
            let written = self
                .redis()
                .and_then(|redis| redis.set(key.as_bytes(), &value));
            work.set = Some(start.elapsed());
            if written.is_err() {
                return self.store_failed(work);
            }
        }
        work
    }

    /// Creates (on its first request) or refreshes a session held in memory; false when it is not
    /// here (this server restarted, or it never lived here).
    fn touch(&mut self, session: u64, first: bool, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        self.served += 1;
        if self.served.is_multiple_of(4096) {
            sessions.retain(|_, last| now.duration_since(*last) < ttl);
        }
        let alive = first
            || sessions
                .get(&session)
                .is_some_and(|last| now.duration_since(*last) < ttl);
        if alive {
            sessions.insert(session, now);
        }
        alive
    }

    fn sleep_service(&mut self) -> Duration {
        let nanos = self.config.service_time.sample(&mut self.rng).max(0.0);
        let start = Instant::now();
        std::thread::sleep(Duration::from_nanos(nanos as u64));
        start.elapsed()
    }

    fn redis(&mut self) -> io::Result<&mut Redis> {
        if self.redis.is_none() {
            let port = self
                .config
                .redis_port
                .ok_or_else(|| io::Error::other("no Redis port"))?;
            self.redis = Some(Redis::connect(port, Duration::from_secs(2))?);
        }
        Ok(self.redis.as_mut().expect("just connected"))
    }

    /// A failed Redis call: the connection is dropped (the next request reconnects) and the
    /// request answered 503.
    fn store_failed(&mut self, mut work: Work) -> Work {
        self.redis = None;
        work.status = 503;
        work.reason = Some("store");
        work
    }
}

/// The backend could not do its part (a 500).
fn failed(work: &mut Work, reason: &'static str) -> Work {
    work.status = 500;
    work.reason = Some(reason);
    std::mem::take(work)
}

fn bad_request() -> Work {
    Work {
        status: 400,
        ..Work::default()
    }
}

/// A request's head, or `None` if the connection closed, timed out or sent something else.
fn read_head(stream: &mut TcpStream) -> Option<http::Head> {
    stream.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    while http::head_end(&buffer).is_none() {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 || buffer.len() + read > http::MAX_HEAD {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    http::parse_request(&buffer).ok()
}

/// Makes this process's sleeps end within a few microseconds of their time (the default timer
/// slack lets them overshoot by up to 50 µs).
pub fn tighten_timer_slack() {
    // SAFETY: prctl with an integer argument; it only changes this thread's timer slack, and is
    // called before the workers are spawned (they inherit it).
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(state: StateMode, workers: u32, queue_limit: Option<u32>) -> u16 {
        start_with(state, workers, queue_limit, None)
    }

    fn start_with(
        state: StateMode,
        workers: u32,
        queue_limit: Option<u32>,
        keys: Option<Arc<Keys>>,
    ) -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let service_time = statesim::scenario::load_str(
            "name = \"t\"\nduration = \"1m\"\n[workload]\nsessions_per_second = 1\nservice_time = \"5ms\"\n[[topology]]\nname = \"x\"\nstate = \"none\"\n",
            "t.toml",
            std::path::Path::new("."),
            &[],
        )
        .unwrap()
        .workload
        .service_time;
        let config = BackendConfig {
            workers,
            queue_limit,
            state,
            redis_port: None,
            service_time,
            seed: 1,
            keys,
        };
        std::thread::spawn(move || serve(listener, config));
        port
    }

    #[test]
    fn health_checks_are_answered_on_their_own_port() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        serve_checks(listener);
        assert_eq!(get(port, "/health").status, 200);
    }

    fn get(port: u16, target: &str) -> http::Head {
        get_with(port, target, "")
    }

    fn get_with(port: u16, target: &str, headers: &str) -> http::Head {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stream, "GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        http::parse_response(&bytes).unwrap()
    }

    #[test]
    fn a_session_lives_in_the_memory_of_the_server_that_created_it() {
        let port = start(
            StateMode::Memory {
                ttl: Duration::from_secs(60),
            },
            2,
            None,
        );
        let first = get(port, "/r?s=7&i=0");
        assert_eq!(first.status, 200);
        let service = first.micros("X-Service-Us").unwrap();
        assert!((5_000..15_000).contains(&service), "slept {service} us");
        assert_eq!(get(port, "/r?s=7&i=1").status, 200);
        // A session this server never saw is lost here.
        let lost = get(port, "/r?s=8&i=3");
        assert_eq!(lost.status, 410);
        assert_eq!(lost.micros("X-Service-Us"), Some(0));
        assert_eq!(get(port, "/ping").status, 200);
        assert_eq!(get(port, "/nothing").status, 400);
    }

    #[test]
    fn a_token_is_signed_at_login_and_verified_after() {
        let dir = std::env::temp_dir().join(format!("testbed-backend-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (private_pem, public_pem) = crate::jwt::generate(&dir).unwrap();
        let keys = Keys::load(&private_pem, &public_pem, 550).unwrap();
        let state = StateMode::Token { token_bytes: 550 };
        let port = start_with(state, 2, None, Some(Arc::new(keys)));
        let login = get(port, "/r?s=5&i=0");
        assert_eq!(login.status, 200);
        let token = login.header("X-Token").expect("a token").to_string();
        let bearer = format!("Authorization: Bearer {token}\r\n");
        let next = get_with(port, "/r?s=5&i=1", &bearer);
        assert_eq!(next.status, 200);
        assert!(next.micros("X-Verify-Us").is_some());
        // Another session's token is refused; a request without one logs in again.
        assert_eq!(get_with(port, "/r?s=6&i=1", &bearer).status, 401);
        assert!(get(port, "/r?s=6&i=2").header("X-Token").is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_waiting_room_rejects() {
        let port = start(StateMode::None, 1, Some(0));
        // Hold the only worker, then ask again at once.
        let mut held = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(held, "GET /r?s=1&i=0 HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(1));
        let mut rejected = None;
        for _ in 0..20 {
            let head = get(port, "/r?s=2&i=0");
            if head.status == 503 {
                rejected = Some(head);
                break;
            }
        }
        let head = rejected.expect("a request found the waiting room full");
        assert_eq!(head.header("X-Reason"), Some("rejected"));
    }
}
