# Shared helpers for phoenix's scripts. Sourced, not run.

# need CMD [PACKAGE]: install PACKAGE (default CMD) with apt-get when CMD is missing.
need() {
    local cmd=$1 package=${2:-$1}
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "phoenix: '$cmd' is missing; install the Debian package '$package' (needs root)" >&2
        return 1
    fi
    echo "phoenix: installing $package (for $cmd)" >&2
    if [ -z "${PHOENIX_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        PHOENIX_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >&2
}

# need_rust: cargo and rustc >= 1.85 (the workspace's rust-version).
need_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "phoenix: cargo is missing. Install Rust 1.85 or newer (rustup, or Debian's cargo where it is recent enough)." >&2
        return 1
    fi
    local minor
    minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
    if [ "${minor:-0}" -lt 85 ]; then
        echo "phoenix: rustc $(rustc --version) is too old; phoenix needs 1.85 or newer." >&2
        return 1
    fi
}
