import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ShimError } from '../../shim-api/errors.js';
import { defineProfile } from './profile.js';
import { RUNC_OPERATIONS } from '../../shim-api/operations.js';
import { runcProfile } from '../runc/profile.js';
import { gvisorProfile, gvisorProfileWith } from '../gvisor/profile.js';
import { youkiProfile } from '../youki/profile.js';
import { genericProfile } from '../oci/profile.js';
import { crunProfile } from '../crun/profile.js';

const invalid = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof ShimError && e.kind === 'InvalidArgument' && re.test(e.message));

test('defaults: every operation, host pids, kill --all, --force, --systemd-cgroup, no CRIU', () => {
  const p = defineProfile({ name: 'x', binary: 'x', defaultRoot: '/run/x/' });
  assert.equal([...p.supports].sort(), [...RUNC_OPERATIONS].sort());
  assert.not.ok(p.supports.has('wait'), 'runc has no wait subcommand');
  assert.is(p.exitMonitor, 'reap');
  assert.is(p.subcontainerStdioAt, 'create');
  assert.is(p.defaultRoot, '/run/x');
  assert.is(p.psReportsHostPids, true);
  assert.is(p.killAllFlag, true);
  assert.is(p.forceDeleteFlag, '--force');
  assert.is(p.systemdCgroupFlag, '--systemd-cgroup');
  assert.is(p.criuFlag, undefined);
  assert.is(p.checkpointSubcommand, undefined);
  assert.equal(p.globalArgs, []);
  assert.is(defineProfile({ name: 'y', binary: 'y', defaultRoot: '/r', systemdCgroupFlag: false }).systemdCgroupFlag, undefined);
});

test('validation', () => {
  invalid(() => defineProfile({ name: 'bad name', binary: 'x', defaultRoot: '/r' }), /name must match/);
  invalid(() => defineProfile({ name: 'x', binary: '', defaultRoot: '/r' }), /binary/);
  invalid(() => defineProfile({ name: 'x', binary: 'bin/x', defaultRoot: '/r' }), /bare name .* or an absolute path/);
  invalid(() => defineProfile({ name: 'x', binary: 'x', defaultRoot: 'run/x' }), /defaultRoot must be an absolute path/);
  invalid(() => defineProfile({ name: 'x', binary: 'x', defaultRoot: '/r', globalArgs: ['--root=/y'] }), /owned by the driver/);
  invalid(() => defineProfile({ name: 'x', binary: 'x', defaultRoot: '/r', globalArgs: ['plain'] }), /is not a flag/);
  invalid(() => defineProfile({ name: 'x', binary: 'x', defaultRoot: '/r', supports: ['create', 'fly' as 'start'] }), /unknown operation "fly"/);
  invalid(
    () => defineProfile({ name: 'x', binary: 'x', defaultRoot: '/r', flags: { 'teleport --now': 'drop' } as never }),
    /must be "<operation> --<flag>"/,
  );
  invalid(
    () => defineProfile({ name: 'x', binary: 'x', defaultRoot: '/r', flags: { 'create --no-pivot': 'maybe' as 'drop' } }),
    /disposition must be pass, drop or reject/,
  );
});

test('profiles are immutable', () => {
  assert.ok(Object.isFrozen(runcProfile));
  assert.throws(() => (runcProfile.supports as Set<string>).add('x'), /read-only/);
  assert.throws(() => (runcProfile.supports as Set<string>).delete('create'), /read-only/);
  assert.throws(() => (gvisorProfile.flags as Map<string, string>).set('create --x', 'pass'), /read-only/);
  assert.ok(runcProfile.supports.has('create'));
});

test('backend profiles state the documented differences', () => {
  assert.equal([...runcProfile.supports].sort(), [...RUNC_OPERATIONS].sort());
  assert.is(runcProfile.criuFlag, '--criu');
  assert.is(runcProfile.defaultRoot, '/run/containerd/runc');

  assert.is(gvisorProfile.binary, 'runsc');
  assert.is(gvisorProfile.defaultRoot, '/run/containerd/runsc');
  assert.equal(gvisorProfile.globalArgs, ['--platform=ptrace', '--network=none']);
  assert.not.ok(gvisorProfile.supports.has('update'));
  assert.not.ok(gvisorProfile.supports.has('features'));
  assert.ok(gvisorProfile.supports.has('checkpoint') && gvisorProfile.supports.has('restore'));
  assert.is(gvisorProfile.psReportsHostPids, false);
  assert.ok(gvisorProfile.supports.has('wait'));
  assert.is(gvisorProfile.exitMonitor, 'wait', 'the pid file names the shared sandbox');
  assert.is(gvisorProfile.subcontainerStdioAt, 'start');
  assert.is(gvisorProfile.criuFlag, undefined);
  assert.equal(gvisorProfileWith({ platform: 'kvm', network: 'host' }).globalArgs, ['--platform=kvm', '--network=host']);
  // checkpoint through the shim: only a runsc whose --leave-running resumes the same sandbox
  assert.match(gvisorProfile.shimUnsupported.checkpoint ?? '', /rebuilds the sandbox/);
  assert.is(gvisorProfileWith({ platform: 'ptrace', network: 'none' }, { binary: '/x/runsc', update: true, checkpointResumes: true }).shimUnsupported.checkpoint, undefined);
  // The pinned runsc prints the OCI features document (-info reports it, as gVisor's own shim does).
  const pinned = gvisorProfileWith({ platform: 'ptrace', network: 'none' }, { binary: '/x/runsc', update: true, checkpointResumes: true, ociFeatures: true });
  assert.ok(pinned.supports.has('features') && pinned.supports.has('update') && pinned.supports.has('wait'));

  assert.is(youkiProfile.checkpointSubcommand, 'checkpointt');
  assert.not.ok(youkiProfile.supports.has('restore'));
  assert.ok(youkiProfile.supports.has('update') && youkiProfile.supports.has('features') && youkiProfile.supports.has('events'));

  for (const op of ['events', 'checkpoint', 'restore', 'features'] as const) assert.not.ok(crunProfile.supports.has(op), op);
  assert.is(crunProfile.defaultRoot, '/run/containerd/crun');
  const g = genericProfile({ name: 'myrt', binary: '/opt/myrt/bin/myrt', globalArgs: ['--debug'], supports: ['create', 'start'], root: '/run/myrt' });
  assert.equal([...g.supports], ['create', 'start']);
  assert.is(g.defaultRoot, '/run/myrt');
  assert.equal(g.globalArgs, ['--debug']);
});

test('runsc stray files: the lock of a create killed before its state was written; nothing else', () => {
  const id = 'c1';
  const names = ['c1_sandbox:p1.lock', 'c2_sandbox:p1.lock', 'c10_sandbox:p1.lock', 'p1_sandbox:p1.lock', 'p1_sandbox:p1.state', 'c3_sandbox:p1.lock', 'c3_sandbox:p1.state'];
  assert.equal(gvisorProfile.strayFiles?.(id, names), ['c1_sandbox:p1.lock']);
  assert.equal(gvisorProfile.strayFiles?.('c3', names), [], 'a lock beside its state belongs to a container runsc knows: delete removes both');
  assert.equal(gvisorProfile.strayFiles?.('p1', names), []);
  assert.is(runcProfile.strayFiles, undefined);
});

test.run();
