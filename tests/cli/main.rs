//! The one integration-test binary: CLI behaviour, validation against queueing theory,
//! conservation laws, determinism, bad input, and no allocation per event.

mod allocations;
mod check;
mod commands;
mod conservation;
mod determinism;
mod docs;
mod errors;
mod faults;
mod fit;
mod hostile;
mod properties;
mod replications;
mod reports;
mod support;
mod sweeps;
mod traffic;
mod validation;
