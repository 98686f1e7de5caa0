#!/bin/sh
# Evidence for docs/critest.md: youki 0.7.0 refuses linux.rootfsPropagation "rshared" and "rslave"
# (what containerd's CRI writes for Bidirectional / HostToContainer mounts) and accepts the OCI
# spec's names "shared" / "slave" (it always adds MS_REC); runc accepts both spellings. No shim,
# no containerd. Run as root: sh test/critest/evidence/youki-rootfs-propagation.sh [youki binary]
set -eu
YOUKI=${1:-/opt/tsshim/peers/youki/bin/youki}
BUSYBOX=$(command -v busybox)
W=$(mktemp -d /tmp/tsshim-youki-prop.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bundle/rootfs/bin" "$W/bundle/rootfs/proc" "$W/bundle/rootfs/dev" "$W/bundle/rootfs/sys" "$W/bundle/rootfs/tmp"
cp "$BUSYBOX" "$W/bundle/rootfs/bin/busybox"
ln -s busybox "$W/bundle/rootfs/bin/true"
cd "$W/bundle"
"$YOUKI" spec
n=0
for bin in "$YOUKI" "$(command -v runc)"; do
  for prop in rshared shared rslave slave; do
    n=$((n + 1))
    python3 -c "
import json; d = json.load(open('config.json')); d['process']['terminal'] = False; d['process']['args'] = ['true']
d['linux']['rootfsPropagation'] = '$prop'; json.dump(d, open('config.json', 'w'))"
    if out=$("$bin" --root "$W/state" run ev$n </dev/null 2>&1); then r=ok; else r="refused: $(printf %s "$out" | grep -o 'UnknownRootfsPropagation([^)]*)' | head -1)"; fi
    "$bin" --root "$W/state" delete --force ev$n >/dev/null 2>&1 || true
    echo "$(basename "$bin") rootfsPropagation=$prop: $r"
  done
done
