//! The event loop allocates nothing per event once it is warm: slabs, the event heap and the
//! server queues reuse their memory. A counting global allocator checks it.
//!
//! The count is per thread, so tests running beside this one do not disturb it; the simulations
//! here run on the test's own thread (no rayon).

use super::support::load;
use statesim::model::simulate;
use statesim::scenario::Scenario;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count_one() {
    // `try_with`: a thread being torn down has no counter left, and that is fine.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// (allocations, events) of every topology of `scenario`, replication 0, on this thread.
fn allocations_and_events(scenario: &Scenario) -> (u64, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let events = scenario
        .topologies
        .iter()
        .map(|topology| simulate(scenario, topology, 0).events)
        .sum();
    (ALLOCATIONS.with(Cell::get) - before, events)
}

/// Runs the scenario at two lengths: the extra events of the longer run must come with almost no
/// extra allocations. A few are containers growing to a new peak (a longer run sees a longer
/// worst queue, a wider latency range), which is logarithmic in the run length; anything
/// allocated per event, per request or even per session would show up by the thousand.
fn assert_no_allocation_per_event(file: &str, short: &str, long: &str) {
    let (short_allocations, short_events) =
        allocations_and_events(&load(file, &[&format!("duration={short}")]));
    let (long_allocations, long_events) =
        allocations_and_events(&load(file, &[&format!("duration={long}")]));
    let extra_events = long_events - short_events;
    assert!(
        extra_events >= 1_000_000,
        "only {extra_events} extra events"
    );
    let extra_allocations = long_allocations.saturating_sub(short_allocations);
    let per_million = extra_allocations as f64 / (extra_events as f64 / 1e6);
    assert!(
        extra_allocations <= MAX_GROWTH_ALLOCATIONS,
        "{file}: {extra_allocations} allocations for {extra_events} extra events \
         ({per_million:.2} per million events)"
    );
}

/// Measured: 6 (M/M/c) and 12 (quickstart).
const MAX_GROWTH_ALLOCATIONS: u64 = 64;

#[test]
fn the_mmc_event_loop_does_not_allocate_per_event() {
    assert_no_allocation_per_event("benches/mmc8_10m_requests.toml", "20s", "200s");
}

#[test]
fn the_quickstart_event_loop_does_not_allocate_per_event() {
    // Sessions, a store, tokens, TTL expiries, a crash with its health checks.
    assert_no_allocation_per_event("scenarios/quickstart.toml", "4m", "10m");
}
