// The test harness itself, checked against the reference shim (io.containerd.runc.v2).
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TEST_IMAGE, importTestImage, mountsUnder, startContainerd, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { findProcesses, isAlive } from '../helpers/proc.js';

const RUNTIME = process.env.TSSHIM_HARNESS_RUNTIME ?? 'io.containerd.runc.v2';
let cd: PrivateContainerd;

test.before(async () => {
  cd = await startContainerd({ name: 'harness' });
});

test.after(async () => {
  await cd?.stop();
});

test('private containerd answers on its own socket with its own dirs', async () => {
  assert.ok(cd.address.length < 100, `socket path too long: ${cd.address}`);
  assert.ok(cd.address.startsWith(cd.dir + '/'));
  const v = await cd.ctr(['version']);
  assert.is(v.exitCode, 0, v.stderr);
  assert.match(v.stdout, /Server:/);
  assert.ok(existsSync(cd.ttrpcAddress), 'ttrpc socket exists');
  const plugins = await cd.ctr(['plugins', 'ls']);
  assert.is(plugins.exitCode, 0, plugins.stderr);
  assert.not.match(plugins.stdout, /io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/, 'CRI plugin is disabled');
});

test('test image imports, is named and unpacked', async () => {
  const image = await importTestImage(cd);
  assert.is(image, TEST_IMAGE);
  const check = await cd.ctr(['images', 'check']);
  assert.is(check.exitCode, 0, check.stderr);
  const line = check.stdout.split('\n').find((l) => l.startsWith(TEST_IMAGE));
  assert.ok(line, `image listed by ctr images check:\n${check.stdout}`);
  assert.match(line!, /complete/);
  const snaps = await cd.ctr(['snapshots', 'ls']);
  assert.is(snaps.exitCode, 0, snaps.stderr);
  assert.match(snaps.stdout, /Committed/, 'layer unpacked into the overlayfs snapshotter');
});

test(`ctr run --rm via ${RUNTIME}: exit code, stdout, stderr`, async () => {
  const id = uniqueId('harness');
  const r = await cd.ctr(['run', '--rm', '--runtime', RUNTIME, TEST_IMAGE, id, 'sh', '-c', 'echo out; echo err >&2; exit 42'], { timeoutMs: 60_000 });
  assert.is(r.exitCode, 42, `stderr: ${r.stderr}`);
  assert.is(r.stdout, 'out\n');
  assert.is(r.stderr, 'err\n');
  const left = await cd.ctr(['containers', 'ls', '-q']);
  assert.not.ok(left.stdout.includes(id), '--rm removed the container');
});

test('image has the busybox applets, passwd, PATH and Cmd', async () => {
  const id = uniqueId('harness');
  const r = await cd.ctr(['run', '--rm', '--runtime', RUNTIME, TEST_IMAGE, id, 'sh', '-c', 'id; echo $PATH; ls -ld /tmp; readlink /bin/ls; wc -l < /etc/group'], { timeoutMs: 60_000 });
  assert.is(r.exitCode, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines[0], 'uid=0(root) gid=0(root) groups=0(root)');
  assert.is(lines[1], '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  assert.match(lines[2]!, /^drwxrwxrwt/);
  assert.is(lines[3], 'busybox');
  assert.is(lines[4]!.trim(), '2');
});

test('input is fed to the container stdin', async () => {
  const id = uniqueId('harness');
  const r = await cd.ctr(['run', '--rm', '--runtime', RUNTIME, TEST_IMAGE, id, 'sh', '-c', 'head -n 1 | tr a-z A-Z'], { input: 'hello\n', timeoutMs: 60_000 }); // ctr 1.6 never closes stdin on EOF
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, 'HELLO\n');
});

test('restart(): a running container survives a containerd restart', async () => {
  const id = uniqueId('harness');
  const started = await cd.ctr(['run', '-d', '--runtime', RUNTIME, TEST_IMAGE, id, 'sleep', '300']);
  assert.is(started.exitCode, 0, started.stderr);
  const before = cd.pid;
  await cd.restart();
  assert.is.not(cd.pid, before);
  assert.not.ok(isAlive(before), 'old containerd is gone');
  const tasks = await cd.ctr(['tasks', 'ls']);
  assert.is(tasks.exitCode, 0, tasks.stderr);
  assert.match(tasks.stdout, new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
  // left running on purpose: stop() must clean it up (checked below)
});

test('ctrSpawn streams events', async () => {
  const ev = cd.ctrSpawn(['events']);
  let out = '';
  ev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise((r) => setTimeout(r, 300));
  const id = uniqueId('harness');
  const r = await cd.ctr(['run', '--rm', '--runtime', RUNTIME, TEST_IMAGE, id, 'true'], { timeoutMs: 60_000 });
  assert.is(r.exitCode, 0, r.stderr);
  await new Promise((r) => setTimeout(r, 300));
  ev.kill();
  assert.match(out, new RegExp(`/tasks/exit.*${id}`));
});

test('stop() leaves no containerd, no shim, no mount and no directory', async () => {
  const pid = cd.pid;
  const dir = cd.dir;
  const address = cd.address;
  await cd.stop();
  assert.not.ok(isAlive(pid), 'containerd exited');
  assert.equal(findProcesses((argv) => argv.includes(address)).map((p) => p.argv.join(' ')), [], 'no process names the socket');
  assert.equal(mountsUnder(dir), [], 'no mounts left');
  assert.not.ok(existsSync(dir), 'directory removed');
  await cd.stop(); // idempotent
});

test.run();
