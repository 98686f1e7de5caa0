/**
 * OciCliDriver with the youki profile against the real youki (0.7.0, built by scripts/setup.sh)
 * with a real busybox bundle and a private --root under /tmp: the argv the profile produces is
 * accepted by youki, its state JSON and its tracing-JSON error lines are understood, and its
 * error words map to the same error kinds as runc's. Container stdio is a real pipe (a FIFO
 * opened at both ends). The init is re-parented to PID 1 when `youki create` exits (this test is
 * no subreaper); that is fine here.
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
import { OciCliDriver } from '../oci-cli/driver.js';
import { execaRunner } from '../oci-cli/testing/execa-runner.js';
import { youkiProfile } from './profile.js';
import { BUSYBOX, makeBundle, realPipe, walkLifecycle } from '../oci-cli/testing/real-runtime.js';
import { skipWithReason } from '../../../test/helpers/skip.js';

const youkiPath = (await execa('sh', ['-c', 'command -v youki'], { reject: false })).stdout.trim();
const unusable =
  process.getuid?.() !== 0
    ? 'needs root'
    : BUSYBOX === undefined
      ? 'busybox is not installed'
      : youkiPath === ''
        ? 'youki is not on PATH (scripts/setup.sh builds youki 0.7.0 into /opt/tsshim/peers/youki)'
        : undefined;

const top = mkdtempSync('/tmp/tsshim-youki-test-');
const root = path.join(top, 'root');
const ns = 'tsshim-test';
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const ID = `tsshim-yk-${suffix}`;
const BAD_ID = `tsshim-yk-bad-${suffix}`;






const fds: number[] = [];
const NAMES = {
  lifecycle: 'real youki: create, start, state JSON, ps, exec, update, pause, resume, kill 9, delete, NotFound after',
  badCreate: "real youki: a failing create reports youki's own words from its tracing-JSON log",
  features: 'real youki: features document',
};

if (unusable) {
  for (const n of Object.values(NAMES)) skipWithReason(test, n, unusable);
} else {
  test(NAMES.lifecycle, async () => {
    const bundle = await makeBundle(top, 'bundle', 'youki', ['sh', '-c', 'echo hello-from-youki; sleep 1000']);
    const d = new OciCliDriver({ profile: youkiProfile, root, namespace: ns, bundle }, execaRunner);
    assert.is(d.root, path.join(root, ns));

    const out = await realPipe(top, 'out');
    const devnull = openSync('/dev/null', 'r');
    fds.push(out.r, out.w, devnull);

    await walkLifecycle(d, { id: ID, bundle, top, stateDir: path.join(root, ns, ID), hello: 'hello-from-youki', out, devnull });

    await d.delete(ID);
    assert.not.ok(existsSync(path.join(root, ns, ID)));
    for (const [what, op] of [
      ['state', () => d.state(ID)],
      ['kill', () => d.kill(ID, 15)],
      ['delete', () => d.delete(ID)],
    ] as const) {
      try {
        await op();
        assert.unreachable(`${what} after delete`);
      } catch (e) {
        assert.instance(e, ShimError);
        assert.is((e as ShimError).kind, 'NotFound', `${what} after delete: ${(e as Error).message}`);
        assert.match((e as ShimError).message, new RegExp(`^OCI runtime ${what} failed: youki ${what} failed: `));
      }
    }
  });

  test(NAMES.badCreate, async () => {
    const bundle = await makeBundle(top, 'bad-bundle', 'youki', ['/does-not-exist']);
    const d = new OciCliDriver({ profile: youkiProfile, root, namespace: ns, bundle }, execaRunner);
    const devnull = openSync('/dev/null', 'r+');
    fds.push(devnull);
    try {
      // youki fails /does-not-exist at create (runc does too): it resolves the executable first.
      await d.create(BAD_ID, { pidFile: path.join(bundle, 'init.pid'), stdio: [devnull, devnull, devnull] });
      assert.unreachable('create of /does-not-exist succeeded');
    } catch (e) {
      assert.instance(e, ShimError);
      const se = e as ShimError;
      assert.is(se.kind, 'Unknown');
      assert.match(se.message, /^OCI runtime create failed: youki create failed: /);
      // The words come from youki's log file (tracing JSON), not from stderr (stderr went to /dev/null).
      const detail = se.message.replace(/^OCI runtime create failed: youki create failed: /, '');
      assert.ok(detail.length > 0, 'a message');
      const log = readFileSync(path.join(bundle, 'log.json'), 'utf8');
      assert.ok(log.includes(JSON.stringify(detail).slice(1, -1)), `log.json holds ${detail}`);
    } finally {
      await d.delete(BAD_ID, { force: true }).catch(() => undefined);
    }
  });

  test(NAMES.features, async () => {
    const d = new OciCliDriver({ profile: youkiProfile, root, namespace: ns, bundle: top }, execaRunner);
    const f = (await d.features()) as Record<string, unknown>;
    assert.type(f.ociVersionMin, 'string');
    assert.type(f.ociVersionMax, 'string');
  });
}

test.after(async () => {
  if (!unusable) {
    for (const id of [ID, BAD_ID]) {
      await execa('youki', ['--root', path.join(root, ns), 'delete', '--force', id], { reject: false });
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
