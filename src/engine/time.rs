//! Simulated time: integer nanoseconds, so event ordering never depends on floating-point rounding.

use std::fmt;

/// A point in (or span of) simulated time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub const fn from_nanos(ns: u64) -> SimTime {
        SimTime(ns)
    }

    pub const fn from_millis(ms: u64) -> SimTime {
        SimTime(ms * 1_000_000)
    }

    pub const fn from_secs(s: u64) -> SimTime {
        SimTime(s * 1_000_000_000)
    }

    /// Converts seconds to time, rounding to the nearest nanosecond and saturating at the ends.
    pub fn from_secs_f64(s: f64) -> SimTime {
        SimTime::from_nanos_f64(s * 1e9)
    }

    /// Converts a (possibly fractional) nanosecond count, saturating instead of wrapping.
    pub fn from_nanos_f64(ns: f64) -> SimTime {
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        if ns.is_nan() || ns <= 0.0 {
            return SimTime(0);
        }
        // This runs several times per request. `f64::round` is a libm call on baseline x86-64
        // (no SSE4.1); adding just under one half and truncating (the cast) is libm's own formula
        // for positive values, so results are bit-identical. Below 2^63 the cast goes through
        // i64, which is one instruction where u64 takes a dozen.
        let rounded = ns + (0.5 - 0.25 * f64::EPSILON);
        if rounded < TWO_POW_63 {
            // A plain `as` cast would test again for NaN and for the ends, which the tests above
            // have ruled out: 6 instructions more at each of the M/M/c benchmark's two a request.
            // SAFETY: `rounded` is finite (not NaN, above 0, below 2^63), so its truncation fits
            // an i64.
            let whole: i64 = unsafe { rounded.to_int_unchecked() };
            SimTime(whole as u64)
        } else {
            SimTime(rounded as u64) // saturates at u64::MAX
        }
    }

    pub const fn nanos(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    pub const fn saturating_add(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(other.0))
    }

    pub const fn saturating_sub(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_and_saturate() {
        assert_eq!(SimTime::from_secs_f64(1.5).nanos(), 1_500_000_000);
        assert_eq!(SimTime::from_nanos_f64(-3.0), SimTime::ZERO);
        assert_eq!(SimTime::from_nanos_f64(f64::NAN), SimTime::ZERO);
        assert_eq!(SimTime::from_nanos_f64(1e30), SimTime::MAX);
        assert_eq!(SimTime::MAX.saturating_add(SimTime(1)), SimTime::MAX);
        assert_eq!(SimTime::from_millis(2).as_millis_f64(), 2.0);
        assert_eq!(
            SimTime::from_nanos_f64(1.5e19).nanos(),
            15_000_000_000_000_000_000
        );
        assert_eq!(SimTime::from_nanos_f64(f64::INFINITY), SimTime::MAX);
        // The largest float below 2^63 goes the i64 way, 2^63 itself the u64 way.
        let below = 9_223_372_036_854_774_784.0;
        assert_eq!(
            SimTime::from_nanos_f64(below).nanos(),
            9_223_372_036_854_774_784
        );
        assert_eq!(SimTime::from_nanos_f64(below + 1024.0).nanos(), 1 << 63);
    }

    #[test]
    fn rounding_matches_f64_round() {
        let edge_cases = [
            0.5,
            1.5,
            2.5,
            0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
        ];
        let spread = (0..10_000).map(|i| f64::from(i) * 0.123_456_789 + 1e-9);
        for ns in edge_cases.into_iter().chain(spread) {
            assert_eq!(
                SimTime::from_nanos_f64(ns).nanos(),
                ns.round() as u64,
                "{ns}"
            );
        }
    }
}
