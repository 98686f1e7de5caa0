#!/usr/bin/env bash
# Installs everything tsshim needs on a fresh Debian 12 / Ubuntu host (run as root),
# builds it and installs the shim on containerd's PATH. Idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
say() { echo "[setup] $*"; }

if [ "$(id -u)" -ne 0 ]; then echo "[setup] run as root" >&2; exit 1; fi

PKGS=(containerd runc runsc crun criu busybox-static protobuf-compiler libprotobuf-dev iproute2 procps psmisc bsdutils util-linux ca-certificates
  containernetworking-plugins build-essential pkg-config libseccomp-dev git)
[ "${TSSHIM_WITH_CHROMIUM:-1}" = "1" ] && PKGS+=(chromium)
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then echo "[setup] Node.js >= 20 is required (found $(node -v))" >&2; exit 1; fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
node -e "require('koffi')" || { echo "[setup] koffi (prebuilt FFI) does not load on this host" >&2; exit 1; }

# Peers built from source at pinned versions (scripts/peers.sh, ADR 0015): youki, containerd 2.x
# and 1.7, cri-tools, gVisor's go branch, and gVisor's own shim patched (oom_score_adj EPERM tolerated,
# ADR 0017). Needs Go and Rust (cargo) on PATH; cached by a VERSION stamp per directory. youki
# (cargo) builds beside the Go chain; a failed build stops setup.
for tool in go cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "[setup] $tool is required to build the pinned peers (ADR 0015)" >&2; exit 1; }
done
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
peers_start=$(date +%s)
build_peer youki &
youki_pid=$!
go_rc=0
for n in containerd-2 containerd-1.7 cri-tools gvisor gvisor-shim-patched; do build_peer "$n" || { go_rc=$?; break; }; done
youki_rc=0
wait "$youki_pid" || youki_rc=$?
if [ "$go_rc" -ne 0 ] || [ "$youki_rc" -ne 0 ]; then echo "[setup] building the pinned peers failed (see above)" >&2; exit 1; fi
say "peers ready in $(($(date +%s) - peers_start))s under $PEERS_ROOT"
# The youki handler looks `youki` up on PATH: put the pinned build there (never over a real file).
if [ ! -e /usr/local/bin/youki ] || [ -L /usr/local/bin/youki ]; then
  ln -sfn "$PEERS_ROOT/youki/bin/youki" /usr/local/bin/youki
else
  say "warning: /usr/local/bin/youki is not ours; leaving it (the pinned build is $PEERS_ROOT/youki/bin/youki)"
fi

say "npm run build"
npm run build --silent >/dev/null

say "installing containerd-shim-tsshim-v2 and tsshim into /usr/local/bin"
for b in containerd-shim-tsshim-v2 tsshim; do
  ln -sf "$REPO/bin/$b" "/usr/local/bin/$b"
done
say "done: $(containerd --version | awk '{print $1, $3}'), $(runc --version | head -1), runsc $(runsc --version 2>/dev/null | head -1 | awk '{print $3}'), $(youki --version 2>/dev/null | head -1), node $(node -v)"
