// The cgroup of a failed create: which directories a cgroupsPath names on each hierarchy, and
// rmdir of exactly those (real directories under a temporary root; a non-empty one is kept).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupDirsOf, removeCgroupDirs } from './remove.js';

const mountinfo = (root: string) =>
  [
    `31 23 0:28 / ${root} rw,relatime - tmpfs tmpfs rw,mode=755`,
    `32 31 0:29 / ${root}/cpu rw,relatime - cgroup cgroup rw,cpu`,
    `33 31 0:30 / ${root}/memory rw,relatime - cgroup cgroup rw,memory`,
    `34 31 0:31 / ${root}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd`,
    `35 31 0:32 / ${root}/unified rw,relatime - cgroup2 cgroup2 rw`,
    // a nested view: this mount shows only /kubepods of its hierarchy
    `36 31 0:33 /kubepods ${root}/pids rw,relatime - cgroup cgroup rw,pids`,
    `37 23 0:34 / /elsewhere/cpu rw,relatime - cgroup cgroup rw,cpu`,
    '',
  ].join('\n');

test('an absolute path names one directory per hierarchy mounted under the root (v1, named, unified)', () => {
  assert.equal(cgroupDirsOf('/tsshim-test/c1', mountinfo('/sys/fs/cgroup')).sort(), [
    '/sys/fs/cgroup/cpu/tsshim-test/c1',
    '/sys/fs/cgroup/memory/tsshim-test/c1',
    '/sys/fs/cgroup/systemd/tsshim-test/c1',
    '/sys/fs/cgroup/unified/tsshim-test/c1',
  ]);
  // inside a mount's view: relative to its root
  assert.equal(cgroupDirsOf('/kubepods/pod1/c1', mountinfo('/sys/fs/cgroup')).filter((d) => d.includes('/pids/')), ['/sys/fs/cgroup/pids/pod1/c1']);
});

test('systemd-style, relative, root and empty paths name nothing', () => {
  for (const p of ['system.slice:tsshim:c1', 'tsshim-test/c1', '/', '/..', '', undefined]) assert.equal(cgroupDirsOf(p, mountinfo('/sys/fs/cgroup')), [], String(p));
});

test('removeCgroupDirs: rmdir of the leaf on each hierarchy; missing ones are fine, a non-empty one is kept', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cgrm-'));
  try {
    for (const h of ['cpu', 'memory', 'systemd', 'unified']) mkdirSync(join(root, h, 'ns', 'c1'), { recursive: true });
    writeFileSync(join(root, 'memory', 'ns', 'c1', 'busy'), ''); // stands for a cgroup with a process inside
    rmSync(join(root, 'systemd', 'ns', 'c1'), { recursive: true }); // never made on this hierarchy
    const r = await removeCgroupDirs('/ns/c1', { root, mountinfo: mountinfo(root) });
    assert.equal(r.removed.sort(), [join(root, 'cpu/ns/c1'), join(root, 'unified/ns/c1')]);
    assert.equal(r.kept.map((k) => k.dir), [join(root, 'memory/ns/c1')]);
    assert.ok(existsSync(join(root, 'cpu', 'ns')), 'the parent stays');
    assert.not.ok(existsSync(join(root, 'cpu', 'ns', 'c1')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
