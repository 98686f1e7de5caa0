import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseMountinfo } from './mountinfo.js';

test('parseMountinfo: fields, optional fields, octal escapes, malformed lines skipped', () => {
  const text = [
    '36 35 98:0 /mnt1 /mnt/parent\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
    '25 1 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 propagation:x - cgroup cgroup rw,cpu,cpuacct',
    '26 1 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate',
    'garbage',
    '',
  ].join('\n');
  const m = parseMountinfo(text);
  assert.is(m.length, 3);
  assert.equal(m[0], {
    id: 36, parent: 35, majorMinor: '98:0', root: '/mnt1', mountPoint: '/mnt/parent dir', options: 'rw,noatime',
    fstype: 'ext3', source: '/dev/root', superOptions: 'rw,errors=continue',
  });
  assert.equal([m[1]!.fstype, m[1]!.superOptions.split(',').slice(1)], ['cgroup', ['cpu', 'cpuacct']]);
  assert.equal([m[2]!.fstype, m[2]!.mountPoint], ['cgroup2', '/sys/fs/cgroup/unified']);
});

test('parseMountinfo: this process has a root mount', () => {
  assert.ok(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.mountPoint === '/'));
});

test.run();
