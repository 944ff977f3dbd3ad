//! The guest graph over both guest files: clone sources and dependencies, a deterministic
//! creation order (prerequisites first, ties by id), the cycles that prevent one, and the
//! boot order. Must not report diagnostics itself: `validate` turns cycles into PHX-GRAPH-003.

use crate::model::{GuestId, Model};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    CloneSource,
    Dependency,
}

/// `from` must exist before `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Edge {
    pub from: GuestId,
    pub to: GuestId,
    pub kind: EdgeKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GuestGraph {
    /// Creation order; guests on a cycle are left out.
    pub order: Vec<GuestId>,
    /// Each strongly connected group of guests that cannot be ordered.
    pub cycles: Vec<Cycle>,
    pub edges: Vec<Edge>,
}

/// Guests that depend on each other in a ring.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Cycle {
    /// One shortest closed walk, from the lowest id back to it.
    pub walk: Vec<GuestId>,
    /// Every guest of the group (a walk may not pass through all of them).
    pub members: Vec<GuestId>,
}

/// Builds the graph. References to undefined guests are ignored here (validation reports them).
pub fn build(model: &Model) -> GuestGraph {
    let mut edges = BTreeSet::new();
    for guest in model.guests.values() {
        if let Some(source) = guest.clone_from.as_ref().filter(|s| model.guests.contains_key(&s.value)) {
            edges.insert(Edge { from: source.value, to: guest.id, kind: EdgeKind::CloneSource });
        }
        for dependency in guest.dependencies.iter().filter(|d| model.guests.contains_key(&d.value)) {
            edges.insert(Edge { from: dependency.value, to: guest.id, kind: EdgeKind::Dependency });
        }
    }
    let edges: Vec<Edge> = edges.into_iter().collect();
    let cycles = find_cycles(model, &edges);
    let order = creation_order(model, &edges);
    GuestGraph { order, cycles, edges }
}

/// Kahn's algorithm with the lowest ready id first, so the order is stable.
fn creation_order(model: &Model, edges: &[Edge]) -> Vec<GuestId> {
    let mut indegree: BTreeMap<GuestId, usize> = model.guests.keys().map(|&id| (id, 0)).collect();
    let mut successors: BTreeMap<GuestId, Vec<GuestId>> = BTreeMap::new();
    for edge in edges {
        *indegree.entry(edge.to).or_default() += 1;
        successors.entry(edge.from).or_default().push(edge.to);
    }
    let mut ready: BTreeSet<GuestId> = indegree.iter().filter(|(_, &d)| d == 0).map(|(&id, _)| id).collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(id) = ready.pop_first() {
        order.push(id);
        for next in successors.get(&id).into_iter().flatten() {
            let degree = indegree.get_mut(next).expect("every edge end is a guest");
            *degree -= 1;
            if *degree == 0 {
                ready.insert(*next);
            }
        }
    }
    order
}

fn find_cycles(model: &Model, edges: &[Edge]) -> Vec<Cycle> {
    let mut graph: DiGraph<GuestId, ()> = DiGraph::new();
    let index: BTreeMap<GuestId, NodeIndex> = model.guests.keys().map(|&id| (id, graph.add_node(id))).collect();
    for edge in edges {
        graph.add_edge(index[&edge.from], index[&edge.to], ());
    }
    let mut cycles = Vec::new();
    for component in petgraph::algo::tarjan_scc(&graph) {
        let members: BTreeSet<GuestId> = component.iter().map(|&n| graph[n]).collect();
        let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
        if members.len() > 1 || self_loop {
            cycles.push(Cycle { walk: walk_cycle(edges, &members), members: members.into_iter().collect() });
        }
    }
    cycles.sort();
    cycles
}

/// A closed walk through a strongly connected set, from its lowest id back to it.
fn walk_cycle(edges: &[Edge], members: &BTreeSet<GuestId>) -> Vec<GuestId> {
    let start = *members.first().expect("non-empty component");
    // Breadth-first search for the shortest path back to `start` inside the component.
    let mut parent: BTreeMap<GuestId, GuestId> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for edge in edges.iter().filter(|e| e.from == node && members.contains(&e.to)) {
            if edge.to == start {
                let mut walk = vec![start];
                let mut at = node;
                while at != start {
                    walk.push(at);
                    at = parent[&at];
                }
                walk.push(start);
                let last = walk.len() - 1;
                walk[1..last].reverse();
                return walk;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = parent.entry(edge.to) {
                slot.insert(node);
                queue.push_back(edge.to);
            }
        }
    }
    vec![start, start]
}

/// `a -> b -> a`, plus the other guests of the group when the walk misses some.
pub fn describe_cycle(cycle: &Cycle) -> String {
    let walk: Vec<String> = cycle.walk.iter().map(u32::to_string).collect();
    let others: Vec<String> = cycle.members.iter().filter(|m| !cycle.walk.contains(m)).map(u32::to_string).collect();
    if others.is_empty() {
        walk.join(" -> ")
    } else {
        format!("{} (also caught in it: {})", walk.join(" -> "), others.join(", "))
    }
}

/// Guests started at boot, in Proxmox's order (boot order, then id), with their delay.
pub fn boot_order(model: &Model) -> Vec<(GuestId, Option<u32>, Option<u32>)> {
    let mut boot: Vec<_> = model.guests.values().filter(|g| g.boot.start_at_boot).map(|g| (g.id, g.boot.order, g.boot.delay)).collect();
    boot.sort_by_key(|&(id, order, _)| (order.unwrap_or(u32::MAX), id));
    boot
}

/// Version of the JSON document produced by [`to_json`].
pub const GRAPH_SCHEMA_VERSION: u32 = 1;

/// The graph as the versioned JSON document of `phoenix graph --format json`.
pub fn to_json(graph: &GuestGraph, model: &Model) -> serde_json::Value {
    let boot: Vec<serde_json::Value> = boot_order(model)
        .into_iter()
        .map(|(id, order, delay)| serde_json::json!({ "guest": id, "order": order, "delay": delay }))
        .collect();
    serde_json::json!({
        "schema_version": GRAPH_SCHEMA_VERSION,
        "order": graph.order,
        "cycles": graph.cycles,
        "edges": graph.edges,
        "boot": boot,
    })
}

/// The graph as text for `phoenix graph`.
pub fn to_text(graph: &GuestGraph, model: &Model) -> String {
    let mut out = String::from("Creation order (prerequisites first):\n");
    for (i, id) in graph.order.iter().enumerate() {
        let guest = &model.guests[id];
        let needs: Vec<String> = graph
            .edges
            .iter()
            .filter(|e| e.to == *id)
            .map(|e| match e.kind {
                EdgeKind::CloneSource => format!("clone of {}", e.from),
                EdgeKind::Dependency => format!("after {}", e.from),
            })
            .collect();
        let needs = if needs.is_empty() { String::new() } else { format!("  [{}]", needs.join(", ")) };
        out.push_str(&format!("{:>4}. {}{needs}\n", i + 1, guest.label()));
    }
    for cycle in &graph.cycles {
        out.push_str(&format!("cycle (no order possible): {}\n", describe_cycle(cycle)));
    }
    out.push_str("\nBoot order:\n");
    for (id, order, delay) in boot_order(model) {
        let order = order.map_or("-".to_string(), |o| o.to_string());
        let delay = delay.map_or(String::new(), |d| format!(", then wait {d}s"));
        out.push_str(&format!("  order {order:>2}: {}{delay}\n", model.guests[&id].label()));
    }
    out
}
