//! Embeds Debian's netbase tables, which pve-firewall reads for protocol and service names
//! (`get_etc_protocols`, `get_etc_services` in Firewall.pm): copied as the build machine has them.

use std::path::PathBuf;

fn netbase(out: &std::path::Path) {
    for file in ["protocols", "services"] {
        let source = PathBuf::from("/etc").join(file);
        println!("cargo:rerun-if-changed={}", source.display());
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("phoenix-core needs {} ({e}): install Debian's netbase", source.display()));
        std::fs::write(out.join(file), text).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
}

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    netbase(&out_dir);
}
