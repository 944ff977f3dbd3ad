//! The guest graph on random dependency sets: the order puts every prerequisite first, is
//! the same on every run, and exactly the guests on cycles are left out and reported.

use phoenix_model::{check, graph};
use phoenix_testkit::MemorySource;
use proptest::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn load(n: usize, edges: &[(usize, usize)]) -> phoenix_model::Model {
    let etc = Path::new("/virtual/etc");
    let mut deps: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for &(from, to) in edges {
        deps.entry(to).or_default().push((100 + from).to_string());
    }
    let guests: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| ((100 + i).to_string(), json!({ "name": format!("g{i}"), "dependencies": deps.get(&i).cloned().unwrap_or_default() })))
        .collect();
    let mut source = MemorySource::default();
    source.files.insert(etc.join("phoenix_hypervisor_config.json"), "{}".into());
    source.files.insert(etc.join("phoenix_lxc_configs.json"), json!({ "lxc_configs": guests }).to_string());
    source.files.insert(etc.join("phoenix_vm_configs.json"), json!({ "vms": [] }).to_string());
    source.files.insert(etc.join("phoenix_stacks_config.json"), json!({ "docker_stacks": {} }).to_string());
    check(etc, &source).model.expect("loads")
}

/// Guests that can reach themselves.
fn on_cycles(n: usize, edges: &[(usize, usize)]) -> BTreeSet<u32> {
    let reach = |start: usize| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(at) = stack.pop() {
            for &(f, t) in edges.iter().filter(|(f, _)| *f == at) {
                let _ = f;
                if seen.insert(t) {
                    stack.push(t);
                }
            }
        }
        seen
    };
    (0..n).filter(|&i| reach(i).contains(&i)).map(|i| 100 + i as u32).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn order_respects_every_edge_and_cycles_are_named(n in 1usize..14, raw_edges in prop::collection::vec((0usize..14, 0usize..14), 0..24)) {
        let edges: Vec<(usize, usize)> = raw_edges.into_iter().filter(|(a, b)| *a < n && *b < n).collect();
        let model = load(n, &edges);
        let graph = graph::build(&model);
        let cyclic = on_cycles(n, &edges);
        let in_cycles: BTreeSet<u32> = graph.cycles.iter().flat_map(|c| c.members.iter()).copied().collect();
        prop_assert_eq!(&in_cycles, &cyclic);
        for cycle in &graph.cycles {
            prop_assert_eq!(cycle.walk.first(), cycle.walk.last());
            for pair in cycle.walk.windows(2) {
                prop_assert!(graph.edges.iter().any(|e| e.from == pair[0] && e.to == pair[1]), "{:?} is not an edge", pair);
            }
        }
        let position: BTreeMap<u32, usize> = graph.order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for edge in &graph.edges {
            if let (Some(a), Some(b)) = (position.get(&edge.from), position.get(&edge.to)) {
                prop_assert!(a < b, "{} must precede {}", edge.from, edge.to);
            }
        }
        // Without cycles every guest is ordered; guests downstream of a cycle are not.
        if cyclic.is_empty() {
            prop_assert_eq!(graph.order.len(), n);
        }
        prop_assert_eq!(graph::build(&model), graph, "deterministic");
    }
}
