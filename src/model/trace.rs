//! Replaying a request log (`workload.trace`). Each session starts when its first request does
//! in the log; after each response it waits the log's gap to its next request (its think time)
//! and sends it, until the log has no more requests of it within `session_gap`.
//!
//! The log is read as a stream, ahead of the simulation only as far as it must be: to the next
//! session's start, or `session_gap` past a session's last request to learn that it has ended.
//! Memory holds the rows read but not yet replayed, not the log.

use super::{Event, World};
use crate::engine::SimTime;
use crate::fit::LogReader;
use crate::scenario::Trace;
use std::collections::{HashMap, VecDeque};
use std::io::BufReader;

/// A session of the log: its requests read but not yet sent.
struct LogSession {
    /// Its id in the log.
    key: String,
    /// The log time of its latest request read.
    last: f64,
    /// (gap since its previous request, service time, payload bytes) of each request still to
    /// send.
    ahead: VecDeque<(f64, Option<f64>, Option<f64>)>,
    /// The service time and payload of the request it is sending now.
    current_service: Option<f64>,
    current_payload: Option<f64>,
}

pub struct TraceReplay {
    /// None once the log is read to its end (or could not be read again).
    log: Option<LogReader<BufReader<std::fs::File>>>,
    /// Session id in the log → the session's number (in order of first request).
    numbers: HashMap<String, u64>,
    sessions: HashMap<u64, LogSession>,
    /// Sessions read but not started: (log time of the first request, number).
    starts: VecDeque<(f64, u64)>,
    next_number: u64,
    /// The log time of the last row read.
    read_to: f64,
    gap: f64,
}

impl TraceReplay {
    pub fn new(trace: &Trace) -> TraceReplay {
        TraceReplay {
            // Checked when the scenario was loaded; if it has gone since, nothing is replayed.
            log: LogReader::open(&trace.path, &trace.columns).ok(),
            numbers: HashMap::new(),
            sessions: HashMap::new(),
            starts: VecDeque::new(),
            next_number: 0,
            read_to: 0.0,
            gap: trace.session_gap.as_secs_f64(),
        }
    }

    /// Reads one row into its session (a new one when its id is unknown, ended, or idle for
    /// longer than the gap); false at the end of the log.
    fn read_row(&mut self) -> bool {
        let Some(log) = &mut self.log else {
            return false;
        };
        let row = match log.next_row() {
            Ok(Some(row)) => row,
            // The end, or a log changed since it was checked: replay what was read.
            Ok(None) | Err(_) => {
                self.log = None;
                return false;
            }
        };
        self.read_to = row.at;
        let continuing = self
            .numbers
            .get(&row.session)
            .and_then(|number| self.sessions.get_mut(number))
            .filter(|session| row.at - session.last <= self.gap);
        if let Some(session) = continuing {
            session
                .ahead
                .push_back((row.at - session.last, row.service, row.payload));
            session.last = row.at;
            return true;
        }
        let number = self.next_number;
        self.next_number += 1;
        self.numbers.insert(row.session.clone(), number);
        self.sessions.insert(
            number,
            LogSession {
                key: row.session,
                last: row.at,
                ahead: VecDeque::new(),
                current_service: row.service,
                current_payload: row.payload,
            },
        );
        self.starts.push_back((row.at, number));
        true
    }

    /// The next session to start: (log time, number).
    fn next_start(&mut self) -> Option<(f64, u64)> {
        while self.starts.is_empty() && self.read_row() {}
        self.starts.pop_front()
    }

    /// The think time before session `number`'s next request, or None when it has sent its
    /// last (it is then forgotten).
    fn next_request(&mut self, number: u64) -> Option<f64> {
        loop {
            let session = self.sessions.get_mut(&number)?;
            if let Some((gap, service, payload)) = session.ahead.pop_front() {
                session.current_service = service;
                session.current_payload = payload;
                return Some(gap);
            }
            let last = session.last;
            if self.log.is_none() || self.read_to > last + self.gap || !self.read_row() {
                self.forget(number);
                return None;
            }
        }
    }

    /// Session `number` is over (sent its last request, or its user left).
    fn forget(&mut self, number: u64) {
        if let Some(session) = self.sessions.remove(&number)
            && self.numbers.get(&session.key) == Some(&number)
        {
            self.numbers.remove(&session.key);
        }
    }

    /// The service time and payload bytes of session `number`'s current request, as far as
    /// the log has them.
    fn current(&self, number: u64) -> (Option<f64>, Option<f64>) {
        self.sessions
            .get(&number)
            .map_or((None, None), |s| (s.current_service, s.current_payload))
    }
}

impl World<'_> {
    /// Schedules the log's next session start.
    pub(super) fn schedule_next_log_session(&mut self) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        if let Some((at, number)) = replay.next_start() {
            let at = SimTime::from_secs_f64(at);
            if at < self.end {
                self.queue.push(at, Event::LogSession(number));
            }
        }
    }

    /// The think time before a replayed session's next request, or None when it is done.
    pub(super) fn log_next_request(&mut self, number: u64) -> Option<SimTime> {
        let replay = self.replay.as_mut()?;
        replay.next_request(number).map(SimTime::from_secs_f64)
    }

    /// A replayed session ended early (its user left after losing it).
    pub(super) fn log_session_abandoned(&mut self, number: u64) {
        if let Some(replay) = self.replay.as_mut() {
            replay.forget(number);
        }
    }

    /// The service time and payload bytes the log gives the current request of session
    /// `number`.
    pub(super) fn log_request_figures(&self, number: u64) -> (Option<SimTime>, Option<f64>) {
        let Some(replay) = self.replay.as_ref() else {
            return (None, None);
        };
        let (service, payload) = replay.current(number);
        (service.map(SimTime::from_secs_f64), payload)
    }
}
