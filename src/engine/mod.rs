//! The generic simulation kernel: simulated time, the pending-event queue, slab storage and seeded
//! random-number streams. It knows nothing about servers, sessions or balancers.

mod calendar;
pub mod expiries;
pub mod queue;
pub mod rng;
pub mod slab;
pub mod time;

pub use expiries::{Expiries, ExpiryChunks};
pub use queue::EventQueue;
pub use slab::{Handle, Slab};
pub use time::SimTime;
