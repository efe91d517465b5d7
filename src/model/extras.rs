//! Per-session fields that only some topologies use, kept beside the sessions (by slot) and only
//! when the topology uses them, so that a session's own record stays small: a million sessions
//! in flight are what a large fleet's memory is made of.

use crate::engine::{Handle, SimTime};

#[derive(Default)]
pub(super) struct Extras {
    /// The current request's previous backoff (decorrelated jitter grows from it), when the
    /// client retries.
    backoff: Option<Vec<SimTime>>,
    /// When each session's state last changed (async replication loses writes newer than its
    /// lag) and its version, bumped at every write (a cached copy of an older one is stale),
    /// with async replication or a cache.
    written: Option<Vec<Written>>,
    /// Whether a new session needs any of them set, or its recency links cleared (with a
    /// memory limit): one test per new session when none is.
    any: bool,
}

#[derive(Clone, Copy, Default)]
pub(super) struct Written {
    pub at: SimTime,
    pub version: u32,
}

impl Extras {
    pub(super) fn new(recency_links: bool, backoff: bool, written: bool) -> Self {
        Extras {
            backoff: backoff.then(Vec::new),
            written: written.then(Vec::new),
            any: recency_links || backoff || written,
        }
    }

    /// Whether the topology keeps any of them.
    #[inline(always)]
    pub(super) fn any(&self) -> bool {
        self.any
    }

    /// A session starts in slot `handle`, at `now`.
    pub(super) fn start(&mut self, handle: Handle, now: SimTime) {
        reset(&mut self.backoff, handle, SimTime::ZERO);
        reset(
            &mut self.written,
            handle,
            Written {
                at: now,
                version: 0,
            },
        );
    }

    pub(super) fn backoff(&self, handle: Handle) -> SimTime {
        read(&self.backoff, handle)
    }

    pub(super) fn set_backoff(&mut self, handle: Handle, wait: SimTime) {
        write(&mut self.backoff, handle, wait);
    }

    pub(super) fn written(&self, handle: Handle) -> Written {
        read(&self.written, handle)
    }

    /// The session's state changed at `now`.
    pub(super) fn write_state(&mut self, handle: Handle, now: SimTime) {
        let previous = self.written(handle);
        let next = Written {
            at: now,
            version: previous.version.wrapping_add(1),
        };
        write(&mut self.written, handle, next);
    }
}

fn reset<T: Copy + Default>(table: &mut Option<Vec<T>>, handle: Handle, value: T) {
    if let Some(table) = table {
        if table.len() <= handle.index() {
            table.resize(handle.index() + 1, T::default());
        }
        table[handle.index()] = value;
    }
}

/// The field of a live session (its slot was set by `start`), or the default where the
/// topology keeps none.
fn read<T: Copy + Default>(table: &Option<Vec<T>>, handle: Handle) -> T {
    table
        .as_ref()
        .and_then(|table| table.get(handle.index()).copied())
        .unwrap_or_default()
}

fn write<T: Copy>(table: &mut Option<Vec<T>>, handle: Handle, value: T) {
    if let Some(slot) = table
        .as_mut()
        .and_then(|table| table.get_mut(handle.index()))
    {
        *slot = value;
    }
}
