// Issue 13.4 (ADR 0025), node mode through a private real containerd and the real ctr: one
// metrics endpoint per node daemon, held by the supervisor and filled by the worker; across a
// worker SIGKILL the endpoint stays, says the restart, and the adopted task is still counted.
// containerd logs JSON here ([debug] format = "json"): with `[log] format = "auto"` (the
// default) the daemon's lines are JSON with logrus's keys too.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { REPO_ROOT, waitFor, isAlive } from '../helpers/proc.js';
import { TSSHIM } from '../helpers/tasks.js';
import { nodePaths, type NodeStatus } from '../../src/shim-api/bootstrap/node.js';
import { nodeStatus as nodeStatusSync } from '../helpers/node-daemon.js';
const nodeStatus = async (cd: PrivateContainerd): Promise<NodeStatus> => nodeStatusSync(cd);
import { scrape, sumOf } from '../../src/observe/testing.js';

const TSSHIM_CLI = join(REPO_ROOT, 'bin', 'tsshim');

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  dir: string;
  metrics: string;
  savedConfig: string | undefined;
  logFrom: number;
}
const t = suite<Ctx>('observe-node');

t.before(async (ctx) => {
  ctx.dir = mkdtempSync('/run/tsshim-observe-node-');
  ctx.metrics = join(ctx.dir, 'metrics.sock');
  const config = join(ctx.dir, 'config.toml');
  writeFileSync(config, `handler = "runc"\n\n[shim]\nmode = "node"\n\n[metrics]\naddress = "unix://${ctx.metrics}"\n`);
  ctx.savedConfig = process.env.TSSHIM_CONFIG;
  process.env.TSSHIM_CONFIG = config;
  ctx.cd = await startContainerd({ name: 'observe-node', extraConfig: '[debug]\nformat = "json"\n' });
  ctx.image = await importTestImage(ctx.cd);
  const log = nodePaths(ctx.cd.address).log;
  ctx.logFrom = existsSync(log) ? statSync(log).size : 0;
});
t.after(async (ctx) => {
  const status = ctx.cd ? await nodeStatus(ctx.cd).catch(() => undefined) : undefined;
  await ctx.cd?.stop();
  const pid = status?.supervisorPid;
  if (pid && isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !isAlive(pid) && (!status.workerPid || !isAlive(status.workerPid)), 10_000);
  }
  if (ctx.savedConfig === undefined) delete process.env.TSSHIM_CONFIG;
  else process.env.TSSHIM_CONFIG = ctx.savedConfig;
  rmSync(ctx.dir, { recursive: true, force: true });
});


t('one endpoint per node daemon: the worker\'s metrics and the supervisor\'s; a worker restart is counted, the adopted task still is', async (ctx) => {
  const { cd, image } = ctx;
  const id = uniqueId('obs-node');
  const r = await cd.ctr(['run', '-d', '--runtime', TSSHIM, image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const addr = `unix://${ctx.metrics}`;
  assert.ok(await waitFor(() => existsSync(ctx.metrics), 10_000), 'the endpoint socket exists');
  let m = (await scrape(addr)).body;
  assert.is(sumOf(m, 'tsshim_tasks', { handler: 'runc', state: 'running' }), 1, m);
  assert.is(sumOf(m, 'tsshim_rpc_requests_total', { method: 'Create', code: 'OK' }), 1);
  assert.is(sumOf(m, 'tsshim_backend_command_duration_seconds_count', { handler: 'runc', command: 'create' }), 1);
  assert.is(sumOf(m, 'tsshim_node_worker_up'), 1);
  assert.is(sumOf(m, 'tsshim_node_worker_restarts_total'), 0);
  assert.is(sumOf(m, 'tsshim_build_info', { mode: 'node', role: 'worker' }), 1);
  assert.ok(sumOf(m, 'tsshim_node_connections') >= 1, 'containerd connections held by the supervisor');
  assert.ok(sumOf(m, 'tsshim_events_published_total', { topic: '/tasks/start' }) >= 1, 'events, forwarded by the supervisor, counted there');
  assert.is((m.match(/^# TYPE tsshim_events_published_total /gm) ?? []).length, 1, 'each metric family once in the exposition');
  const before = await nodeStatus(cd);
  process.kill(before.workerPid!, 'SIGKILL');
  // The endpoint answers while no worker serves (the supervisor's own metrics), then with the new worker's.
  const during = await scrape(addr);
  assert.is(during.status, 200, 'the endpoint stays up across the worker restart');
  assert.ok(
    await waitFor(async () => {
      m = (await scrape(addr)).body;
      return sumOf(m, 'tsshim_node_worker_up') === 1 && sumOf(m, 'tsshim_node_worker_restarts_total') === 1;
    }, 20_000, 100),
    `a new worker serves and the restart is counted:\n${m}`,
  );
  assert.is(sumOf(m, 'tsshim_tasks', { handler: 'runc', state: 'running' }), 1, 'the adopted task is counted by the new worker');
  assert.is(sumOf(m, 'tsshim_rpc_requests_total', { method: 'Create' }), 0, "the new worker's counters start from zero (Prometheus sees a reset)");
  const after = await nodeStatus(cd);
  assert.is.not(after.workerPid, before.workerPid);
  // The task still answers through the new worker, and that is counted.
  const ps = await cd.ctr(['task', 'ps', id]);
  assert.is(ps.exitCode, 0, ps.stderr);
  m = (await scrape(addr)).body;
  assert.ok(sumOf(m, 'tsshim_rpc_requests_total', { method: 'Pids', code: 'OK' }) >= 1, m);
  await cd.ctr(['task', 'kill', '-s', 'KILL', id]);
  await waitFor(async () => (await cd.ctr(['task', 'ls'])).stdout.includes('STOPPED'), 10_000);
  await cd.ctr(['task', 'rm', id]);
  await cd.ctr(['c', 'rm', id]);
  m = (await scrape(addr)).body;
  assert.is(sumOf(m, 'tsshim_tasks'), 0, 'no task left');
});

t('containerd logs JSON: the node daemon does too, with logrus keys (auto format)', ({ cd, logFrom }) => {
  const text = readFileSync(nodePaths(cd.address).log).subarray(logFrom).toString('utf8');
  const lines = text.split('\n').filter(Boolean);
  assert.ok(lines.length > 0, 'the daemon logged');
  const recs = lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON line: ${l}`);
    }
  });
  const ours = recs.filter((r) => r.runtime === TSSHIM);
  assert.ok(ours.length > 0);
  for (const r of ours) {
    assert.type(r.msg, 'string');
    assert.ok(['trace', 'debug', 'info', 'warning', 'error', 'fatal'].includes(String(r.level)), `logrus level name: ${JSON.stringify(r)}`);
    assert.match(String(r.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$/);
    assert.type(r.pid, 'number');
  }
  assert.ok(ours.some((r) => r.role === 'worker' && r.level === 'info'), 'worker lines');
  // containerd's own lines in its log are JSON with the same three keys.
  const own = readFileSync(cd.logFile, 'utf8').split('\n').find((l) => l.startsWith('{'));
  assert.ok(own, "containerd's own log is JSON");
  const o = JSON.parse(own!) as Record<string, unknown>;
  for (const k of ['level', 'msg', 'time']) assert.ok(k in o, `${k} in containerd's JSON line`);
});

t("for contrast: runc-v2 writes logrus text into containerd's JSON log (containerd tells its shims no format)", async ({ cd, image }) => {
  const from = readFileSync(cd.logFile).length;
  const id = uniqueId('obs-rv2');
  const r = await cd.ctr(['run', '-d', '--runtime', 'io.containerd.runc.v2', image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  await cd.ctr(['task', 'kill', '-s', 'KILL', id]);
  await waitFor(async () => (await cd.ctr(['task', 'ls'])).stdout.includes('STOPPED'), 10_000);
  await cd.ctr(['task', 'rm', id]);
  await cd.ctr(['c', 'rm', id]);
  const lines = readFileSync(cd.logFile).subarray(from).toString('utf8').split('\n');
  // (containerd's own JSON lines quote runc-v2's `delete` stderr, text too: not runc-v2's lines)
  const theirs = lines.filter((l) => l.includes('runtime=io.containerd.runc.v2') && !l.startsWith('{'));
  assert.ok(theirs.length > 0, `runc-v2 logged: ${lines.slice(-10).join('\n')}`);
  for (const l of theirs) assert.match(l, /^time="[^"]+" level=\w+ msg=/, `text, not JSON: ${l}`);
  assert.ok(theirs.some((l) => l.includes('msg="starting signal loop"')), 'the daemon\'s own line');
});

t.run();
