//! Least-recently-used order of the sessions homed on each server, for eviction when server
//! memory is limited (`servers.memory_mb`).
//!
//! The order is a doubly linked list per server (`Server::least_recent` .. `most_recent`) whose
//! links live here, by session slot, not in the sessions. But the lists exist only once some
//! server's memory has been half full: before that no eviction can happen, and keeping a list in
//! order costs two far memory reads per request (a touched session's neighbours, which are
//! anybody's), the largest single cost of a million-session run. Until then a touch only stamps
//! the session (a counter of touches, in `Session::touched`, the session's own cache line); when
//! a server first reaches half its capacity, every server's list is built from the stamps in one
//! pass, in the order the lists would have had. A state only enters a server's memory through a
//! placement, which is counted first, so no list is needed before that. Stamps are 32 bits: a run
//! that touches sessions four billion times before any server fills half way builds the lists
//! then (early, which gives the same results: the lists are the same, only kept longer).

use super::World;
use crate::engine::Handle;

#[derive(Default)]
pub(super) struct Recency {
    /// The next touch's stamp, while the lists are not kept.
    next_stamp: u32,
    /// Each session slot's neighbours in its home's list, once the lists are kept.
    links: Option<Vec<Link>>,
}

#[derive(Clone, Copy, Default)]
struct Link {
    older: Option<Handle>,
    newer: Option<Handle>,
}

impl World<'_> {
    /// Marks the session as just used (the newest of its home's list), for least-recently-used
    /// eviction.
    ///
    /// Inlined up to the stamp, which is all most runs ever do (the lists, out of line, exist
    /// only once some server's memory has been half full): as a call, 16 of its 36 instructions
    /// were its entry and exit, once a request at k = 1 of the scale benchmark.
    #[inline(always)]
    pub(super) fn touch(&mut self, session_handle: Handle, server: u32) {
        if self.memory_capacity.is_none() {
            return;
        }
        if self.recency.links.is_none() {
            if let Some(session) = self.sessions.get_mut(session_handle) {
                session.touched = self.recency.next_stamp;
                self.recency.next_stamp += 1;
                if self.recency.next_stamp == u32::MAX {
                    self.build_lists();
                }
            }
            return;
        }
        self.touch_in_list(session_handle, server);
    }

    /// [`World::touch`] once the lists exist: the session moves to the newest end of its home's.
    #[inline(never)]
    fn touch_in_list(&mut self, session_handle: Handle, server: u32) {
        if self.servers[server as usize].most_recent == Some(session_handle) {
            return;
        }
        self.unlink(session_handle, server);
        let target = &mut self.servers[server as usize];
        let previous_newest = target.most_recent.replace(session_handle);
        if target.least_recent.is_none() {
            target.least_recent = Some(session_handle);
        }
        if self.sessions.get(session_handle).is_some() {
            self.link_mut(session_handle).older = previous_newest;
        }
        if let Some(previous) = previous_newest.filter(|h| self.sessions.get(*h).is_some()) {
            self.link_mut(previous).newer = Some(session_handle);
        }
    }

    /// Takes a session out of its home's recency list.
    pub(super) fn unlink(&mut self, handle: Handle, server: u32) {
        if self.recency.links.is_none() || self.sessions.get(handle).is_none() {
            return;
        }
        let link = std::mem::take(self.link_mut(handle));
        self.join_neighbours(handle, link, server);
    }

    /// A session that just left the slab (`released`) leaves its home's list too.
    pub(super) fn unlink_released(&mut self, handle: Handle, server: u32) {
        if self.recency.links.is_some() {
            let link = std::mem::take(self.link_mut(handle));
            self.join_neighbours(handle, link, server);
        }
    }

    /// A new session in slot `handle` starts in no list.
    pub(super) fn clear_link(&mut self, handle: Handle) {
        if self.recency.links.is_some() {
            *self.link_mut(handle) = Link::default();
        }
    }

    /// Links a session's neighbours to each other (it is leaving the list between them).
    fn join_neighbours(&mut self, handle: Handle, link: Link, server: u32) {
        let Link { older, newer } = link;
        let target = &mut self.servers[server as usize];
        if target.least_recent == Some(handle) {
            target.least_recent = newer;
        }
        if target.most_recent == Some(handle) {
            target.most_recent = older;
        }
        if let Some(previous) = older.filter(|h| self.sessions.get(*h).is_some()) {
            self.link_mut(previous).newer = newer;
        }
        if let Some(next) = newer.filter(|h| self.sessions.get(*h).is_some()) {
            self.link_mut(next).older = older;
        }
    }

    /// Starts keeping the lists when `held` states fill half of a server's `capacity`.
    pub(super) fn keep_lists_from(&mut self, held: u64, capacity: u64) {
        if self.recency.links.is_none() && held.saturating_mul(2) >= capacity {
            self.build_lists();
        }
    }

    /// Every server's list from the stamps: the sessions whose state it holds (in its current
    /// incarnation), least recently touched first.
    #[cold]
    fn build_lists(&mut self) {
        let mut members: Vec<(u32, u32, Handle)> = self
            .sessions
            .iter()
            .filter_map(|(handle, session)| {
                let (server, incarnation) = session.state_at()?;
                (self.servers[server as usize].incarnation == incarnation).then_some((
                    server,
                    session.touched,
                    handle,
                ))
            })
            .collect();
        members.sort_unstable_by_key(|&(server, touched, _)| (server, touched));
        let mut links = vec![Link::default(); self.sessions.slots()];
        for server in &mut self.servers {
            server.least_recent = None;
            server.most_recent = None;
        }
        for pair in members.windows(2) {
            let ((server, _, older), (next_server, _, newer)) = (pair[0], pair[1]);
            if server == next_server {
                links[older.index()].newer = Some(newer);
                links[newer.index()].older = Some(older);
            }
        }
        for &(server, _, handle) in &members {
            let target = &mut self.servers[server as usize];
            target.least_recent.get_or_insert(handle);
            target.most_recent = Some(handle);
        }
        self.recency.links = Some(links);
    }

    /// The links of a session slot, the list grown to reach it.
    fn link_mut(&mut self, handle: Handle) -> &mut Link {
        let links = self.recency.links.as_mut().expect("lists are kept");
        if links.len() <= handle.index() {
            links.resize(handle.index() + 1, Link::default());
        }
        &mut links[handle.index()]
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::{LossCause, RunResult};
    use crate::model::{Limits, World};
    use crate::scenario::{self, State};

    /// When the lists start being kept.
    #[derive(Clone, Copy)]
    enum Lists {
        /// When a server's memory first fills half way, as in every run.
        Late,
        /// From the first session on, as if every touch had to keep them.
        AllAlong,
        /// When the 32-bit stamps run out, after this many touches.
        StampsOutAfter(u32),
    }

    fn run(
        scenario: &scenario::Scenario,
        topology: &scenario::Topology,
        lists: Lists,
    ) -> RunResult {
        let limits = Limits::unlimited();
        let mut world = World::new(scenario, topology, 0, &limits);
        match lists {
            Lists::Late => {}
            Lists::AllAlong => world.recency.links = Some(Vec::<super::Link>::new()),
            Lists::StampsOutAfter(touches) => world.recency.next_stamp = u32::MAX - touches,
        }
        world.run().expect("unlimited");
        assert!(world.recency.links.is_some(), "the lists were built");
        world.finish()
    }

    /// Lists built from the stamps when memory first fills half way evict exactly the sessions
    /// that lists kept from the start would, or lists built when the stamps ran out: every figure
    /// of the run is the same. With 8 MiB a
    /// server fills early and evicts often; with 9 MiB late and rarely.
    #[test]
    fn lists_built_late_evict_as_lists_kept_all_along() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/memory-pressure.toml"
        );
        for memory in ["8", "9"] {
            let overrides = [format!("servers.memory_mb={memory}"), "duration=3m".into()];
            let scenario = scenario::load_file(file.as_ref(), &overrides).expect("loads");
            let servers = scenario
                .topologies
                .iter()
                .filter(|t| matches!(t.state, State::Server { .. }));
            let mut evicted = 0;
            for topology in servers {
                let late = run(&scenario, topology, Lists::Late);
                for other in [Lists::AllAlong, Lists::StampsOutAfter(1_000)] {
                    assert_eq!(
                        format!("{late:?}"),
                        format!("{:?}", run(&scenario, topology, other)),
                        "{}",
                        topology.name
                    );
                }
                evicted += late.counters.sessions_lost_by[LossCause::Eviction as usize];
            }
            assert!(evicted > 0, "{memory} MiB: nothing evicted");
        }
    }
}
