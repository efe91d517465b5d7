//! Overload detection: a station (a server, or a store shard) whose queue grows without bound.
//! At each timeseries boundary every station is looked at. A station is saturated when, since
//! some boundary at least a window ago (30 s of simulated time, at least 3 buckets), every worker
//! was busy and requests were waiting at each boundary, and its queue grew by more than its
//! workers and by more than chance allows: while all workers are busy, the queue is a random
//! walk of the A requests that arrived and the about as many that left, whose spread is
//! √(2A); a growth of 3√(2A) is what a stable queue, whose walk drifts down, almost never
//! shows, and what an overloaded one, drifting up, always reaches in time.
//!
//! A server waits for the store with a worker held, so an overloaded store shows as servers'
//! queues growing while the store's own queue stays within the servers' workers: a server found
//! saturated while a store shard was full for the whole window is the store's saturation.

use super::World;
use crate::engine::SimTime;

/// The simulated time a station must look overloaded for before it is called saturated.
const WINDOW: SimTime = SimTime::from_secs(30);

/// What is known of one station since it was last seen with a worker free or nothing waiting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    /// Boundaries in a row at which it was full (all workers busy, requests waiting).
    full_for: u32,
    /// Its queue at the first of them.
    queue_at_start: usize,
    /// Requests that arrived at it since the first of them.
    arrived: u64,
}

impl Watch {
    /// Whether the station has been full at every boundary of a whole window.
    fn full_for_window(&self, window: u32) -> bool {
        self.full_for >= window
    }

    /// Looks at the station at a boundary (`workers` of which `busy`, `queue` waiting,
    /// `arrived` requests in the bucket that ends here); when it is found saturated, returns
    /// its queue when it was first seen full, and the boundaries it has been full for.
    fn observe(
        &mut self,
        busy: u32,
        workers: u32,
        queue: usize,
        arrived: u64,
        window: u32,
    ) -> Option<(usize, u32)> {
        if busy < workers || queue == 0 {
            *self = Watch::default();
            return None;
        }
        if self.full_for == 0 {
            self.queue_at_start = queue;
        } else {
            self.arrived += arrived;
        }
        self.full_for += 1;
        let growth = queue.saturating_sub(self.queue_at_start);
        let chance = 3.0 * (2.0 * self.arrived as f64).sqrt();
        let saturated =
            self.full_for >= window && growth as f64 > chance && growth > workers as usize;
        saturated.then_some((self.queue_at_start, self.full_for))
    }
}

/// Where a run saturated first, of each kind of station.
#[derive(Clone, Debug, Default)]
pub struct Saturations {
    pub servers: Option<Detected>,
    pub store: Option<Detected>,
}

/// A station found saturated.
#[derive(Clone, Debug)]
pub struct Detected {
    /// The server's index, or the store shard's.
    pub station: u32,
    /// When the window that showed it began, and when it ended.
    pub since: SimTime,
    pub at: SimTime,
    /// Its queue then (or the queue of `behind`).
    pub queue_from: usize,
    pub queue_to: usize,
    /// The server whose queue grew behind a full store, when that is the evidence.
    pub behind: Option<u32>,
}

impl World<'_> {
    /// Boundaries a window spans.
    pub(super) fn saturation_window(&self) -> u32 {
        let bucket = self.scenario.bucket.nanos().max(1);
        (WINDOW.nanos().div_ceil(bucket)).clamp(3, u64::from(u32::MAX)) as u32
    }

    /// Looks at every server and store shard at the boundary `at`; the first saturation of
    /// each kind is kept, and with `--stop-on-saturation` it ends the run.
    pub(super) fn watch_saturation(&mut self, at: SimTime) {
        let window = self.saturation_window();
        let bucket = self.scenario.bucket.nanos();
        // When a station full for `boundaries` was first seen full.
        let since = |boundaries: u32| {
            SimTime::from_nanos(
                at.nanos()
                    .saturating_sub(u64::from(boundaries - 1).saturating_mul(bucket)),
            )
        };
        for (shard, store) in self.stores.iter_mut().enumerate() {
            let queue = store.queue_len();
            let watch = &mut self.store_watches[shard];
            let arrived = store.take_arrived();
            if let Some((from, full_for)) =
                watch.observe(store.busy(), store.workers(), queue, arrived, window)
                && self.saturations.store.is_none()
            {
                self.saturations.store = Some(Detected {
                    station: shard as u32,
                    since: since(full_for),
                    at,
                    queue_from: from,
                    queue_to: queue,
                    behind: None,
                });
            }
        }
        let workers = self.topology.servers.workers;
        self.server_watches
            .resize(self.servers.len(), Watch::default());
        for (index, server) in self.servers.iter().enumerate() {
            let queue = server.queue.len();
            let watch = &mut self.server_watches[index];
            let arrived = u64::from(server.dispatched);
            let Some((from, full_for)) =
                watch.observe(server.busy, workers, queue, arrived, window)
            else {
                continue;
            };
            let full_shard = self
                .store_watches
                .iter()
                .position(|watch| watch.full_for_window(window));
            let found = |station: usize, behind: Option<u32>| Detected {
                station: station as u32,
                since: since(full_for),
                at,
                queue_from: from,
                queue_to: queue,
                behind,
            };
            match full_shard {
                // The servers queue behind the store: the store is what saturated.
                Some(shard) if self.saturations.store.is_none() => {
                    self.saturations.store = Some(found(shard, Some(index as u32)));
                }
                Some(_) => {}
                None if self.saturations.servers.is_none() => {
                    self.saturations.servers = Some(found(index, None));
                }
                None => {}
            }
        }
        if self.limits.stop_on_saturation && self.stopped.is_none() {
            let first = [
                ("the store", &self.saturations.store),
                ("server", &self.saturations.servers),
            ];
            if let Some((what, Some(found))) = first.iter().find(|(_, found)| found.is_some()) {
                let station = if *what == "server" {
                    format!("server {}", found.station)
                } else if self.stores.len() > 1 {
                    format!("the store's shard {}", found.station)
                } else {
                    "the store".to_string()
                };
                self.stop_saturated(station, found.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_full_queue_is_saturated_after_a_window_and_a_dip_starts_it_again() {
        let mut watch = Watch::default();
        // 4 workers, all busy, 10 arrivals a bucket and the queue growing by 10: after 4
        // buckets it grew by 40 > 3√80 ≈ 26.8, at the 5th look of a window of 5.
        let found: Vec<Option<(usize, u32)>> = (1..=6)
            .map(|k| watch.observe(4, 4, 10 * k, 10, 5))
            .collect();
        assert_eq!(
            found,
            vec![None, None, None, None, Some((10, 5)), Some((10, 6))]
        );
        // An idle worker starts the window again.
        assert_eq!(watch.observe(3, 4, 60, 10, 5), None);
        assert!((1..=4).all(|k| watch.observe(4, 4, 10 * k, 10, 5).is_none()));
    }

    #[test]
    fn a_full_queue_that_does_not_grow_is_not_saturated() {
        let mut watch = Watch::default();
        // Full and waiting at every look, but going up and down around 20.
        let lengths = [20, 25, 18, 22, 19, 24, 21, 20, 23, 19];
        assert!(
            lengths
                .iter()
                .all(|q| watch.observe(2, 2, *q, 100, 5).is_none())
        );
        // Growing by 10 a bucket, within chance for 1,000 arrivals a bucket (3√(2·9000) ≈ 402
        // after 10 buckets).
        let mut watch = Watch::default();
        assert!((0..10).all(|k| watch.observe(2, 2, 100 + 10 * k, 1000, 5).is_none()));
    }
}
