/**
 * OciCliDriver against the real runc with a real busybox bundle and a private
 * --root under /tmp. Container stdio is a real pipe (a FIFO opened at both ends):
 * Node's 'pipe' would hand runc unix sockets. The container init is re-parented
 * to PID 1 when `runc create` exits (this test is no subreaper); that is fine here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import path from 'node:path';
import { ShimError } from '../../shim-api/errors.js';
import { OciCliDriver } from './driver.js';
import { execaRunner } from './testing/execa-runner.js';
import { BUSYBOX, makeBundle, realPipe, walkLifecycle } from './testing/real-runtime.js';
import { skipWithReason } from '../../../test/helpers/skip.js';
import { runcProfile } from '../runc/profile.js';

const runcPath = (await execa('sh', ['-c', 'command -v runc'], { reject: false })).stdout.trim();
const usable = process.getuid?.() === 0 && BUSYBOX !== undefined && runcPath !== '';
const missing = [process.getuid?.() === 0 ? '' : 'not root', BUSYBOX ? '' : 'no busybox (/bin/busybox, /usr/bin/busybox)', runcPath ? '' : 'runc not on PATH'].filter(Boolean);
/** `test` when this host can run the real-runc tests, else a skip carrying the reason. */
const realTest: (name: string, fn: () => Promise<void>) => void = usable ? test : (name) => skipWithReason(test, name, missing.join(', '));

const top = mkdtempSync('/tmp/tsshim-runc-test-');
const root = path.join(top, 'root');
const ns = 'tsshim-test';
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const ID = `tsshim-drv-${suffix}`;
const BAD_ID = `tsshim-drv-bad-${suffix}`;






const fds: number[] = [];

realTest('real runc: create, start, ps, exec, update, pause, resume, kill 9, delete', async () => {
  const bundle = await makeBundle(top, 'bundle', 'runc', ['sh', '-c', 'echo hello-from-container; sleep 1000']);
  const d = new OciCliDriver({ profile: runcProfile, root, namespace: ns, bundle }, execaRunner);
  assert.is(d.root, path.join(root, ns));

  const out = await realPipe(top, 'out');
  const devnull = openSync('/dev/null', 'r');
  fds.push(out.r, out.w, devnull);

  await walkLifecycle(d, { id: ID, bundle, top, stateDir: path.join(root, ns, ID), hello: 'hello-from-container', out, devnull });
  // kill --all on a stopped container succeeds with runc 1.1 (observed by containerd's shim too).
  await d.kill(ID, 9, true);

  await d.delete(ID);
  assert.not.ok(existsSync(path.join(root, ns, ID)));
  try {
    await d.state(ID);
    assert.unreachable('state after delete');
  } catch (e) {
    assert.instance(e, ShimError);
    assert.is((e as ShimError).kind, 'NotFound');
    assert.match((e as ShimError).message, /^OCI runtime state failed: runc state failed: container does not exist$/);
  }
  try {
    await d.kill(ID, 15);
    assert.unreachable('kill after delete');
  } catch (e) {
    assert.is((e as ShimError).kind, 'NotFound');
  }
});

realTest('real runc: a failing create reports runc\'s own words from log.json', async () => {
  const bundle = await makeBundle(top, 'bad-bundle', 'runc', ['/does-not-exist']);
  const d = new OciCliDriver({ profile: runcProfile, root, namespace: ns, bundle }, execaRunner);
  const devnull = openSync('/dev/null', 'r+');
  fds.push(devnull);
  try {
    await d.create(BAD_ID, { pidFile: path.join(bundle, 'init.pid'), stdio: [devnull, devnull, devnull] });
    assert.unreachable('create of /does-not-exist succeeded');
  } catch (e) {
    assert.instance(e, ShimError);
    const se = e as ShimError;
    assert.is(se.kind, 'Unknown');
    assert.match(se.message, /^OCI runtime create failed: runc create failed: /);
    assert.match(se.message, /\/does-not-exist/);
    assert.match(se.message, /no such file or directory$/);
    // The words come from runc's log.json, not from stderr (stderr went to /dev/null).
    const log = readFileSync(path.join(bundle, 'log.json'), 'utf8');
    const detail = se.message.replace(/^OCI runtime create failed: /, '');
    assert.ok(log.includes(JSON.stringify(detail).slice(1, -1)), `log.json holds ${detail}`);
  } finally {
    await d.delete(BAD_ID, { force: true }).catch(() => undefined);
  }
});

realTest('real runc: features document', async () => {
  const d = new OciCliDriver({ profile: runcProfile, root, namespace: ns, bundle: top }, execaRunner);
  const f = (await d.features()) as Record<string, unknown>;
  assert.type(f.ociVersionMin, 'string');
  assert.type(f.ociVersionMax, 'string');
});

test.after(async () => {
  if (usable) {
    for (const id of [ID, BAD_ID]) {
      await execa('runc', ['--root', path.join(root, ns), 'delete', '--force', id], { reject: false });
    }
  }
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
  }
  rmSync(top, { recursive: true, force: true });
});

test.run();
