#!/usr/bin/env bash
# Builds the pinned peer binaries tsshim is tested against (ADR 0015) into
# /opt/tsshim/peers/<name>/bin. Sourced by scripts/setup.sh, or run directly:
#   bash scripts/peers.sh [name...]      (default: all; names: youki containerd-2 containerd-1.7 cri-tools gvisor gvisor-shim-patched)
# Each directory gets a VERSION stamp, written last: a directory whose stamp matches the pin
# is trusted and skipped (a cached run takes well under a second); anything else is rebuilt.
# A failing build stops with the tool's own output (the tail of its log), never a fallback.
set -euo pipefail

PEERS_ROOT=${TSSHIM_PEERS_ROOT:-/opt/tsshim/peers}
PEERS_LOG_DIR=${TSSHIM_PEERS_LOG_DIR:-/var/log/tsshim-peers}

# ---- pins (change a pin and the next setup rebuilds that peer) ----
YOUKI_VERSION=0.7.0
YOUKI_FEATURES=v1,v2,seccomp
CONTAINERD2_VERSION=v2.4.2
CONTAINERD17_VERSION=v1.7.14
CRI_TOOLS_VERSION=v1.37.0
# gVisor's `go` branch as the Go module proxy serves it (pseudo-version = commit 160fafc42237).
GVISOR_VERSION=v0.0.0-20260905035102-160fafc42237
# gVisor's own shim, patched: oom_score_adj EPERM tolerated (no CAP_SYS_RESOURCE here). The one
# relaxation is this patch, applied to a copy of the pinned module source (ADR 0017); its hash is
# part of the stamp, so editing it rebuilds the peer.
GVISOR_SHIM_PATCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/patches/gvisor-shim-oom-eperm.patch"

peer_stamp() {
  case "$1" in
    youki) echo "youki $YOUKI_VERSION features=$YOUKI_FEATURES" ;;
    containerd-2) echo "containerd $CONTAINERD2_VERSION cgo=0" ;;
    containerd-1.7) echo "containerd $CONTAINERD17_VERSION cgo=0" ;;
    cri-tools) echo "cri-tools $CRI_TOOLS_VERSION versioned" ;;
    gvisor) echo "gvisor.dev/gvisor $GVISOR_VERSION" ;;
    gvisor-shim-patched) echo "gvisor.dev/gvisor $GVISOR_VERSION shim patched: oom_score_adj EPERM tolerated (no CAP_SYS_RESOURCE here) patch-sha256 $(sha256sum "$GVISOR_SHIM_PATCH" | cut -c1-16)" ;;
    *) echo "[peers] unknown peer $1" >&2; return 1 ;;
  esac
}

peer_bins() {
  case "$1" in
    youki) echo youki ;;
    containerd-2 | containerd-1.7) echo containerd ctr containerd-shim-runc-v2 ;;
    cri-tools) echo crictl critest ;;
    gvisor) echo runsc containerd-shim-runsc-v1 ;;
    gvisor-shim-patched) echo containerd-shim-runsc-v1 ;;
  esac
}

peer_ok() { # name: stamp matches the pin and every binary is there
  local dir="$PEERS_ROOT/$1" b
  [ -f "$dir/VERSION" ] && [ "$(cat "$dir/VERSION")" = "$(peer_stamp "$1")" ] || return 1
  for b in $(peer_bins "$1"); do [ -x "$dir/bin/$b" ] || return 1; done
}

# Go: module proxy only for Go modules, the local toolchain (no toolchain downloads), caches in
# the default GOMODCACHE/GOCACHE so they survive between runs.
go_env() {
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
}

# The build functions run with errexit off (they are called in an `||` list), so every step is
# chained with && and the function's status is the first failure's.
build_youki() {
  local dir=$1
  command -v cargo >/dev/null || { echo "cargo not found (Rust toolchain required)"; return 1; }
  # cargo's registry cache lives in CARGO_HOME (default ~/.cargo); its target dir is temporary.
  nice -n 15 cargo install youki --version "$YOUKI_VERSION" --locked --features "$YOUKI_FEATURES" --root "$dir" --force
}

build_containerd() { # dir module version
  local dir=$1 mod=$2 v=$3
  go_env &&
    GOBIN="$dir/bin" nice -n 15 go install \
      "$mod/cmd/containerd@$v" "$mod/cmd/ctr@$v" "$mod/cmd/containerd-shim-runc-v2@$v"
}

scratch_module() { # name -> prints a fresh scratch module dir
  local s
  s=$(mktemp -d "/tmp/tsshim-peer-$1.XXXXXX") && (cd "$s" && go mod init "tsshim.local/peer-$1" >/dev/null 2>&1) && echo "$s"
}

build_cri_tools() {
  local dir=$1 s rc=0 ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION"
  go_env && GOBIN="$dir/bin" nice -n 15 go install -ldflags "$ldflags" "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION" || return
  # critest is a Ginkgo test binary: `go test -c` inside a scratch module that requires cri-tools.
  s=$(scratch_module cri-tools) || return
  (cd "$s" && go get -t "sigs.k8s.io/cri-tools/cmd/critest@$CRI_TOOLS_VERSION" &&
    nice -n 15 go test -c -ldflags "$ldflags" -o "$dir/bin/critest" sigs.k8s.io/cri-tools/cmd/critest) || rc=$?
  rm -rf "$s"
  return "$rc"
}

build_gvisor() {
  local dir=$1 s rc=0
  go_env && s=$(scratch_module gvisor) || return
  (cd "$s" && go get "gvisor.dev/gvisor@$GVISOR_VERSION" &&
    nice -n 15 go build -o "$dir/bin/runsc" gvisor.dev/gvisor/runsc &&
    nice -n 15 go build -o "$dir/bin/containerd-shim-runsc-v1" gvisor.dev/gvisor/shim) || rc=$?
  rm -rf "$s"
  return "$rc"
}

# gVisor's own shim with ONE relaxation (scripts/patches/gvisor-shim-oom-eperm.patch): a copy of the
# pinned module source under $dir/src (kept, so the built source can be read), patched, and used
# through a `replace` in a scratch module that otherwise resolves exactly the gvisor pin's
# requirements. runsc is not built here: the patched shim drives the gvisor peer's runsc.
build_gvisor_shim_patched() {
  local dir=$1 s src="$1/src" moddir rc=0
  go_env && s=$(scratch_module gvisor-shim-patched) || return
  (cd "$s" && go get "gvisor.dev/gvisor@$GVISOR_VERSION" &&
    moddir=$(go list -m -f "{{.Dir}}" "gvisor.dev/gvisor") && [ -n "$moddir" ] &&
    cp -a "$moddir" "$src" && chmod -R u+w "$src" &&
    (cd "$src" && patch -p1 --forward --fuzz=0 <"$GVISOR_SHIM_PATCH") &&
    go mod edit -replace "gvisor.dev/gvisor=$src" &&
    nice -n 15 go build -o "$dir/bin/containerd-shim-runsc-v1" gvisor.dev/gvisor/shim) || rc=$?
  rm -rf "$s"
  return "$rc"
}

build_peer() { # name
  local name=$1 dir="$PEERS_ROOT/$1" log start rc
  peer_stamp "$name" >/dev/null || return 1
  if peer_ok "$name"; then
    echo "[peers] $name: $(peer_stamp "$name") (cached)"
    return 0
  fi
  # Start from an empty directory: nothing from an older pin or a half-done build survives.
  rm -rf "$dir" && mkdir -p "$dir/bin" "$PEERS_LOG_DIR" || return
  log="$PEERS_LOG_DIR/$name.log"
  echo "[peers] $name: building $(peer_stamp "$name") (log: $log)"
  start=$(date +%s)
  rc=0
  local TIMEFORMAT='%0R s wall, %0U s user + %0S s sys CPU'
  {
    time case "$name" in
      youki) build_youki "$dir" ;;
      containerd-2) build_containerd "$dir" github.com/containerd/containerd/v2 "$CONTAINERD2_VERSION" ;;
      containerd-1.7) build_containerd "$dir" github.com/containerd/containerd "$CONTAINERD17_VERSION" ;;
      cri-tools) build_cri_tools "$dir" ;;
      gvisor) build_gvisor "$dir" ;;
      gvisor-shim-patched) build_gvisor_shim_patched "$dir" ;;
    esac >"$log" 2>&1
  } 2>"$log.time" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "[peers] $name: build FAILED (exit $rc); the tool's output ends with:" >&2
    tail -n 40 "$log" >&2
    return "$rc"
  fi
  local b
  for b in $(peer_bins "$name"); do
    [ -x "$dir/bin/$b" ] || { echo "[peers] $name: build produced no $dir/bin/$b" >&2; return 1; }
  done
  peer_stamp "$name" >"$dir/VERSION"
  echo "[peers] $name: built in $(($(date +%s) - start))s ($(cat "$log.time"))"
}

PEER_NAMES=(youki containerd-2 containerd-1.7 cri-tools gvisor gvisor-shim-patched)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ $# -gt 0 ] || set -- "${PEER_NAMES[@]}"
  for n in "$@"; do build_peer "$n"; done
fi
