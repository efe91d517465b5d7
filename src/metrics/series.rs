//! timeseries.csv as it is recorded: counts per fixed-width bucket of simulated time, latency
//! percentiles of the responses received in the bucket, and the levels (servers, sessions,
//! utilisation) at its end. Only the current bucket's histogram is kept; a closed bucket is one
//! row of numbers, so memory grows with the run's duration / bucket, never with its requests.

use super::{SERIES_COLUMNS, SeriesRow};
use crate::engine::SimTime;

/// Sub-buckets per power of two: values are kept within 1/64 (1.6%) of their size, plenty for a
/// per-bucket p50/p99.
const SUB_BUCKET_BITS: u32 = 6;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
const SLOTS: usize = (64 - SUB_BUCKET_BITS as usize + 1) * SUB_BUCKETS;

/// A log-linear histogram of nanoseconds, the shape of an HDR histogram with a fixed range and
/// 64 sub-buckets: recording is a count increment, and it is recorded into once per response, so
/// it must cost next to nothing.
pub struct LogHistogram {
    counts: Box<[u32; SLOTS]>,
    total: u64,
}

impl LogHistogram {
    pub fn new() -> LogHistogram {
        LogHistogram {
            counts: Box::new([0; SLOTS]),
            total: 0,
        }
    }

    fn slot(value: u64) -> usize {
        if value < SUB_BUCKETS as u64 {
            return value as usize;
        }
        let exponent = 63 - value.leading_zeros();
        let shift = exponent - SUB_BUCKET_BITS;
        let sub = (value >> shift) as usize & (SUB_BUCKETS - 1);
        (shift as usize + 1) * SUB_BUCKETS + sub
    }

    /// The largest value that falls in `slot`.
    fn highest_in(slot: usize) -> u64 {
        if slot < SUB_BUCKETS {
            return slot as u64;
        }
        let shift = (slot / SUB_BUCKETS - 1) as u32;
        let sub = (slot % SUB_BUCKETS) as u64;
        let low = (SUB_BUCKETS as u64 + sub) << shift;
        low + ((1u64 << shift) - 1)
    }

    #[inline]
    pub fn record(&mut self, value: u64) {
        self.counts[Self::slot(value)] += 1;
        self.total += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The smallest recorded value with at least `percentile`% of the values at or below it (to
    /// the histogram's precision); NaN when empty.
    pub fn value_at_percentile(&self, percentile: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let wanted = ((percentile / 100.0 * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (slot, count) in self.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= wanted {
                return Self::highest_in(slot) as f64;
            }
        }
        unreachable!("the counts add up to the total")
    }

    pub fn reset(&mut self) {
        if self.total > 0 {
            self.counts.fill(0);
            self.total = 0;
        }
    }
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram::new()
    }
}

/// What happened during the current bucket.
#[derive(Clone, Debug, Default)]
pub struct BucketCounts {
    pub requests: u64,
    pub retries: u64,
    pub ok: u64,
    pub rejected: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub store_unavailable: u64,
    pub sessions_lost: u64,
}

/// The world's levels at a bucket boundary. Areas are integrals from time zero (see
/// [`super::TimeAverage::area`]); the recorder differences them per bucket.
#[derive(Clone, Debug)]
pub struct Levels {
    pub active_sessions: i64,
    pub healthy_servers: usize,
    pub servers_running: i64,
    pub busy_area: i128,
    pub capacity_area: i128,
    pub store_busy_area: i128,
    pub store_workers: f64,
    /// Most requests dispatched to one serving server in the bucket over the mean.
    pub load_imbalance: f64,
}

pub struct SeriesRecorder {
    width: SimTime,
    start: SimTime,
    counts: BucketCounts,
    latency: LogHistogram,
    previous_areas: (i128, i128, i128),
    rows: Vec<SeriesRow>,
}

impl SeriesRecorder {
    /// A recorder for a run of `duration`: its rows are reserved up front, so the series never
    /// holds the spare capacity of a doubling vector.
    pub fn new(width: SimTime, duration: SimTime) -> SeriesRecorder {
        let rows = duration.nanos().div_ceil(width.nanos().max(1)) as usize;
        SeriesRecorder {
            width,
            start: SimTime::ZERO,
            counts: BucketCounts::default(),
            latency: LogHistogram::new(),
            previous_areas: (0, 0, 0),
            rows: Vec::with_capacity(rows),
        }
    }

    /// When the current bucket ends.
    #[inline]
    pub fn boundary(&self) -> SimTime {
        self.start.saturating_add(self.width)
    }

    #[inline]
    pub fn counts(&mut self) -> &mut BucketCounts {
        &mut self.counts
    }

    #[inline]
    pub fn record_latency(&mut self, nanos: u64) {
        self.latency.record(nanos);
    }

    /// Closes the current bucket at `end` (its boundary, or the end of the run) with the levels
    /// there, and opens the next.
    pub fn close(&mut self, end: SimTime, levels: &Levels) {
        let span = end.saturating_sub(self.start).nanos() as f64;
        let (busy, capacity, store) = self.previous_areas;
        let busy_area = (levels.busy_area - busy) as f64;
        let capacity_area = (levels.capacity_area - capacity) as f64;
        let store_area = (levels.store_busy_area - store) as f64;
        let percentile = |p: f64| self.latency.value_at_percentile(p) / 1e6;
        let c = &self.counts;
        let row: SeriesRow = [
            self.start.as_secs_f64(),
            c.requests as f64,
            c.retries as f64,
            c.ok as f64,
            if span > 0.0 {
                c.ok as f64 / (span / 1e9)
            } else {
                f64::NAN
            },
            c.rejected as f64,
            c.failed as f64,
            c.timed_out as f64,
            c.store_unavailable as f64,
            c.sessions_lost as f64,
            percentile(50.0),
            percentile(99.0),
            levels.active_sessions as f64,
            levels.healthy_servers as f64,
            levels.servers_running as f64,
            if capacity_area > 0.0 {
                busy_area / capacity_area
            } else {
                f64::NAN
            },
            if levels.store_workers > 0.0 && span > 0.0 {
                store_area / (levels.store_workers * span)
            } else {
                f64::NAN
            },
            levels.load_imbalance,
        ];
        debug_assert_eq!(row.len(), SERIES_COLUMNS.len());
        self.rows.push(row);
        self.previous_areas = (
            levels.busy_area,
            levels.capacity_area,
            levels.store_busy_area,
        );
        self.counts = BucketCounts::default();
        self.latency.reset();
        self.start = end;
    }

    pub fn start(&self) -> SimTime {
        self.start
    }

    pub fn into_rows(self) -> Vec<SeriesRow> {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn log_histogram_percentiles_are_within_its_precision_of_the_exact_ones() {
        let mut rng = crate::engine::rng::StreamRng::seed_from_u64(7);
        for scale in [1e3, 1e6, 1e9, 1e12] {
            let mut values: Vec<u64> = (0..10_001)
                .map(|_| (scale * (-rng.random::<f64>().ln())) as u64)
                .collect();
            let mut histogram = LogHistogram::new();
            for value in &values {
                histogram.record(*value);
            }
            values.sort_unstable();
            for percentile in [1.0, 50.0, 90.0, 99.0, 100.0] {
                let rank = ((percentile / 100.0 * values.len() as f64).ceil() as usize).max(1);
                let exact = values[rank - 1] as f64;
                let estimate = histogram.value_at_percentile(percentile);
                assert!(
                    estimate >= exact && estimate <= exact * (1.0 + 1.0 / 64.0) + 1.0,
                    "p{percentile} at scale {scale}: {estimate} vs exact {exact}"
                );
            }
        }
    }

    #[test]
    fn log_histogram_slots_are_contiguous_and_cover_every_value() {
        for value in (0..5000u64).chain([u64::MAX / 3, u64::MAX]) {
            let slot = LogHistogram::slot(value);
            assert!(slot < SLOTS);
            assert!(LogHistogram::highest_in(slot) >= value);
            if slot > 0 {
                assert!(LogHistogram::highest_in(slot - 1) < value);
            }
        }
        let mut empty = LogHistogram::new();
        assert!(empty.value_at_percentile(50.0).is_nan());
        empty.record(5);
        empty.reset();
        assert!(empty.is_empty());
    }
}
