//! Times `render_all` alone (loading and validation excluded) on a synthetic inventory held in
//! memory: `cargo run --release -p phoenix-core --example bench_render -- 5000`.

use phoenix_testkit::{synth, MemorySource};
use std::path::Path;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let root = Path::new("/synthetic");
    let mut source = MemorySource::default().set_env(&["PHOENIX_PORTAINER_PASSWORD"]);
    for (relative, text) in synth::inventory(n) {
        source.files.insert(root.join(relative), text);
    }
    let checked = phoenix_model::check(&root.join("etc"), &source);
    let model = checked.model.expect("the synthetic inventory loads");
    let mut best = f64::MAX;
    let mut files = 0;
    let mut bytes = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let rendered = phoenix_core::render::render_all(&model);
        best = best.min(start.elapsed().as_secs_f64());
        files = rendered.files.len();
        bytes = rendered.files.iter().map(|f| f.content.len()).sum::<usize>();
    }
    println!("{n} guests: rendered {files} files ({:.1} MB) in {:.3} s (best of 5)", bytes as f64 / 1e6, best);
}
