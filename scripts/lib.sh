# Shared helpers for phoenix's scripts. Sourced, not run.

# need CMD [PACKAGE...]: install the PACKAGEs (default CMD) with apt-get when CMD is missing.
# A CMD with a slash is a file that must exist (e.g. an nginx module).
need() {
    local cmd=$1
    shift
    local package="${*:-$cmd}"
    case "$cmd" in
        */*) [ -e "$cmd" ] && return 0 ;;
        *) command -v "$cmd" >/dev/null 2>&1 && return 0 ;;
    esac
    if [ "$(id -u)" -ne 0 ]; then
        echo "phoenix: '$cmd' is missing; install the Debian package '$package' (needs root)" >&2
        return 1
    fi
    echo "phoenix: installing $package (for $cmd)" >&2
    if [ -z "${PHOENIX_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        PHOENIX_APT_UPDATED=1
    fi
    # Packages such as nginx start their service on install; tests start their own instances,
    # so forbid service starts during the install (the usual policy-rc.d switch).
    local policy=/usr/sbin/policy-rc.d own_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $package >&2 || status=$?
    [ -n "$own_policy" ] && rm -f "$policy"
    return $status
}

# need_rust: cargo and rustc >= 1.89 (the workspace's rust-version).
need_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "phoenix: cargo is missing. Install Rust 1.89 or newer (rustup, or Debian's cargo where it is recent enough)." >&2
        return 1
    fi
    local minor
    minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
    if [ "${minor:-0}" -lt 89 ]; then
        echo "phoenix: rustc $(rustc --version) is too old; phoenix needs 1.89 or newer." >&2
        return 1
    fi
}
