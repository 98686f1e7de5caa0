// Issue 11.2 through real containerd: nothing a task's Create does may freeze the other tasks its
// shim serves. Two tasks in one shim group (io.containerd.runc.v2.group); the second's `file://`
// log target is a FIFO that nobody reads. The first task's `ctr task ps` must answer meanwhile.
// runc-v2 blocks in open(2) on that FIFO while holding its service lock: recorded, not asserted.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import net from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { runChecked, waitFor } from '../helpers/proc.js';
import { bundleDir, taskStatus, waitNoLeftovers, TSSHIM, RUNC_V2 } from '../helpers/tasks.js';

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  tmp: string;
}
const t = suite<Ctx>('event-loop');

t.before(async (ctx) => {
  ctx.cd = await startContainerd({ name: 'event-loop' });
  ctx.image = await importTestImage(ctx.cd);
  ctx.tmp = mkdtempSync('/tmp/tsshim-event-loop-');
});
t.after(async (ctx) => {
  await ctx.cd?.stop();
  if (ctx.tmp) rmSync(ctx.tmp, { recursive: true, force: true });
});

/** Generous: this checks that the shim answers at all while the other Create waits, not speed. */
const PS_BOUND_MS = 10_000;
/** How long we let runc-v2's ps wait before calling it stalled. */
const PS_PATIENCE_MS = 15_000;

/**
 * Reads from a FIFO until `want` shows up (or the timeout). Opened read-write: it never blocks, and
 * no EOF when a writer comes and goes (runc-v2 opens and closes the file once before it copies).
 */
async function readFifoUntil(fifo: string, want: string, timeoutMs: number): Promise<{ text: string; close(): void }> {
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const sock = new net.Socket({ fd, readable: true, writable: false });
  let text = '';
  sock.on('data', (b: Buffer) => (text += b.toString()));
  sock.on('error', () => undefined);
  await waitFor(() => text.includes(want), timeoutMs, 50);
  return {
    get text() {
      return text;
    },
    close: () => sock.destroy(),
  };
}

async function kill(cd: PrivateContainerd, id: string): Promise<void> {
  await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 15_000, 100);
  await cd.ctr(['task', 'rm', '-f', id]);
  await cd.ctr(['c', 'rm', id]);
}

for (const runtime of [TSSHIM, RUNC_V2]) {
  t(`[${runtime}] a file:// log target that is a FIFO without a reader does not freeze the other task of its shim`, async ({ cd, image, tmp }) => {
    const group = `io.containerd.runc.v2.group=g-${randomBytes(4).toString('hex')}`;
    const a = uniqueId('fla');
    const b = uniqueId('flb');
    const r = await cd.ctr(['run', '-d', '--runtime', runtime, '--annotation', group, image, a, 'sleep', '300']);
    assert.is(r.exitCode, 0, r.stderr);
    const fifo = join(tmp, `${b}.fifo`);
    await runChecked('mkfifo', [fifo]);
    const bRun = cd.ctr(['run', '-d', '--runtime', runtime, '--annotation', group, '--log-uri', `file://${fifo}`, image, b, 'sh', '-c', 'echo hello-from-b; exec sleep 300'], {
      timeoutMs: 120_000,
    });
    let reader: { text: string; close(): void } | undefined;
    try {
      // b's `start` found the group's shim and wrote the address into b's bundle: Create follows at once.
      assert.ok(await waitFor(() => existsSync(join(bundleDir(cd, b), 'address')), 30_000, 50), 'b reached the shim');
      await new Promise((res) => setTimeout(res, 1000)); // let b's Create arrive and reach the FIFO
      const t0 = Date.now();
      const ps = await cd.ctr(['task', 'ps', a], { timeoutMs: PS_PATIENCE_MS }).then(
        (x) => ({ answered: x.exitCode === 0, out: x.stdout + x.stderr }),
        (e: Error) => ({ answered: false, out: e.message }),
      );
      const ms = Date.now() - t0;
      console.log(`  [${runtime}] ctr task ps <first task> while the second's Create meets a reader-less FIFO: ${ps.answered ? `answered in ${ms} ms` : `no answer after ${ms} ms (stalled)`}`);
      if (runtime === TSSHIM) {
        assert.ok(ps.answered, `ps answered: ${ps.out}`);
        assert.ok(ms < PS_BOUND_MS, `ps answered in ${ms} ms`);
        assert.match(ps.out, /PID/);
      }
      // A reader arrives: b's output reaches it (runc-v2's blocked open completes now too).
      reader = await readFifoUntil(fifo, 'hello-from-b', 30_000);
      assert.match(reader.text, 'hello-from-b', 'b wrote through the FIFO once it had a reader');
      const br = await bRun;
      assert.is(br.exitCode, 0, br.stderr);
      assert.is((await taskStatus(cd, b))?.status, 'RUNNING');
      assert.is((await taskStatus(cd, a))?.status, 'RUNNING');
    } finally {
      reader ??= await readFifoUntil(fifo, '\0never', 0).catch(() => undefined); // unblock runc-v2 if the test failed early
      await bRun.catch(() => undefined);
      await kill(cd, b);
      await kill(cd, a);
      reader?.close();
    }
    assert.equal(await waitNoLeftovers(cd, b), []);
    assert.equal(await waitNoLeftovers(cd, a), []);
  });
}

t.run();
