//! The one integration-test binary: CLI behaviour, validation against queueing theory,
//! conservation laws, determinism and bad input.

mod commands;
mod conservation;
mod determinism;
mod errors;
mod support;
mod validation;
