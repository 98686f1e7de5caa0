/**
 * OciCliDriver against a fake runtime binary: a sh script that records its argv
 * (NUL-separated, one invocation per line), its cwd and its stdin, prints canned
 * stdout/stderr, appends a canned line to the --log file and exits with a canned
 * code. Asserts the exact command lines per profile and the error handling.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ShimError } from '../../shim-api/errors.js';
import { classifyFailure, lastLogError, OciCliDriver, readPidFile, type DriverConfig } from './driver.js';
import { defineProfile, type Operation, type RuntimeProfile } from './profile.js';
import { execaRunner } from './testing/execa-runner.js';
import type { CommandRunner } from './runner.js';
import { runcProfile } from '../runc/profile.js';
import { gvisorProfile, gvisorGlobalArgs } from '../gvisor/profile.js';
import { youkiProfile } from '../youki/profile.js';
import { genericProfile } from '../oci/profile.js';
import { crunProfile } from '../crun/profile.js';

const top = mkdtempSync(path.join(tmpdir(), 'tsshim-oci-driver-'));
let seq = 0;

interface Fake {
  dir: string;
  bin: string;
  bundle: string;
  root: string;
  calls(): string[][];
  cwds(): string[];
  stdin(): string | undefined;
  set(file: 'exit' | 'stdout' | 'stderr' | 'logline' | 'sleep' | 'killself', content: string): void;
}

function fake(): Fake {
  const dir = path.join(top, `f${++seq}`);
  const bundle = path.join(dir, 'bundle');
  mkdirSync(bundle, { recursive: true });
  const bin = path.join(dir, 'fake-runtime');
  writeFileSync(
    bin,
    `#!/bin/sh
D='${dir}'
printf '%s\\0' "$@" >> "$D/argv"; printf '\\n' >> "$D/argv"
pwd >> "$D/cwd"
log=""; prev=""; pidfile=""
for a in "$@"; do
  [ "$prev" = "--log" ] && log="$a"
  [ "$prev" = "--pid-file" ] && pidfile="$a"
  [ "$a" = "-" ] && cat > "$D/stdin"
  prev="$a"
done
[ -f "$D/logline" ] && [ -n "$log" ] && cat "$D/logline" >> "$log"
[ -n "$pidfile" ] && [ -d "$(dirname "$pidfile")" ] && printf 4242 > "$pidfile"
[ -f "$D/stdout" ] && cat "$D/stdout"
[ -f "$D/stderr" ] && cat "$D/stderr" >&2
[ -f "$D/sleep" ] && exec sleep "$(cat "$D/sleep")"
[ -f "$D/killself" ] && kill -9 $$
[ -f "$D/exit" ] && exit "$(cat "$D/exit")"
exit 0
`,
  );
  chmodSync(bin, 0o755);
  return {
    dir,
    bin,
    bundle,
    root: path.join(dir, 'state'),
    calls: () =>
      existsSync(path.join(dir, 'argv'))
        ? readFileSync(path.join(dir, 'argv'), 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => l.split('\0').slice(0, -1))
        : [],
    cwds: () =>
      existsSync(path.join(dir, 'cwd')) ? readFileSync(path.join(dir, 'cwd'), 'utf8').split('\n').filter(Boolean) : [],
    stdin: () => (existsSync(path.join(dir, 'stdin')) ? readFileSync(path.join(dir, 'stdin'), 'utf8') : undefined),
    set: (file, content) => writeFileSync(path.join(dir, file), content),
  };
}

function driverFor(f: Fake, profile: RuntimeProfile, extra: Partial<DriverConfig> = {}, run: CommandRunner = execaRunner) {
  return new OciCliDriver({ profile, binary: f.bin, root: f.root, namespace: 'ns1', bundle: f.bundle, ...extra }, run);
}

function g(f: Fake, ...more: string[]): string[] {
  return ['--root', `${f.root}/ns1`, '--log', `${f.bundle}/log.json`, '--log-format', 'json', ...more];
}
const RUNSC_G = ['--platform=ptrace', '--network=none'];

async function rejects(p: Promise<unknown>, kind: string, message?: string | RegExp): Promise<ShimError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, ShimError, `expected ShimError, got ${String(e)}`);
    const se = e as ShimError;
    assert.is(se.kind, kind, `kind of: ${se.message}`);
    if (typeof message === 'string') assert.is(se.message, message);
    else if (message) assert.match(se.message, message);
    return se;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

// --- argv per operation -------------------------------------------------------

test('globalArgs: root/<ns>, log.json, json format, profile args, extra, systemd, criu', () => {
  const f = fake();
  const d = driverFor(f, runcProfile, { systemdCgroup: true, criuPath: '/usr/sbin/criu', extraGlobalArgs: ['--debug'] });
  assert.equal(d.globalArgs(), g(f, '--debug', '--systemd-cgroup', '--criu', '/usr/sbin/criu'));
  assert.is(d.root, `${f.root}/ns1`);
  assert.is(d.logPath, `${f.bundle}/log.json`);
  const def = new OciCliDriver({ profile: runcProfile, namespace: 'k8s.io', bundle: '/b' }, execaRunner);
  assert.is(def.binary, 'runc');
  assert.equal(def.globalArgs(), ['--root', '/run/containerd/runc/k8s.io', '--log', '/b/log.json', '--log-format', 'json']);
  const rs = new OciCliDriver({ profile: gvisorProfile, namespace: 'default', bundle: '/b' }, execaRunner);
  assert.equal(rs.globalArgs(), ['--root', '/run/containerd/runsc/default', '--log', '/b/log.json', '--log-format', 'json', ...RUNSC_G]);
});

test('constructor refuses a CRIU path for runsc and bad namespaces/bundles', () => {
  assert.throws(
    () => new OciCliDriver({ profile: gvisorProfile, namespace: 'default', bundle: '/b', criuPath: '/usr/sbin/criu' }, execaRunner),
    (e: unknown) => e instanceof ShimError && e.kind === 'InvalidArgument' && /runsc does not use CRIU/.test(e.message),
  );
  assert.throws(() => new OciCliDriver({ profile: runcProfile, namespace: '../x', bundle: '/b' }, execaRunner), /invalid namespace/);
  assert.throws(() => new OciCliDriver({ profile: runcProfile, namespace: 'default', bundle: 'rel' }, execaRunner), /absolute/);
});

test('create: runc with console socket, no-pivot, no-new-keyring; cwd is the bundle', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  assert.is(await d.create('c1', { pidFile: `${f.bundle}/init.pid`, consoleSocket: '/tmp/cs.sock', noPivot: true, noNewKeyring: true }), 4242, 'the pid from the pid file');
  assert.equal(f.calls(), [
    g(f, 'create', '--bundle', f.bundle, '--pid-file', `${f.bundle}/init.pid`, '--console-socket', '/tmp/cs.sock', '--no-pivot', '--no-new-keyring', 'c1'),
  ]);
  assert.equal(f.cwds(), [f.bundle]);
});

test('create: runsc drops --no-pivot/--no-new-keyring; youki keeps them', async () => {
  const f = fake();
  await driverFor(f, gvisorProfile).create('c1', { pidFile: `${f.dir}/init.pid`, consoleSocket: '/s', noPivot: true, noNewKeyring: true });
  assert.equal(f.calls(), [g(f, ...RUNSC_G, 'create', '--bundle', f.bundle, '--pid-file', `${f.dir}/init.pid`, '--console-socket', '/s', 'c1')]);
  const y = fake();
  await driverFor(y, youkiProfile).create('c1', { pidFile: `${y.dir}/init.pid`, noPivot: true });
  assert.equal(y.calls(), [g(y, 'create', '--bundle', y.bundle, '--pid-file', `${y.dir}/init.pid`, '--no-pivot', 'c1')]);
});

test('start, pause, resume, delete, delete --force', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  await d.start('c1');
  await d.pause('c1');
  await d.resume('c1');
  await d.delete('c1');
  await d.delete('c1', { force: true });
  assert.equal(f.calls(), [
    g(f, 'start', 'c1'),
    g(f, 'pause', 'c1'),
    g(f, 'resume', 'c1'),
    g(f, 'delete', 'c1'),
    g(f, 'delete', '--force', 'c1'),
  ]);
  const r = fake();
  await driverFor(r, gvisorProfile).delete('c1', { force: true });
  assert.equal(r.calls(), [g(r, ...RUNSC_G, 'delete', '--force', 'c1')]);
});

test('exec: always --detach; runsc may add --internal-pid-file, runc may not', async () => {
  const f = fake();
  assert.is(await driverFor(f, runcProfile).exec('c1', { processJsonPath: '/t/p.json', pidFile: `${f.dir}/e1.pid`, consoleSocket: '/t/cs' }), 4242);
  assert.equal(f.calls(), [g(f, 'exec', '--process', '/t/p.json', '--detach', '--pid-file', `${f.dir}/e1.pid`, '--console-socket', '/t/cs', 'c1')]);
  const r = fake();
  await driverFor(r, gvisorProfile).exec('c1', { processJsonPath: '/t/p.json', pidFile: `${r.dir}/e1.pid`, internalPidFile: '/t/e1.ipid' });
  assert.equal(r.calls(), [
    g(r, ...RUNSC_G, 'exec', '--process', '/t/p.json', '--detach', '--pid-file', `${r.dir}/e1.pid`, '--internal-pid-file', '/t/e1.ipid', 'c1'),
  ]);
  const n = fake();
  await rejects(
    driverFor(n, runcProfile).exec('c1', { processJsonPath: '/t/p.json', pidFile: '/t/e.pid', internalPidFile: '/t/i' }),
    'Unimplemented',
    'runc does not support exec --internal-pid-file',
  );
  assert.equal(n.calls(), []);
});

test('kill: signal number last, --all before the id; no --all without killAllFlag', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  await d.kill('c1', 15);
  await d.kill('c1', 9, true);
  assert.equal(f.calls(), [g(f, 'kill', 'c1', '15'), g(f, 'kill', '--all', 'c1', '9')]);
  const r = fake();
  await driverFor(r, gvisorProfile).kill('c1', 9, true);
  assert.equal(r.calls(), [g(r, ...RUNSC_G, 'kill', '--all', 'c1', '9')]);
  const n = fake();
  const noAll = genericProfile({ name: 'plain', binary: 'plain', killAllFlag: false });
  await driverFor(n, noAll).kill('c1', 9, true);
  assert.equal(n.calls(), [g(n, 'kill', 'c1', '9')]);
  await rejects(d.kill('c1', 65), 'InvalidArgument');
  await rejects(d.kill('--all', 9), 'InvalidArgument', 'invalid container id "--all"');
});

test('kill --pid: one process by the runtime pid for it (runsc); runc has no such flag', async () => {
  const r = fake();
  await driverFor(r, gvisorProfile).kill('c1', 9, false, 7);
  assert.equal(r.calls(), [g(r, ...RUNSC_G, 'kill', '--pid', '7', 'c1', '9')]);
  await rejects(driverFor(r, gvisorProfile).kill('c1', 9, false, 0), 'InvalidArgument', 'invalid pid 0');
  const f = fake();
  await rejects(driverFor(f, runcProfile).kill('c1', 9, false, 7), 'Unimplemented');
  assert.equal(f.calls(), []);
  assert.is(gvisorProfile.execSignal, 'runtime');
  assert.is(runcProfile.execSignal, 'pid');
});

test('ps parses the JSON pid list; state normalises runc/youki/runsc shapes', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  f.set('stdout', '[4242,4250]\n');
  assert.equal(await d.ps('c1'), [4242, 4250]);
  f.set('stdout', 'null\n');
  assert.equal(await d.ps('c1'), []);
  f.set('stdout', JSON.stringify({ ociVersion: '1.0.2', id: 'c1', pid: 4242, status: 'running', bundle: f.bundle, rootfs: '/r' }));
  assert.equal(await d.state('c1'), { id: 'c1', pid: 4242, status: 'running', bundle: f.bundle });
  f.set('stdout', JSON.stringify({ ociVersion: '1.0.2', id: 'c1', status: 'creating', bundle: '/b', createdAt: 'x' }));
  assert.equal(await d.state('c1'), { id: 'c1', pid: 0, status: 'creating', bundle: '/b' });
  f.set('stdout', JSON.stringify({ ociVersion: '1.0.2', id: 'c1', status: 'stopped', pid: -1, bundle: '/b' }));
  assert.equal(await d.state('c1'), { id: 'c1', pid: 0, status: 'stopped', bundle: '/b' });
  f.set('stdout', 'not json');
  await rejects(d.ps('c1'), 'Internal', /runc ps printed "not json", not JSON/);
  assert.equal(f.calls().slice(0, 2), [g(f, 'ps', '--format', 'json', 'c1'), g(f, 'ps', '--format', 'json', 'c1')]);
  assert.equal(f.calls()[2], g(f, 'state', 'c1'));
});

test('update: resources JSON goes to stdin of `update --resources - <id>`', async () => {
  const f = fake();
  const json = JSON.stringify({ memory: { limit: 33554432 }, pids: { limit: 64 } });
  await driverFor(f, runcProfile).update('c1', json);
  assert.equal(f.calls(), [g(f, 'update', '--resources', '-', 'c1')]);
  assert.is(f.stdin(), json);
  await rejects(driverFor(f, runcProfile).update('c1', '{oops'), 'InvalidArgument', /not valid JSON/);
  assert.is(f.calls().length, 1);
});

test('checkpoint: runc CRIU flags; youki uses checkpointt; runsc drops CRIU-only flags', async () => {
  const f = fake();
  await driverFor(f, runcProfile).checkpoint('c1', {
    imagePath: '/cp/img',
    workPath: '/cp/work',
    leaveRunning: true,
    tcpEstablished: true,
    externalUnixSockets: true,
    shellJob: true,
    fileLocks: true,
    emptyNamespaces: ['network', 'ipc'],
    cgroupsMode: 'soft',
  });
  assert.equal(f.calls(), [
    g(f, 'checkpoint', '--image-path', '/cp/img', '--work-path', '/cp/work', '--leave-running', '--tcp-established', '--ext-unix-sk',
      '--shell-job', '--file-locks', '--empty-ns', 'network', '--empty-ns', 'ipc', '--manage-cgroups-mode', 'soft', 'c1'),
  ]);
  const y = fake();
  await driverFor(y, youkiProfile).checkpoint('c1', { imagePath: '/cp/img', leaveRunning: true });
  assert.equal(y.calls(), [g(y, 'checkpointt', '--image-path', '/cp/img', '--leave-running', 'c1')]);
  await rejects(
    driverFor(y, youkiProfile).checkpoint('c1', { imagePath: '/cp/img', emptyNamespaces: ['network'] }),
    'Unimplemented',
    'youki does not support checkpoint --empty-ns',
  );
  const r = fake();
  await driverFor(r, gvisorProfile).checkpoint('c1', { imagePath: '/cp/img', workPath: '/cp/w', leaveRunning: true });
  assert.equal(r.calls(), [g(r, ...RUNSC_G, 'checkpoint', '--image-path', '/cp/img', '--work-path', '/cp/w', '--leave-running', 'c1')]);
  // CRIU knobs (ctr sets file locks by default) select nothing in a gVisor state file: dropped.
  await driverFor(r, gvisorProfile).checkpoint('c1', { imagePath: '/cp/img2', tcpEstablished: true, fileLocks: true, leaveRunning: true });
  assert.equal(r.calls()[1], g(r, ...RUNSC_G, 'checkpoint', '--image-path', '/cp/img2', '--leave-running', 'c1'));
  assert.is(r.calls().length, 2);
});

test('restore: runc and runsc argv; youki has none', async () => {
  const f = fake();
  await driverFor(f, runcProfile).restore('c1', {
    imagePath: '/cp/img',
    workPath: '/cp/work',
    pidFile: `${f.dir}/init.pid`,
    consoleSocket: '/cs',
    noPivot: true,
    detach: true,
    tcpEstablished: true,
  });
  assert.equal(f.calls(), [
    g(f, 'restore', '--image-path', '/cp/img', '--work-path', '/cp/work', '--tcp-established', '--detach', '--bundle', f.bundle,
      '--pid-file', `${f.dir}/init.pid`, '--console-socket', '/cs', '--no-pivot', '--no-subreaper', 'c1'),
  ]);
  const r = fake();
  await driverFor(r, gvisorProfile).restore('c1', { imagePath: '/cp/img', pidFile: `${r.dir}/init.pid`, noPivot: true, detach: true });
  assert.equal(r.calls(), [
    g(r, ...RUNSC_G, 'restore', '--image-path', '/cp/img', '--detach', '--bundle', r.bundle, '--pid-file', `${r.dir}/init.pid`, '--no-subreaper', 'c1'),
  ]);
  const y = fake();
  await rejects(driverFor(y, youkiProfile).restore('c1', { imagePath: '/i', pidFile: '/p', detach: true }), 'Unimplemented', 'youki does not support restore');
  assert.equal(y.calls(), []);
});

test('features: parsed for runc; Unimplemented for runsc and crun without running anything', async () => {
  const f = fake();
  f.set('stdout', JSON.stringify({ ociVersionMin: '1.0.0', ociVersionMax: '1.1.0' }));
  assert.equal(await driverFor(f, runcProfile).features(), { ociVersionMin: '1.0.0', ociVersionMax: '1.1.0' });
  assert.equal(f.calls(), [g(f, 'features')]);
  const r = fake();
  await rejects(driverFor(r, gvisorProfile).features(), 'Unimplemented', 'runsc does not support features');
  await rejects(driverFor(r, gvisorProfile).update('c1', '{}'), 'Unimplemented', 'runsc does not support update');
  const c = fake();
  await rejects(driverFor(c, crunProfile).features(), 'Unimplemented', 'crun does not support features');
  await rejects(driverFor(c, crunProfile).checkpoint('c1', { imagePath: '/i' }), 'Unimplemented', 'crun does not support checkpoint');
  await rejects(driverFor(c, crunProfile).restore('c1', { imagePath: '/i', pidFile: '/p', detach: true }), 'Unimplemented', 'crun does not support restore');
  assert.equal(r.calls(), []);
  assert.equal(c.calls(), []);
});

test('unsupported operations never reach the runner', async () => {
  let ran = 0;
  const counting: CommandRunner = async () => {
    ran++;
    return { exitCode: 0, stdout: '', stderr: '', failed: false };
  };
  const none = defineProfile({ name: 'nothing', binary: 'nothing', defaultRoot: '/run/x', supports: [] });
  const d = new OciCliDriver({ profile: none, namespace: 'default', bundle: '/b' }, counting);
  const calls: [Operation, () => Promise<unknown>][] = [
    ['create', () => d.create('c', { pidFile: '/p' })],
    ['start', () => d.start('c')],
    ['exec', () => d.exec('c', { processJsonPath: '/j', pidFile: '/p' })],
    ['kill', () => d.kill('c', 9)],
    ['delete', () => d.delete('c')],
    ['pause', () => d.pause('c')],
    ['resume', () => d.resume('c')],
    ['ps', () => d.ps('c')],
    ['update', () => d.update('c', '{}')],
    ['checkpoint', () => d.checkpoint('c', { imagePath: '/i' })],
    ['restore', () => d.restore('c', { imagePath: '/i', pidFile: '/p', detach: true })],
    ['state', () => d.state('c')],
    ['features', () => d.features()],
  ];
  for (const [op, call] of calls) await rejects(call(), 'Unimplemented', `nothing does not support ${op}`);
  assert.is(ran, 0);
});

// --- missing binary -------------------------------------------------------------

test('missing binary: absolute path checked up front, bare name via runner ENOENT', async () => {
  const f = fake();
  await rejects(
    driverFor(f, runcProfile, { binary: path.join(f.dir, 'no-such-runc') }).start('c1'),
    'FailedPrecondition',
    `OCI runtime binary "${path.join(f.dir, 'no-such-runc')}" not found: install runc or set BinaryName/binary in the handler config`,
  );
  let ran = 0;
  const counting: CommandRunner = async (...a) => {
    ran++;
    return execaRunner(...a);
  };
  await rejects(driverFor(f, runcProfile, { binary: path.join(f.dir, 'no-such-runc') }, counting).kill('c1', 9), 'FailedPrecondition');
  assert.is(ran, 0, 'absolute path is checked before running');
  await rejects(
    new OciCliDriver({ profile: gvisorProfile, binary: 'tsshim-no-such-runtime-xyz', namespace: 'default', bundle: f.bundle }, counting).start('c1'),
    'FailedPrecondition',
    'OCI runtime binary "tsshim-no-such-runtime-xyz" not found: install runsc or set BinaryName/binary in the handler config',
  );
  assert.is(ran, 1, 'bare name reached the runner, which threw ENOENT');
});

// --- failures and log.json --------------------------------------------------------

test('non-zero exit: last error line of log.json, garbage tolerated, runc-v2 style message (no exit status when the log has the error)', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  f.set('exit', '1');
  f.set('stderr', 'stderr text\n');
  f.set(
    'logline',
    [
      'garbage line {not json',
      '{"level":"info","msg":"starting","time":"t"}',
      '{"level":"error","msg":"first error","time":"t"}',
      '',
      '{"level":"error","msg":"unable to start container process: exec: \\"/does-not-exist\\": no such file","time":"t"}',
      '{"level":"warning","msg":"later warning","time":"t"}',
      '[1,2,3]',
    ].join('\n') + '\n',
  );
  await rejects(
    d.create('c1', { pidFile: '/p' }),
    'Unknown',
    'OCI runtime create failed: runc create failed: unable to start container process: exec: "/does-not-exist": no such file',
  );
});

test('runtime message already prefixed "<name> <sub> failed" is not doubled', async () => {
  const f = fake();
  f.set('exit', '1');
  f.set('logline', '{"level":"error","msg":"runc create failed: container with id exists: c1","time":"t"}\n');
  await rejects(
    driverFor(f, runcProfile).create('c1', { pidFile: '/p' }),
    'Unknown',
    'OCI runtime create failed: runc create failed: container with id exists: c1',
  );
});

test('stale error lines from earlier commands are ignored; falls back to stderr, then stdout', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  writeFileSync(path.join(f.bundle, 'log.json'), '{"level":"error","msg":"stale from an earlier command","time":"t"}\n');
  f.set('exit', '2');
  f.set('stderr', '  pause refused: frozen cgroup missing \n');
  await rejects(d.pause('c1'), 'Unknown', 'OCI runtime pause failed: runc pause failed: pause refused: frozen cgroup missing: exit status 2');
  rmSync(path.join(f.dir, 'stderr'));
  rmSync(path.join(f.bundle, 'log.json'));
  await rejects(d.resume('c1'), 'Unknown', 'OCI runtime resume failed: runc resume failed: no error message: exit status 2');
});

test('a runtime killed before it said anything: the error names the signal, not "no error message"', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  f.set('killself', '');
  await rejects(d.create('c1', { pidFile: path.join(f.dir, 'no-such-dir', 'pid') }), 'Unknown', 'OCI runtime create failed: runc create was killed by SIGKILL before it finished');
  // what it said before it was killed still wins
  f.set('stderr', 'half way\n');
  await rejects(d.pause('c1'), 'Unknown', 'OCI runtime pause failed: runc pause failed: half way: signal: SIGKILL');
});

test('youki tracing-JSON log lines and runsc field order are understood', async () => {
  const y = fake();
  y.set('exit', '1');
  y.set('logline', '{"timestamp":"2024-01-01T00:00:00Z","level":"ERROR","message":"container c1 does not exist","target":"youki"}\n');
  await rejects(driverFor(y, youkiProfile).delete('c1'), 'NotFound', 'OCI runtime delete failed: youki delete failed: container c1 does not exist');
  // anyhow's report under RUST_BACKTRACE=1: the backtrace is not part of the message.
  y.set(
    'logline',
    JSON.stringify({ level: 'ERROR', message: 'failed to pause container c1\n\nCaused by:\n    no such file\n\nStack backtrace:\n   0: <unknown>\n   1: main' }) + '\n',
  );
  await rejects(driverFor(y, youkiProfile).pause('c1'), 'Unknown', 'OCI runtime pause failed: youki pause failed: failed to pause container c1\n\nCaused by:\n    no such file');
  const r = fake();
  r.set('exit', '128');
  r.set('logline', '{"msg":"loading container: file does not exist","level":"error","time":"t"}\n');
  await rejects(
    driverFor(r, gvisorProfile).kill('c1', 9),
    'NotFound',
    'OCI runtime kill failed: runsc kill failed: loading container: file does not exist',
  );
});

test('kill after exit is NotFound ("container not running"); other kill failures Unknown', async () => {
  const f = fake();
  const d = driverFor(f, runcProfile);
  f.set('exit', '1');
  f.set('logline', '{"level":"error","msg":"container not running","time":"t"}\n');
  await rejects(d.kill('c1', 15), 'NotFound', 'OCI runtime kill failed: runc kill failed: container not running');
  f.set('logline', '{"level":"error","msg":"permission denied","time":"t"}\n');
  await rejects(d.kill('c1', 15), 'Unknown');
});

test('timeout: DeadlineExceeded', async () => {
  const f = fake();
  f.set('sleep', '5');
  const t0 = Date.now();
  await rejects(driverFor(f, runcProfile, { timeoutMs: 300 }).start('c1'), 'DeadlineExceeded', 'OCI runtime start failed: runc start did not finish within 300 ms');
  assert.ok(Date.now() - t0 < 4000);
});

test('classifyFailure table', () => {
  const table: [Operation, string, string][] = [
    ['kill', 'os: process already finished', 'NotFound'],
    ['kill', 'No such process', 'NotFound'],
    ['kill', 'container not running', 'NotFound'],
    ['kill', 'cannot kill: container is not running', 'NotFound'],
    ['kill', 'container does not exist', 'NotFound'],
    ['kill', 'loading container: file does not exist', 'NotFound'],
    ['kill', 'permission denied', 'Unknown'],
    ['state', 'container does not exist', 'NotFound'],
    ['state', 'container "c1" not found', 'NotFound'],
    ['delete', 'container does not exist', 'NotFound'],
    ['delete', 'cannot delete container c1 that is not stopped: running', 'Unknown'],
    ['delete', 'loading container: file does not exist', 'NotFound'],
    ['create', 'container with id exists: c1', 'Unknown'],
    ['start', 'container does not exist', 'Unknown'],
    ['exec', 'cannot exec in a paused container (use --ignore-paused to override)', 'Unknown'],
    ['pause', 'container not running', 'Unknown'],
    ['update', 'not found', 'Unknown'],
  ];
  for (const [op, msg, kind] of table) assert.is(classifyFailure(op, msg), kind, `${op}: ${msg}`);
});

test('lastLogError: picks the last error line, ignores other levels and garbage', () => {
  assert.is(lastLogError(''), undefined);
  assert.is(lastLogError('junk\n{"level":"info","msg":"x"}\n'), undefined);
  assert.is(lastLogError('{"level":"error","msg":"a"}\n{"level":"error","msg":"b"}\n{"level":"info","msg":"c"}'), 'b');
  assert.is(lastLogError('{"level":"fatal","msg":"f"}\n{bad'), 'f');
  assert.is(lastLogError('{"level":"ERROR","fields":{"message":"nested"}}'), 'nested');
});

test('readPidFile', async () => {
  const f = fake();
  const p = path.join(f.dir, 'x.pid');
  writeFileSync(p, '4242');
  assert.is(await readPidFile(p), 4242);
  writeFileSync(p, 'nope');
  await rejects(readPidFile(p), 'Internal', /does not hold a pid/);
});

test('gvisorGlobalArgs: platform, network, debug log dir, extra flags', () => {
  assert.equal(gvisorGlobalArgs({ platform: 'systrap', network: 'sandbox' }), ['--platform=systrap', '--network=sandbox']);
  assert.equal(
    gvisorGlobalArgs({ platform: 'ptrace', network: 'host', debugLogDir: '/var/log/runsc', extra: { overlay2: 'root:self', 'net-raw': true } }),
    ['--platform=ptrace', '--network=host', '--debug', '--debug-log=/var/log/runsc/', '--overlay2=root:self', '--net-raw=true'],
  );
  assert.throws(() => gvisorGlobalArgs({ platform: 'ptrace', network: 'none', extra: { root: '/x' } }), /set by the driver/);
  assert.throws(() => gvisorGlobalArgs({ platform: 'vmx' as 'kvm', network: 'none' }), /unknown gVisor platform/);
});

test.after(() => rmSync(top, { recursive: true, force: true }));

test.run();
