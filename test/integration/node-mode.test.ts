// Issue 12.1/12.3, node mode (ADR 0018) through a private real containerd and the real ctr: one
// daemon per containerd serves every tsshim task of every namespace; tasks are keyed by
// (namespace, id); Shutdown of one task never stops another; a later start answers without Node;
// `tsshim node status --json` tells pids, uptime and tasks by namespace and handler.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { REPO_ROOT, waitFor, isAlive } from '../helpers/proc.js';
import { TSSHIM, bundleDir } from '../helpers/tasks.js';
import { kataStandInDelegate } from '../helpers/containerd-version.js';
import { namespaceSocket, nodePaths, type NodeStatus } from '../../src/shim-api/bootstrap/node.js';

const NS_B = 'tsshim-node-b';
const TSSHIM_CLI = join(REPO_ROOT, 'bin', 'tsshim');
const SHIM = join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2');

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  dir: string;
  savedConfig: string | undefined;
}
const t = suite<Ctx>('node-mode');

t.before(async (ctx) => {
  ctx.dir = mkdtempSync('/run/tsshim-node-mode-');
  const config = join(ctx.dir, 'config.toml');
  writeFileSync(config, 'handler = "runc"\n\n[shim]\nmode = "node"   # one daemon per containerd\n');
  ctx.savedConfig = process.env.TSSHIM_CONFIG;
  process.env.TSSHIM_CONFIG = config; // containerd passes its environment to the shims it starts
  ctx.cd = await startContainerd({ name: 'node-mode' });
  ctx.image = await importTestImage(ctx.cd);
  await importTestImage(ctx.cd, { namespace: NS_B });
});
t.after(async (ctx) => {
  const status = ctx.cd ? await nodeStatus(ctx.cd).catch(() => undefined) : undefined;
  await ctx.cd?.stop();
  // The daemon outlives its tasks by design: end it like an operator would (SIGTERM to its supervisor).
  const pid = status?.supervisorPid;
  if (pid && isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !isAlive(pid) && (!status.workerPid || !isAlive(status.workerPid)), 10_000);
  }
  if (ctx.savedConfig === undefined) delete process.env.TSSHIM_CONFIG;
  else process.env.TSSHIM_CONFIG = ctx.savedConfig;
  rmSync(ctx.dir, { recursive: true, force: true });
});

async function nodeStatus(cd: PrivateContainerd): Promise<NodeStatus> {
  const r = spawnSync(TSSHIM_CLI, ['node', 'status', '--json', '--address', cd.address], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`tsshim node status exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as NodeStatus;
}

/** Processes running the shim whose command line names this containerd's address. */
function shimProcesses(cd: PrivateContainerd): number[] {
  const r = spawnSync('pgrep', ['-f', `containerd-shim-tsshim-v2 .*-address ${cd.address}`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

async function runDetached(cd: PrivateContainerd, image: string, id: string, ns?: string): Promise<void> {
  const r = await cd.ctr(['run', '-d', '--runtime', TSSHIM, image, id, 'sleep', '300'], { namespace: ns });
  assert.is(r.exitCode, 0, r.stderr);
}

async function removeTask(cd: PrivateContainerd, id: string, ns?: string): Promise<string> {
  await cd.ctr(['task', 'kill', '-s', 'KILL', id], { namespace: ns });
  await waitFor(async () => !(await cd.ctr(['task', 'ls'], { namespace: ns })).stdout.includes(`${id} `) || (await cd.ctr(['task', 'ls'], { namespace: ns })).stdout.includes('STOPPED'), 10_000);
  const rm = await cd.ctr(['task', 'rm', id], { namespace: ns });
  await cd.ctr(['c', 'rm', id], { namespace: ns });
  return rm.stderr;
}

t('one daemon serves every task of two namespaces; the same id in both is two tasks', async ({ cd, image }) => {
  const ids = [uniqueId('node-a'), uniqueId('node-a'), uniqueId('node-same')];
  for (const id of ids) await runDetached(cd, image, id);
  await runDetached(cd, image, ids[2]!, NS_B); // same id, other namespace
  const s = await nodeStatus(cd);
  assert.is(s.mode, 'node');
  assert.ok(s.supervisorPid && isAlive(s.supervisorPid), 'the supervisor lives');
  assert.ok(s.workerPid && isAlive(s.workerPid), 'the worker lives');
  assert.equal(shimProcesses(cd), [s.supervisorPid!, s.workerPid!].sort((a, b) => a - b), 'two shim processes for this containerd: supervisor and worker');
  assert.equal(s.namespaces[cd.namespace]?.tasks, 3);
  assert.equal(s.namespaces[NS_B]?.tasks, 1);
  assert.equal(s.namespaces[cd.namespace]?.byHandler, { runc: 3 });
  assert.equal(
    s.tasks.map((x) => `${x.namespace}/${x.id}`).sort(),
    [...ids.map((id) => `${cd.namespace}/${id}`), `${NS_B}/${ids[2]}`].sort(),
  );
  // Each bundle's address names its namespace's socket on the daemon.
  for (const [id, ns] of [[ids[0]!, cd.namespace], [ids[2]!, NS_B]] as const) {
    assert.is(readFileSync(join(bundleDir(cd, id, ns), 'address'), 'utf8'), `unix://${namespaceSocket(cd.address, ns)}`);
  }
  // Killing the task in one namespace leaves the same id in the other running.
  const k = await cd.ctr(['task', 'kill', '-s', 'KILL', ids[2]!], { namespace: NS_B });
  assert.is(k.exitCode, 0, k.stderr);
  assert.ok(await waitFor(async () => (await cd.ctr(['task', 'ls'], { namespace: NS_B })).stdout.includes('STOPPED'), 10_000), 'B task stopped');
  const lsA = await cd.ctr(['task', 'ls']);
  assert.match(lsA.stdout, new RegExp(`${ids[2]}\\s+\\d+\\s+RUNNING`), 'the same id in the default namespace still runs');
  const rmB = await cd.ctr(['task', 'rm', ids[2]!], { namespace: NS_B });
  assert.match(rmB.stderr, /exit with non-zero exit code 137/, 'exact exit status through the daemon');
  await cd.ctr(['c', 'rm', ids[2]!], { namespace: NS_B });
  // Delete (and the Shutdown containerd sends after it) of every task but one: the daemon stays.
  for (const id of ids.slice(0, 2)) await removeTask(cd, id);
  const after = await nodeStatus(cd);
  assert.is(after.workerPid, s.workerPid, 'same daemon after Shutdowns');
  assert.is(after.supervisorPid, s.supervisorPid);
  assert.equal(after.tasks.map((x) => `${x.namespace}/${x.id}`), [`${cd.namespace}/${ids[2]}`]);
  const ps = await cd.ctr(['task', 'ps', ids[2]!]);
  assert.is(ps.exitCode, 0, `the remaining task still answers: ${ps.stderr}`);
  await removeTask(cd, ids[2]!);
  assert.ok(isAlive(s.supervisorPid!) && isAlive(s.workerPid!), 'the daemon outlives its last task (the next start is cheap)');
  assert.is((await nodeStatus(cd)).tasks.length, 0);
});

t('node status: event-loop delay of supervisor and worker since the last reset; --reset-event-loop starts a new window', async ({ cd }) => {
  const status = (...extra: string[]) => {
    const r = spawnSync(TSSHIM_CLI, ['node', 'status', ...extra, '--address', cd.address], { encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    return r.stdout;
  };
  const first = JSON.parse(status('--json')) as NodeStatus;
  for (const who of ['supervisor', 'worker'] as const) {
    const d = first.eventLoop?.[who];
    assert.ok(d && d.samples > 0 && d.sinceMs > 0 && d.maxMs >= d.p99Ms && d.p99Ms >= 0 && (d.maxOwnMs === null || d.maxOwnMs <= d.maxMs + 0.01), `${who}: ${JSON.stringify(first.eventLoop)}`);
  }
  const t0 = Date.now();
  status('--json', '--reset-event-loop');
  const after = JSON.parse(status('--json')) as NodeStatus;
  const elapsed = Date.now() - t0;
  for (const who of ['supervisor', 'worker'] as const) {
    const d = after.eventLoop?.[who];
    assert.ok(d && d.sinceMs <= elapsed + 1, `${who}: the window restarted at the reset (${d?.sinceMs} ms, ${elapsed} ms since before the reset)`);
  }
  assert.match(status(), /event-loop delay \(since the last reset\):\n\s+supervisor: max [\d.]+ ms( \([\d.]+ ms not waiting for a CPU\))?, p99 [\d.]+ ms over [\d.]+ s\n\s+worker: +max /);
});

t('exit statuses are exact: run --rm exit 42, and 143 for SIGTERM', async ({ cd, image }) => {
  const id = uniqueId('node-exit');
  const r = await cd.ctr(['run', '--rm', '--runtime', TSSHIM, image, id, 'sh', '-c', 'echo out; echo err >&2; exit 42']);
  assert.is(r.exitCode, 42, r.stderr);
  assert.is(r.stdout, 'out\n');
  assert.is(r.stderr, 'err\n');
  const id2 = uniqueId('node-term');
  const d = await cd.ctr(['run', '-d', '--runtime', TSSHIM, '--with-ns', `pid:/proc/${cd.pid}/ns/pid`, image, id2, 'sleep', '300']);
  assert.is(d.exitCode, 0, d.stderr);
  await cd.ctr(['task', 'kill', '-s', 'SIGTERM', id2]);
  assert.ok(await waitFor(async () => (await cd.ctr(['task', 'ls'])).stdout.includes('STOPPED'), 10_000), 'stopped');
  const rm = await cd.ctr(['task', 'rm', id2]);
  assert.match(rm.stderr, /exit with non-zero exit code 143/);
  await cd.ctr(['c', 'rm', id2]);
});

t('start answers without Node once the daemon serves the namespace', async (ctx) => {
  const { cd, image } = ctx;
  const id = uniqueId('node-warm');
  await runDetached(cd, image, id); // the daemon serves the namespace now
  try {
    // A PATH whose `node` fails: the launcher must not need it.
    const bin = join(ctx.dir, 'no-node-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'node'), '#!/bin/sh\necho "node was started" >&2\nexit 99\n');
    chmodSync(join(bin, 'node'), 0o755);
    const bundle = join(ctx.dir, 'bundle-warm');
    mkdirSync(bundle, { recursive: true });
    const r = spawnSync(SHIM, ['-namespace', cd.namespace, '-address', cd.address, '-publish-binary', '/usr/bin/containerd', '-id', 'warm-1', 'start'], {
      cwd: bundle,
      input: '',
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      timeout: 30_000,
    });
    const want = `unix://${namespaceSocket(cd.address, cd.namespace)}`;
    assert.is(r.status, 0, `start failed: ${r.stderr}`);
    assert.is(r.stdout, want);
    assert.is(readFileSync(join(bundle, 'address'), 'utf8'), want);
    // And with the daemon's pid file pointing nowhere, it does need Node (so the check is real).
    const paths = nodePaths(cd.address);
    const pid = readFileSync(paths.pidFile, 'utf8');
    writeFileSync(paths.pidFile, '999999999\n');
    const cold = spawnSync(SHIM, ['-namespace', cd.namespace, '-address', cd.address, '-id', 'warm-2', 'start'], {
      cwd: bundle,
      input: '',
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      timeout: 30_000,
    });
    writeFileSync(paths.pidFile, pid);
    assert.is.not(cold.status, 0, 'without a live daemon the launcher starts Node');
    assert.match(cold.stderr, /node was started/);
  } finally {
    await removeTask(cd, id);
  }
});

/** SIGKILL the worker; resolves with the status once a new worker serves. */
async function killWorker(cd: PrivateContainerd): Promise<{ before: NodeStatus; after: NodeStatus }> {
  const before = await nodeStatus(cd);
  assert.ok(before.workerPid && before.workerReady, 'a worker serves');
  process.kill(before.workerPid!, 'SIGKILL');
  let after: NodeStatus | undefined;
  const ok = await waitFor(async () => {
    after = await nodeStatus(cd).catch(() => undefined);
    return !!after?.workerReady && after.workerPid !== before.workerPid;
  }, 30_000);
  assert.ok(ok, `a new worker serves after the SIGKILL (status: ${JSON.stringify(after)})`);
  assert.is(after!.supervisorPid, before.supervisorPid, 'the supervisor stays');
  assert.is(after!.restarts, before.restarts + 1);
  return { before, after: after! };
}

/** Handlers the worker-kill test runs on: runc needs the OCI handler's adopt. */
const KATA_CONFIG = `handler = "kata"\nname = "node-kata-standin"\n\n[options]\nshim = ${JSON.stringify(kataStandInDelegate())}\n`;

t('SIGKILL of the worker while idle (Kata stand-in): tasks still served, attached run answers its exit, kill gives 137', async (ctx) => {
  const { cd, image } = ctx;
  const cfg = join(ctx.dir, 'kata.toml');
  writeFileSync(cfg, KATA_CONFIG);
  const flags = ['--runtime', TSSHIM, '--runtime-config-path', cfg];
  const detached = uniqueId('wk-kata-d');
  const r = await cd.ctr(['run', '-d', ...flags, image, detached, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const pid = Number((await cd.ctr(['task', 'ls'])).stdout.split('\n').find((l) => l.startsWith(detached + ' '))?.trim().split(/\s+/)[1]);
  assert.ok(pid > 0);
  // An attached run whose Wait is in flight while the worker dies.
  const attached = uniqueId('wk-kata-a');
  const run = cd.ctr(['run', ...flags, image, attached, 'sh', '-c', 'sleep 3; exit 7'], { timeoutMs: 60_000 });
  await waitFor(async () => (await cd.ctr(['task', 'ls'])).stdout.includes(`${attached} `), 10_000);
  const { after } = await killWorker(cd);
  assert.ok(after.tasks.some((x) => x.id === detached), `the detached task is adopted: ${JSON.stringify(after.tasks)}`);
  const done = await run;
  assert.is(done.exitCode, 7, `the attached run gets its exit status through the new worker: ${done.stderr}`);
  const ls = (await cd.ctr(['task', 'ls'])).stdout;
  assert.match(ls, new RegExp(`${detached}\\s+${pid}\\s+RUNNING`), 'same pid, still running');
  const x = await cd.ctr(['task', 'exec', '--exec-id', 'after', detached, 'echo', 'alive']);
  assert.is(x.stdout, 'alive\n', x.stderr);
  const rm = await removeTask(cd, detached);
  assert.match(rm, /exit with non-zero exit code 137/);
  await cd.ctr(['c', 'rm', attached]);
});

t('tsshim node status without a daemon: exit 1 and what to do', async ({ dir }) => {
  const address = join(dir, 'nobody.sock');
  assert.not.ok(existsSync(nodePaths(address).control));
  const r = spawnSync(TSSHIM_CLI, ['node', 'status', '--address', address], { encoding: 'utf8' });
  assert.is(r.status, 1);
  assert.match(r.stderr, /no node daemon runs/);
  assert.match(r.stderr, /mode = "node"/);
});

t.run();
