//! Slab storage with generation-checked handles.
//!
//! Sessions and requests live in slabs so memory is bounded by what is alive, not by what was ever
//! created. A handle carries the generation of its slot: an event that outlived its entity (a
//! timeout for a request that already finished, say) finds a newer generation and is dropped.

use std::num::NonZeroU32;

/// A reference to a slab slot at a particular generation. Generations start at 1, so that
/// `Option<Handle>` is 8 bytes, not 12 (a session holds two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    index: u32,
    generation: NonZeroU32,
}

impl Handle {
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// Aligned to a cache line: a session (56 bytes, and the generation) is then read with one
/// line, not two, wherever the allocator put the slots. A large model reads a million sessions
/// at random, each a miss; a request's slot (two lines either way) is in flight only briefly.
///
/// The value is not an `Option`: a handle's generation matches only while its value is live
/// (freeing bumps it), so that one comparison is the whole lookup, without a test of a
/// discriminant after it. A freed slot keeps its last value, which nothing reads (hence `Copy`:
/// there is nothing to drop).
#[repr(align(64))]
struct Slot<T> {
    generation: NonZeroU32,
    /// `LIVE` while the slot holds a value; while it is free, the next free slot (`NO_SLOT` at
    /// the end of the list). It fills what the alignment would leave as padding after a session
    /// (56 + 4 bytes), so the free list costs no memory, where a `Vec` of free indices took
    /// 4 bytes a slot at its peak.
    next_free: u32,
    value: T,
}

/// The end of the free list.
const NO_SLOT: u32 = u32::MAX;
/// [`Slot::next_free`] of a slot in use. Neither it nor `NO_SLOT` is ever an index.
const LIVE: u32 = u32::MAX - 1;

/// Starts loading the cache line at `address`. A prefetch is only a hint: it reads nothing into
/// the program and cannot fault, whatever the address. (Plain loads in a batch, tried first,
/// gained nothing: each one that misses holds its place until it completes.)
#[inline(always)]
fn prefetch_line(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has, and never dereferences the
    // address in a way the program can observe (no fault, no value).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Starts loading every cache line of the `bytes` bytes from `start` (see [`prefetch_line`]).
#[inline(always)]
pub(super) fn prefetch_lines(start: *const u8, bytes: usize) {
    for line in 0..bytes.div_ceil(64) {
        prefetch_line(start.wrapping_add(line * 64));
    }
}

/// The generation after `generation`, skipping 0 when it wraps.
#[inline(always)]
fn next_generation(generation: NonZeroU32) -> NonZeroU32 {
    generation.checked_add(1).unwrap_or(NonZeroU32::MIN)
}

pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// The most recently freed slot, the head of a list linked through [`Slot::next_free`]:
    /// slots are reused last freed first, whose line is the likeliest still in the caches.
    free: u32,
    len: usize,
}

impl<T: Copy> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> Slab<T> {
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: NO_SLOT,
            len: 0,
        }
    }

    /// Always inlined: with a second caller (the balancer's retries) the compiler stopped
    /// inlining it into the client's send path, +2.5% instructions on the M/M/c benchmark.
    #[inline(always)]
    pub fn insert(&mut self, value: T) -> Handle {
        self.len += 1;
        let index = self.free;
        if let Some(slot) = self.slots.get_mut(index as usize) {
            self.free = slot.next_free;
            slot.next_free = LIVE;
            slot.value = value;
            return Handle {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len())
            .ok()
            .filter(|&index| index < LIVE)
            .expect("more than 4 billion live entities");
        self.slots.push(Slot {
            generation: NonZeroU32::MIN,
            next_free: LIVE,
            value,
        });
        Handle {
            index,
            generation: NonZeroU32::MIN,
        }
    }

    pub fn get(&self, handle: Handle) -> Option<&T> {
        let slot = self.slots.get(handle.index as usize)?;
        (slot.generation == handle.generation).then_some(&slot.value)
    }

    pub fn get_mut(&mut self, handle: Handle) -> Option<&mut T> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        (slot.generation == handle.generation).then_some(&mut slot.value)
    }

    /// Removes the value and bumps the slot's generation so outstanding handles go stale.
    pub fn remove(&mut self, handle: Handle) -> Option<T> {
        let value = *self.get(handle)?;
        self.release(handle.index);
        Some(value)
    }

    /// [`Slab::remove`] without handing the value back: no copy of it is made, which matters on
    /// hot paths (reading a field of a freshly moved-out value can stall on store forwarding).
    pub fn discard(&mut self, handle: Handle) -> bool {
        let live = self.get(handle).is_some();
        if live {
            self.release(handle.index);
        }
        live
    }

    /// Frees the live slot `index`: its generation moves on, so every handle to it goes stale,
    /// and it heads the free list.
    #[inline(always)]
    fn release(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        slot.generation = next_generation(slot.generation);
        slot.next_free = std::mem::replace(&mut self.free, index);
        self.len -= 1;
    }

    /// Asks the CPU to start loading `handle`'s slot into the cache (every line of it), without
    /// waiting for it: a hint for an entry about to be used (see `World::warm_next_bucket`).
    /// Does nothing for an index out of range, or on CPUs other than x86-64.
    #[inline(always)]
    pub fn prefetch(&self, handle: Handle) {
        if let Some(slot) = self.slots.get(handle.index as usize) {
            let start: *const Slot<T> = slot;
            prefetch_lines(start.cast(), Self::slot_bytes());
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots ever used, live or free: every handle's index is below it.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The bytes a slot takes (its value and generation, padded to a cache line).
    pub const fn slot_bytes() -> usize {
        std::mem::size_of::<Slot<T>>()
    }

    /// Live entries with their handles, in slot order (deterministic).
    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.next_free == LIVE)
            .map(|(index, slot)| {
                let handle = Handle {
                    index: index as u32,
                    generation: slot.generation,
                };
                (handle, &slot.value)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::collections::HashMap;

    /// Against a map of the live handles, over random inserts, removes, discards and lookups
    /// through every handle ever issued (most of them stale by then): a lookup finds a value only
    /// through a live handle, and the value inserted with it; a freed slot's old value, which
    /// the slot keeps, is never found; `len` and `iter` agree with the map.
    #[test]
    fn only_live_handles_find_values() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut slab = Slab::new();
        let mut live: HashMap<Handle, u64> = HashMap::new();
        let mut issued: Vec<Handle> = Vec::new();
        for step in 0..20_000u64 {
            let any = |rng: &mut Xoshiro256PlusPlus| issued[rng.random_range(0..issued.len())];
            match rng.random_range(0..4) {
                _ if issued.is_empty() => {}
                0 => {
                    let handle = any(&mut rng);
                    assert_eq!(slab.remove(handle), live.remove(&handle));
                }
                1 => {
                    let handle = any(&mut rng);
                    assert_eq!(slab.discard(handle), live.remove(&handle).is_some());
                }
                _ => {
                    let handle = any(&mut rng);
                    assert_eq!(slab.get(handle), live.get(&handle));
                    assert_eq!(slab.get_mut(handle).copied(), live.get(&handle).copied());
                }
            }
            if rng.random_range(0..2) == 0 {
                let handle = slab.insert(step);
                assert_eq!(live.insert(handle, step), None, "a handle issued twice");
                issued.push(handle);
            }
            assert_eq!(slab.len(), live.len());
        }
        let listed: Vec<(Handle, u64)> = slab.iter().map(|(h, v)| (h, *v)).collect();
        assert!(listed.windows(2).all(|w| w[0].0.index() < w[1].0.index()));
        let mut expected: Vec<(Handle, u64)> = live.into_iter().collect();
        expected.sort_by_key(|(h, _)| (h.index(), h.generation));
        assert_eq!(listed, expected);
    }

    #[test]
    fn stale_handles_are_rejected_after_reuse() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(a.index(), b.index());
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.len(), 1);
    }

    /// Freed slots are reused last freed first (as from a stack of free indices, which the
    /// list through the slots replaced: a different order would renumber sessions and change
    /// results that follow slot order), and a slot freed twice goes on the list once.
    #[test]
    fn freed_slots_are_reused_last_freed_first() {
        let mut slab = Slab::new();
        let handles: Vec<Handle> = (0..6).map(|i| slab.insert(i)).collect();
        for &i in &[1, 4, 2] {
            assert!(slab.discard(handles[i]));
        }
        assert!(!slab.discard(handles[4]));
        assert_eq!(slab.remove(handles[4]), None);
        let reused: Vec<usize> = (0..4).map(|i| slab.insert(10 + i).index()).collect();
        assert_eq!(reused, [2, 4, 1, 6]);
        assert_eq!(slab.len(), 7);
        assert_eq!(slab.slots(), 7);
        let live: Vec<i32> = slab.iter().map(|(_, value)| *value).collect();
        assert_eq!(live, [0, 12, 10, 3, 11, 5, 13]);
    }
}
