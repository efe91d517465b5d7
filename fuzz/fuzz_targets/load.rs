//! Any bytes as a scenario file: loading, validating, the budget estimate and the messages must
//! never panic, and every message must stay printable and short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statesim::scenario::{LoadOptions, load_points_str};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = LoadOptions {
        expand_file_sweep: true,
        ..LoadOptions::default()
    };
    match load_points_str(text, "fuzz.toml", Path::new("."), &options) {
        Ok(points) => {
            let estimate = statesim::budget::estimate(&points, 1, 2);
            let _ = statesim::budget::check(&estimate, &statesim::budget::Budget::default(), 2);
        }
        Err(error) => {
            for line in error.to_string().lines() {
                assert!(
                    !line.chars().any(statesim::text::is_unsafe),
                    "a control character in a message: {line:?}"
                );
            }
        }
    }
});
