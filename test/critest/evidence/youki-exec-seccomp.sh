#!/bin/sh
# Evidence for docs/critest.md: youki 0.7.0 does not apply the container's seccomp profile to a
# process started with `youki exec` (no shim, no containerd involved); runc does. Run as root:
#   sh test/critest/evidence/youki-exec-seccomp.sh [youki binary]
# One bundle (busybox-static rootfs, a seccomp profile that denies sethostname with EPERM,
# CAP_SYS_ADMIN granted, noNewPrivileges false as in critest's containers), run with each runtime:
# the init and an exec'd process (`exec --process process.json`, as a shim runs it) print their
# "Seccomp:" status (2 = filter, 0 = none) and try sethostname.
set -eu
YOUKI=${1:-/opt/tsshim/peers/youki/bin/youki}
BUSYBOX=$(command -v busybox)
W=$(mktemp -d /tmp/tsshim-youki-seccomp.XXXXXX)
trap 'for r in youki runc; do "$(cat "$W/$r.bin" 2>/dev/null || echo true)" --root "$W/$r-state" delete --force ev-$r >/dev/null 2>&1 || true; done; rm -rf "$W"' EXIT
mkdir -p "$W/bundle/rootfs/bin" "$W/bundle/rootfs/proc" "$W/bundle/rootfs/dev" "$W/bundle/rootfs/sys" "$W/bundle/rootfs/tmp"
cp "$BUSYBOX" "$W/bundle/rootfs/bin/busybox"
for a in sh grep hostname sleep; do ln -s busybox "$W/bundle/rootfs/bin/$a"; done
cd "$W/bundle"
"$YOUKI" spec
python3 - <<'PY'
import json
d = json.load(open('config.json'))
p = d['process']
p['terminal'] = False
p['noNewPrivileges'] = False
for k in p['capabilities']:
    if 'CAP_SYS_ADMIN' not in p['capabilities'][k]:
        p['capabilities'][k].append('CAP_SYS_ADMIN')
d['root']['readonly'] = False
d['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_X86_64'],
                         'syscalls': [{'names': ['sethostname'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]}
probe = 'grep "^Seccomp:" /proc/self/status; hostname probe 2>/dev/null && echo "sethostname: allowed" || echo "sethostname: denied"'
e = dict(p); e['args'] = ['sh', '-c', probe]
json.dump(e, open('../process.json', 'w'))
p['args'] = ['sleep', '300']
json.dump(d, open('config.json', 'w'))
PY
echo "$YOUKI" >"$W/youki.bin"
command -v runc >"$W/runc.bin"
for r in youki runc; do
  bin=$(cat "$W/$r.bin")
  "$bin" --root "$W/$r-state" run --detach ev-$r </dev/null >/dev/null 2>&1
  echo "== $r ($("$bin" --version | head -1))"
  printf 'init: '; "$bin" --root "$W/$r-state" exec ev-$r grep "^Seccomp:" /proc/1/status
  printf 'exec: '; "$bin" --root "$W/$r-state" exec --process "$W/process.json" ev-$r | tr '\n' ' '; echo
  "$bin" --root "$W/$r-state" kill ev-$r KILL >/dev/null 2>&1 || true
done
