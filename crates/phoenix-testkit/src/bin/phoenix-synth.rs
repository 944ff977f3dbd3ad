//! Writes a synthetic inventory: `phoenix-synth N DIR` (config folder: DIR/etc).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(dir)) = (args.get(1).and_then(|n| n.parse::<usize>().ok()), args.get(2)) else {
        eprintln!("usage: phoenix-synth N DIR");
        return std::process::ExitCode::from(2);
    };
    if n == 0 {
        eprintln!("phoenix-synth: N must be at least 1");
        return std::process::ExitCode::from(2);
    }
    match phoenix_testkit::synth::write_inventory(std::path::Path::new(dir), n) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("phoenix-synth: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
