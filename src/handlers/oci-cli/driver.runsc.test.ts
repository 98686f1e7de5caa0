/**
 * OciCliDriver with gvisorProfile against the real runsc (ptrace platform, no
 * network) and a private --root under /tmp: checks that the profile's argv is
 * accepted by the installed runsc, including exec --internal-pid-file and
 * gVisor's own checkpoint/restore. Sandbox processes are re-parented to PID 1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ShimError } from '../../shim-api/errors.js';
import { OciCliDriver, readPidFile } from './driver.js';
import { execaRunner } from './testing/execa-runner.js';
import { BUSYBOX, makeBundle, expectKind } from './testing/real-runtime.js';
import { skipWithReason } from '../../../test/helpers/skip.js';
import { gvisorProfile } from '../gvisor/profile.js';
import { ociHandlerFactory } from './factory.js';
import type { HandlerContext } from '../../shim-api/handler.js';

const runscPath = (await execa('sh', ['-c', 'command -v runsc'], { reject: false })).stdout.trim();
const usable = process.getuid?.() === 0 && BUSYBOX !== undefined && runscPath !== '';
const missing = [process.getuid?.() === 0 ? '' : 'not root', BUSYBOX ? '' : 'no busybox (/bin/busybox, /usr/bin/busybox)', runscPath ? '' : 'runsc not on PATH'].filter(Boolean);
/** `test` when this host can run the real-runsc tests, else a skip carrying the reason. */
const realTest: (name: string, fn: () => Promise<void>) => void = usable ? test : (name) => skipWithReason(test, name, missing.join(', '));

const top = mkdtempSync('/tmp/tsshim-runsc-test-');
const root = path.join(top, 'root');
const ns = 'tsshim-test';
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const ID = `tsshim-rsc-${suffix}`;
const RESTORED = `tsshim-rsc-restored-${suffix}`;



realTest('real runsc: create, start, ps (sandbox pids), exec, pause, resume, checkpoint, restore, kill, delete', async () => {
  const bundle = await makeBundle(top, 'bundle', 'runsc', ['sleep', '1000']);
  const d = new OciCliDriver({ profile: gvisorProfile, root, namespace: ns, bundle }, execaRunner);

  await d.create(ID, { pidFile: path.join(bundle, 'init.pid'), noPivot: true });
  const pid = await readPidFile(path.join(bundle, 'init.pid'));
  assert.equal(await d.state(ID), { id: ID, pid, status: 'created', bundle });
  await d.start(ID);
  assert.is((await d.state(ID)).status, 'running');
  assert.equal(await d.ps(ID), [1], 'runsc ps lists the sandbox-internal pid of the init');

  const pj = path.join(top, 'exec.json');
  writeFileSync(pj, JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args: ['sleep', '1000'], env: ['PATH=/bin'], cwd: '/' }));
  await d.exec(ID, { processJsonPath: pj, pidFile: path.join(top, 'exec.pid'), internalPidFile: path.join(top, 'exec.ipid') });
  assert.ok((await readPidFile(path.join(top, 'exec.pid'))) > 1, 'host pid of the runsc exec helper');
  const inner = await readPidFile(path.join(top, 'exec.ipid'));
  assert.ok((await d.ps(ID)).includes(inner), 'internal pid is one of the sandbox pids');
  // SIGKILL by the internal pid ends the process inside the sandbox (the helper's pid would not).
  await d.kill(ID, 9, false, inner);
  for (let i = 0; i < 50 && (await d.ps(ID)).includes(inner); i++) await new Promise((r) => setTimeout(r, 100));
  assert.not.ok((await d.ps(ID)).includes(inner), 'kill --pid ended the process exec ran');

  await d.pause(ID);
  assert.is((await d.state(ID)).status, 'paused');
  await d.resume(ID);
  assert.is((await d.state(ID)).status, 'running');

  await expectKind(d.update(ID, '{}'), 'Unimplemented');

  const img = path.join(top, 'img');
  mkdirSync(img);
  // ctr sets CRIU's file-locks knob by default: meaningless for a gVisor state file, dropped.
  await d.checkpoint(ID, { imagePath: img, workPath: path.join(top, 'work'), fileLocks: true });
  assert.ok(existsSync(path.join(img, 'checkpoint.img')), 'gVisor state file written');
  assert.is((await d.state(ID)).status, 'stopped', 'checkpoint without --leave-running stops the sandbox');
  await d.delete(ID, { force: true });

  await d.restore(RESTORED, { imagePath: img, pidFile: path.join(bundle, 'restored.pid'), detach: true });
  const rpid = await readPidFile(path.join(bundle, 'restored.pid'));
  assert.is((await d.state(RESTORED)).status, 'running', 'restore starts the container');
  assert.is((await d.state(RESTORED)).pid, rpid);

  await d.kill(RESTORED, 9, true);
  await d.delete(RESTORED, { force: true });
  assert.match(await expectKind(d.kill(RESTORED, 9), 'NotFound'), /^OCI runtime kill failed: runsc kill failed: .*does not exist$/);
  await expectKind(d.state(RESTORED), 'NotFound');
});

realTest("the shim's cleanup (its `delete`) removes the lock a runsc create killed before writing its state left (node mode kills a dead worker's commands), and nothing else", async () => {
  const dir = path.join(root, ns);
  mkdirSync(dir, { recursive: true });
  const stray = `${ID}-killed_sandbox:${ID}-killed.lock`;
  const other = `${ID}-other_sandbox:${ID}-other.lock`;
  writeFileSync(path.join(dir, stray), '');
  writeFileSync(path.join(dir, other), '');
  const bundle = mkdtempSync(path.join(top, 'cleanup-'));
  const log = (await import('pino')).pino({ level: 'silent' });
  const ctx = {
    namespace: ns,
    log,
    os: { run: execaRunner, unmountAll: async () => undefined },
  } as unknown as HandlerContext;
  const r = await ociHandlerFactory('gvisor', () => gvisorProfile).cleanup({ type: 'gvisor', name: 'gvisor', root, options: {} }, bundle, `${ID}-killed`, ctx);
  assert.is(r.exitStatus, 137);
  assert.not.ok(existsSync(path.join(dir, stray)), 'the stray lock is gone (runsc delete --force found no container)');
  assert.ok(existsSync(path.join(dir, other)), "another container's lock stays");
  rmSync(path.join(dir, other));
});

test.after(async () => {
  if (usable) {
    for (const id of [ID, RESTORED]) {
      await execa('runsc', ['--root', path.join(root, ns), 'delete', '--force', id], { reject: false });
    }
  }
  rmSync(top, { recursive: true, force: true });
});

test.run();
