// rootfsPropagation aliases: youki's profile rewrites containerd's rshared/rslave to the OCI names in
// config.json; runc's leaves the file untouched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { adaptSpec } from './spec-dialect.js';
import { youkiProfile } from '../youki/profile.js';
import { runcProfile } from '../runc/profile.js';

function bundle(spec: unknown): string {
  const d = mkdtempSync(join(tmpdir(), 'tsshim-dialect-'));
  writeFileSync(join(d, 'config.json'), JSON.stringify(spec, null, 2), { mode: 0o644 });
  return d;
}

test('youki: rshared -> shared, rslave -> slave; everything else kept; mode kept', async () => {
  for (const [from, to] of [['rshared', 'shared'], ['rslave', 'slave'], ['rprivate', 'private']] as const) {
    const spec = { ociVersion: '1.1.0', process: { args: ['sh'] }, linux: { rootfsPropagation: from, cgroupsPath: '/x' }, mounts: [{ destination: '/m', options: ['rbind', 'rshared'] }] };
    const d = bundle(spec);
    try {
      assert.is(await adaptSpec(youkiProfile, d, JSON.parse(JSON.stringify(spec))), `rootfsPropagation ${from} -> ${to}`);
      const got = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      assert.equal(got, { ...spec, linux: { ...spec.linux, rootfsPropagation: to } });
      assert.is(statSync(join(d, 'config.json')).mode & 0o777, 0o644);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }
});

test('youki with an OCI name or none, and runc with rshared: config.json untouched', async () => {
  for (const [profile, spec] of [
    [youkiProfile, { linux: { rootfsPropagation: 'shared' } }],
    [youkiProfile, { linux: {} }],
    [runcProfile, { linux: { rootfsPropagation: 'rshared' } }],
  ] as const) {
    const d = bundle(spec);
    const before = readFileSync(join(d, 'config.json'), 'utf8');
    try {
      assert.is(await adaptSpec(profile, d, JSON.parse(before)), undefined);
      assert.is(readFileSync(join(d, 'config.json'), 'utf8'), before);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }
});

test.run();
