/**
 * Helpers of the tests that drive OciCliDriver against a real runtime binary (runc, runsc,
 * youki) with a real busybox bundle: bundle, real pipes, polling reads. Test code only.
 */
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { constants as fsc, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ShimError } from '../../../shim-api/errors.js';
import { readPidFile, type OciCliDriver } from '../driver.js';

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

/** The reason this host cannot run real-`binary` tests ('' when it can). */
export async function unusableReason(binary: string, hint = ''): Promise<string> {
  const found = (await execa('sh', ['-c', `command -v ${binary}`], { reject: false })).stdout.trim();
  return [
    process.getuid?.() === 0 ? '' : 'not root',
    BUSYBOX ? '' : 'no busybox (/bin/busybox, /usr/bin/busybox)',
    found ? '' : `${binary} not on PATH${hint}`,
  ]
    .filter(Boolean)
    .join(', ');
}

/** A bundle under `top`: busybox rootfs + `<runtime> spec` with terminal false and the given args. */
export async function makeBundle(top: string, name: string, runtime: string, args: string[], applets = ['sh', 'sleep', 'true', 'cat', 'echo']): Promise<string> {
  const bundle = path.join(top, name);
  const bin = path.join(bundle, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync(BUSYBOX!, path.join(bin, 'busybox'));
  for (const applet of applets) symlinkSync('busybox', path.join(bin, applet));
  await execa(runtime, ['spec'], { cwd: bundle });
  const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = args;
  spec.process.env = ['PATH=/bin'];
  writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  return bundle;
}

/** A FIFO opened at both ends: a real pipe whose write end can be given to the runtime (Node's 'pipe' would hand it unix sockets). */
export async function realPipe(dir: string, name: string): Promise<{ r: number; w: number }> {
  const p = path.join(dir, name);
  await execa('mkfifo', [p]);
  const r = openSync(p, fsc.O_RDONLY | fsc.O_NONBLOCK);
  const w = openSync(p, fsc.O_WRONLY);
  return { r, w };
}

/** Reads until `needle` appears; the bound only ends a test that already failed. */
export async function readUntil(fd: number, needle: string, timeoutMs = 60_000): Promise<string> {
  const buf = Buffer.alloc(4096);
  let out = '';
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n > 0) out += buf.subarray(0, n).toString('utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
    if (out.includes(needle)) return out;
    await new Promise((r) => setTimeout(r, 20));
  }
  return out;
}

/** Polls the runtime's state until `status` (the bound only ends a test that already failed). */
export async function waitForStatus(d: OciCliDriver, id: string, status: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await d.state(id)).status;
    if (last === status) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  return last;
}

/** pids.max of the cgroup v1 pids controller holding `pid`. */
export function pidsMax(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => /^\d+:([^:]*,)?pids(,[^:]*)?:/.test(l));
  assert.ok(line, 'pids cgroup of the init');
  const rel = line!.split(':').slice(2).join(':');
  return readFileSync(path.join('/sys/fs/cgroup/pids', rel, 'pids.max'), 'utf8').trim();
}

/** Awaits `p`, which must fail with a ShimError of `kind`; returns its message. */
export async function expectKind(p: Promise<unknown>, kind: string): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, ShimError);
    assert.is((e as ShimError).kind, kind, (e as Error).message);
    return (e as Error).message;
  }
  assert.unreachable(`expected ${kind}`);
  return '';
}

/**
 * The lifecycle every runc-compatible driver test walks on a real runtime: create (pid file,
 * state under <root>/<namespace>/<id>), start (output through a real pipe), ps, exec, update
 * (pids limit), pause, resume, kill 9 until stopped. Returns the init pid.
 */
export async function walkLifecycle(
  d: OciCliDriver,
  o: { id: string; bundle: string; top: string; stateDir: string; hello: string; out: { r: number; w: number }; devnull: number },
): Promise<number> {
  const { id, bundle, out, devnull } = o;
  const pidFile = path.join(bundle, 'init.pid');
  await d.create(id, { pidFile, stdio: [devnull, out.w, out.w] });
  const pid = await readPidFile(pidFile);
  assert.ok(pid > 1);
  // The driver keeps what it needs of each runtime's state JSON (youki's is camelCase with more fields).
  assert.equal(await d.state(id), { id, pid, status: 'created', bundle });
  assert.ok(existsSync(path.join(o.stateDir, 'state.json')), 'state lives under <root>/<namespace>/<id>');

  await d.start(id);
  const text = await readUntil(out.r, `${o.hello}\n`);
  assert.ok(text.includes(`${o.hello}\n`), `container output via the pipe: ${JSON.stringify(text)}`);
  assert.is((await d.state(id)).status, 'running');

  const pids = await d.ps(id);
  assert.ok(pids.includes(pid), `ps ${JSON.stringify(pids)} contains init pid ${pid}`);

  const processJson = path.join(o.top, 'exec1.json');
  writeFileSync(
    processJson,
    JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args: ['sh', '-c', 'echo exec-says-$((6*7))'], env: ['PATH=/bin'], cwd: '/' }),
  );
  const execPidFile = path.join(bundle, 'exec1.pid');
  await d.exec(id, { processJsonPath: processJson, pidFile: execPidFile, stdio: [devnull, out.w, out.w] });
  assert.ok((await readPidFile(execPidFile)) > 1);
  const execText = await readUntil(out.r, 'exec-says-42\n');
  assert.ok(execText.includes('exec-says-42\n'), `exec output: ${JSON.stringify(execText)}`);

  await d.update(id, JSON.stringify({ pids: { limit: 77 } }));
  assert.is(pidsMax(pid), '77', 'update --resources - applied the stdin JSON');

  await d.pause(id);
  assert.is((await d.state(id)).status, 'paused');
  await d.resume(id);
  assert.is((await d.state(id)).status, 'running');

  await d.kill(id, 9);
  assert.is(await waitForStatus(d, id, 'stopped'), 'stopped');
  return pid;
}
