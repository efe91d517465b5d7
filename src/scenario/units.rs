//! Human-readable quantities: durations ("250us", "20ms", "1m30s") and byte sizes (4096, "10KB").

use crate::engine::SimTime;

const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("min", 60e9),
    ("h", 3600e9),
];

/// Parses a duration such as "250us", "1.5s", "1m30s" or "0". Several terms add up.
pub fn parse_duration(text: &str) -> Result<SimTime, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(SimTime::ZERO);
    }
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. \"250us\", \"20ms\", \"1m30s\"".into());
    }
    let mut rest = trimmed;
    let mut total_ns = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(duration_error(text));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| duration_error(text))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| duration_error(text))?;
        total_ns += number * scale;
    }
    if !total_ns.is_finite() || total_ns >= u64::MAX as f64 {
        return Err(format!("duration \"{text}\" is too long"));
    }
    Ok(SimTime::from_nanos_f64(total_ns))
}

fn duration_error(text: &str) -> String {
    format!(
        "invalid duration \"{text}\": expected a number and a unit (ns, us, ms, s, m, h), e.g. \"250us\", \"20ms\", \"1m30s\""
    )
}

/// Parses a byte size: "512", "10KB" (10,000), "10KiB" (10,240), "1.5MB", "2MiB".
pub fn parse_bytes(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| bytes_error(text))?;
    let scale = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1e12,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bytes_error(text)),
    };
    Ok(number * scale)
}

fn bytes_error(text: &str) -> String {
    format!(
        "invalid size \"{text}\": expected bytes as a number or with a unit (B, KB, KiB, MB, MiB, GB, GiB), e.g. 4096 or \"10KB\""
    )
}

/// Formats a duration compactly for messages and the example file.
pub fn format_duration(time: SimTime) -> String {
    let ns = time.nanos();
    if ns == 0 {
        "0s".into()
    } else if ns.is_multiple_of(1_000_000_000) {
        format_whole_seconds(ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

/// Whole seconds as the file would write them: "30m", "1h30m", "1m30s", "45s".
fn format_whole_seconds(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::new();
    for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s")] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_sums() {
        assert_eq!(parse_duration("250us").unwrap(), SimTime(250_000));
        assert_eq!(parse_duration("20ms").unwrap(), SimTime::from_millis(20));
        assert_eq!(parse_duration("1m30s").unwrap(), SimTime::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), SimTime::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), SimTime::from_secs(7200));
        assert_eq!(parse_duration("0").unwrap(), SimTime::ZERO);
        for bad in ["", "5", "ms", "5 parsecs", "-1s", "1..2s", "5sm"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(parse_bytes("512").unwrap(), 512.0);
        assert_eq!(parse_bytes("10KB").unwrap(), 10_000.0);
        assert_eq!(parse_bytes("10KiB").unwrap(), 10_240.0);
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "0s", "7s", "15ms", "250us", "13ns", "30m", "1h30m", "1m30s", "2h5s",
        ] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
