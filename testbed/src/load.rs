//! The load generator: plays the scenario's workload against the balancer, as statesim's clients
//! do. Sessions arrive as a Poisson stream; each draws its number of requests, sends them one at
//! a time with a think time between an answer and the next request, keeps the balancer's sticky
//! cookie, times an attempt out after `client.timeout` and retries it up to `max_attempts` with
//! the scenario's backoff. A session whose state is gone (410) is abandoned, as the simulation's
//! default `on_session_lost = "abandon"` does. Every request's outcome and latency is recorded.

use crate::haproxy::COOKIE;
use crate::http;
use crate::plan::{Plan, duration};
use rand::RngExt;
use statesim::engine::rng::{keyed, stream, stream_seed};
use statesim::model::backoff_wait;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::{Instant, sleep_until, timeout_at};

/// How a request ended (after the client's retries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The waiting room was full (503 from the backend).
    Rejected,
    /// The balancer could not get an answer (502, 503 without a server, a reset), or another
    /// error status.
    Failed,
    /// The session's state was not where the request landed (410): failed, and the session lost.
    Lost,
    TimedOut,
    /// The backend could not reach Redis.
    StoreUnavailable,
    /// Unanswered when the run ended.
    InFlight,
}

/// The backend's timing headers of a request's answered attempt, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    /// Accepted to answered, at the backend.
    pub backend: u64,
    pub service: u64,
    pub busy: u64,
    pub get: Option<u64>,
    pub set: Option<u64>,
    /// Signing or verifying the session's token.
    pub verify: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
pub struct RequestRecord {
    /// The first attempt's send, from the start of the run.
    pub sent: Duration,
    pub done: Duration,
    pub outcome: Outcome,
    /// The last answer's HTTP status (0: no answer).
    pub status: u16,
    pub attempts: u32,
    /// The last attempt's own latency (from its send).
    pub attempt_latency: Duration,
    pub timing: Option<Timing>,
}

#[derive(Clone, Copy, Debug)]
pub struct SessionRecord {
    pub started: Duration,
    /// When it completed, was lost, or the run ended.
    pub ended: Duration,
    pub completed: bool,
    pub lost: bool,
}

/// Everything one run recorded.
#[derive(Debug, Default)]
pub struct Recorded {
    pub requests: Vec<RequestRecord>,
    pub sessions: Vec<SessionRecord>,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Lost => "session_lost",
            Outcome::TimedOut => "timed_out",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::InFlight => "in_flight",
        }
    }
}

impl Recorded {
    /// Every request as a CSV row (requests.csv in a run's work folder): when it was sent and
    /// answered (seconds from the start), how it ended, and the backend's timings.
    pub fn write_requests(&self, out: impl std::io::Write) -> std::io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record([
            "sent_s",
            "done_s",
            "outcome",
            "status",
            "attempts",
            "latency_ms",
            "backend_us",
            "busy_us",
            "service_us",
            "store_get_us",
            "store_set_us",
            "verify_us",
        ])?;
        let optional = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
        for request in &self.requests {
            let timing = request.timing;
            writer.write_record([
                format!("{:.6}", request.sent.as_secs_f64()),
                format!("{:.6}", request.done.as_secs_f64()),
                request.outcome.name().to_string(),
                request.status.to_string(),
                request.attempts.to_string(),
                format!("{:.3}", (request.done - request.sent).as_secs_f64() * 1e3),
                optional(timing.map(|t| t.backend)),
                optional(timing.map(|t| t.busy)),
                optional(timing.map(|t| t.service)),
                optional(timing.and_then(|t| t.get)),
                optional(timing.and_then(|t| t.set)),
                optional(timing.and_then(|t| t.verify)),
            ])?;
        }
        writer.flush()
    }
}

enum Record {
    Request(RequestRecord),
    Session(SessionRecord),
}

/// What every session task reads.
struct Context {
    plan: Plan,
    frontend: SocketAddr,
    start: Instant,
    end: Instant,
    /// Seeds of the per-session keyed draws.
    requests_seed: u64,
    think_seed: u64,
    backoff_seed: u64,
    records: UnboundedSender<Record>,
}

/// Plays replication `replication` of `plan`'s workload against `frontend`, from `start` for the
/// plan's duration, and returns what it recorded when every session has stopped (an error if a
/// session's task failed: a bug, and the run's figures would be short of it).
pub async fn play(
    plan: &Plan,
    replication: u32,
    frontend: SocketAddr,
    start: Instant,
) -> Result<Recorded, String> {
    let (records, mut received) = unbounded_channel();
    let context = Arc::new(Context {
        plan: plan.clone(),
        frontend,
        start,
        end: start + plan.duration,
        requests_seed: stream_seed(plan.seed, replication, "testbed_requests"),
        think_seed: stream_seed(plan.seed, replication, "testbed_think"),
        backoff_seed: stream_seed(plan.seed, replication, "testbed_backoff"),
        records,
    });
    let mut arrivals = stream(plan.seed, replication, "testbed_arrivals");
    let mean_gap = 1.0 / plan.sessions_per_second;
    let mut next = start;
    let mut tasks = Vec::new();
    for id in 0u64.. {
        let gap = -mean_gap * (1.0 - arrivals.random::<f64>()).ln();
        next += Duration::from_secs_f64(gap);
        if next >= context.end {
            break;
        }
        sleep_until(next).await;
        let context = Arc::clone(&context);
        tasks.push(tokio::spawn(session(context, id)));
    }
    for task in tasks {
        task.await
            .map_err(|error| format!("a session of the load generator failed: {error}"))?;
    }
    drop(context);
    let mut recorded = Recorded::default();
    while let Some(record) = received.recv().await {
        match record {
            Record::Request(request) => recorded.requests.push(request),
            Record::Session(session) => recorded.sessions.push(session),
        }
    }
    Ok(recorded)
}

async fn session(context: Arc<Context>, id: u64) {
    let workload = &context.plan.workload;
    let started = Instant::now();
    let requests =
        workload
            .requests_per_session
            .sample_count(&mut keyed(context.requests_seed, id, 0));
    let mut carried = Carried::default();
    let mut lost = false;
    let mut completed = true;
    for index in 0..requests {
        if index > 0 {
            let think =
                workload
                    .think_time
                    .sample(&mut keyed(context.think_seed, id, u64::from(index)));
            let at = Instant::now() + Duration::from_nanos(think.max(0.0) as u64);
            if at >= context.end {
                completed = false;
                break;
            }
            sleep_until(at).await;
        }
        let record = request(&context, id, index, &mut carried).await;
        let _ = context.records.send(Record::Request(record));
        match record.outcome {
            Outcome::Lost => {
                lost = true;
                break;
            }
            Outcome::InFlight => {
                completed = false;
                break;
            }
            _ => {}
        }
    }
    let _ = context.records.send(Record::Session(SessionRecord {
        started: started - context.start,
        ended: Instant::now().min(context.end) - context.start,
        completed: completed && !lost,
        lost,
    }));
}

/// What a session's client sends back with each request: the balancer's sticky cookie and the
/// session's token, as the last answers set them.
#[derive(Default)]
struct Carried {
    cookie: Option<String>,
    token: Option<String>,
}

/// One request, with the client's retries.
async fn request(context: &Context, id: u64, index: u32, carried: &mut Carried) -> RequestRecord {
    let client = &context.plan.client;
    let sent = Instant::now();
    let mut previous_wait = 0.0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt_sent = Instant::now();
        let limit = client.timeout.map_or(context.end, |t| {
            (attempt_sent + duration(t)).min(context.end)
        });
        let answer = timeout_at(limit, attempt(context.frontend, id, index, carried)).await;
        let now = Instant::now();
        let (outcome, status, timing) = match answer {
            Err(_) if limit >= context.end => (Outcome::InFlight, 0, None),
            Err(_) => (Outcome::TimedOut, 0, None),
            Ok(Err(_)) => (Outcome::Failed, 0, None),
            Ok(Ok(head)) => {
                if let Some(value) = head.set_cookie(COOKIE) {
                    carried.cookie = Some(value.to_string());
                }
                if let Some(token) = head.header("X-Token") {
                    carried.token = Some(token.to_string());
                }
                (classify(&head), head.status, timing_of(&head))
            }
        };
        let retry = !matches!(outcome, Outcome::Ok | Outcome::Lost | Outcome::InFlight)
            && attempts < client.max_attempts;
        if retry {
            let mut rng = keyed(
                context.backoff_seed,
                id,
                u64::from(index) << 8 | u64::from(attempts),
            );
            let wait = backoff_wait(&client.backoff, attempts - 1, previous_wait, rng.random());
            previous_wait = wait;
            let at = now + Duration::from_nanos(wait as u64);
            if at < context.end {
                sleep_until(at).await;
                continue;
            }
        }
        return RequestRecord {
            sent: sent - context.start,
            done: now - context.start,
            outcome,
            status,
            attempts,
            attempt_latency: now - attempt_sent,
            timing,
        };
    }
}

fn classify(head: &http::Head) -> Outcome {
    match (head.status, head.header("X-Reason")) {
        (200, _) => Outcome::Ok,
        (410, _) => Outcome::Lost,
        (503, Some("rejected")) => Outcome::Rejected,
        (503, Some("store")) => Outcome::StoreUnavailable,
        _ => Outcome::Failed,
    }
}

fn timing_of(head: &http::Head) -> Option<Timing> {
    Some(Timing {
        backend: head.micros("X-Backend-Us")?,
        service: head.micros("X-Service-Us")?,
        busy: head.micros("X-Busy-Us")?,
        get: head.micros("X-Get-Us"),
        set: head.micros("X-Set-Us"),
        verify: head.micros("X-Verify-Us"),
    })
}

/// One attempt: a new connection to the balancer, the request, the answer's head.
async fn attempt(
    frontend: SocketAddr,
    id: u64,
    index: u32,
    carried: &Carried,
) -> std::io::Result<http::Head> {
    let mut stream = TcpStream::connect(frontend).await?;
    stream.set_nodelay(true)?;
    let mut extra = String::new();
    if let Some(cookie) = &carried.cookie {
        extra.push_str(&format!("Cookie: {COOKIE}={cookie}\r\n"));
    }
    if let Some(token) = &carried.token {
        extra.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let request = format!(
        "GET /r?s={id}&i={index} HTTP/1.1\r\nHost: testbed\r\n{extra}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    get_head(&mut stream).await
}

/// Reads until a response head is complete (the answer's time is when its head arrives).
pub async fn get_head(stream: &mut TcpStream) -> std::io::Result<http::Head> {
    let mut buffer = Vec::with_capacity(1024);
    while http::head_end(&buffer).is_none() {
        if stream.read_buf(&mut buffer).await? == 0 || buffer.len() > http::MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection closed before a whole answer",
            ));
        }
    }
    http::parse_response(&buffer).map_err(std::io::Error::other)
}
