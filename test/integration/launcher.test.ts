// Issue 11.5, the launcher (bin/containerd-shim-tsshim-v2, ADR 0008/0013): start's answer is the
// address line only, whatever Node prints before it takes over; and a setsid without -f
// (busybox's) falls back to Node's classic start instead of failing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Client } from 'ttrpc-ts';
import { task, SERVICE } from '../../src/shim-api/pb.js';
import { makeBundle } from '../helpers/bundle.js';
import { REPO_ROOT, waitFor, isAlive } from '../helpers/proc.js';
import { skipWithReason } from '../helpers/skip.js';
import { mkfifo } from '../../src/sys/libc.js';

const SHIM = path.join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2');
const NS = 'tsshim-launcher';
const BUSYBOX = '/bin/busybox';

interface Ctx {
  dir: string;
  fakeAddress: string;
  logFds: number[];
}
const t = suite<Ctx>('launcher');

t.before((ctx) => {
  ctx.dir = fs.mkdtempSync('/run/tsshim-launcher-');
  ctx.fakeAddress = path.join(ctx.dir, 'containerd.sock');
  ctx.logFds = [];
});
t.after((ctx) => {
  for (const fd of ctx.logFds) fs.closeSync(fd);
  fs.rmSync(ctx.dir, { recursive: true, force: true });
});

function newBundle(ctx: Ctx, id: string): string {
  const b = makeBundle(path.join(ctx.dir, id), { args: ['sleep', '100'], hostNetwork: true });
  mkfifo(path.join(b, 'log'), 0o600);
  ctx.logFds.push(fs.openSync(path.join(b, 'log'), fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
  return b;
}

/** A --require'd script that prints on stdout and stderr and emits a warning as Node boots. */
function noisyPreload(ctx: Ctx): string {
  const f = path.join(ctx.dir, 'noisy.cjs');
  fs.writeFileSync(f, "process.stdout.write('noise on stdout\\n');\nprocess.stderr.write('noise on stderr\\n');\nprocess.emitWarning('a warning as Node boots');\n");
  return f;
}

/** A PATH whose `setsid` is busybox's (no -f). */
function busyboxSetsidPath(ctx: Ctx): string {
  const bin = path.join(ctx.dir, 'busybox-bin');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(bin);
    fs.symlinkSync(BUSYBOX, path.join(bin, 'setsid'));
  }
  return `${bin}:${process.env.PATH}`;
}

const modes = [
  { name: 'util-linux setsid -f (start becomes the daemon)', busybox: false },
  { name: "busybox's setsid without -f (classic start spawns the daemon)", busybox: true },
];

for (const mode of modes) {
  const name = `start answers with the address line only, with NODE_OPTIONS noise on stdout and stderr: ${mode.name}`;
  if (mode.busybox && !fs.existsSync(BUSYBOX)) {
    skipWithReason(t, name, `${BUSYBOX} is not installed on this host`);
    continue;
  }
  t(name, async (ctx) => {
    const id = mode.busybox ? 'noisy-bb' : 'noisy-ul';
    const bundle = newBundle(ctx, id);
    const tmp = path.join(ctx.dir, `tmp-${id}`);
    fs.mkdirSync(tmp);
    if (mode.busybox) {
      const probe = spawnSync('sh', ['-c', 'setsid -f true'], { env: { ...process.env, PATH: busyboxSetsidPath(ctx) } });
      assert.is.not(probe.status, 0, 'this setsid really has no -f');
    }
    const env = {
      ...process.env,
      NODE_OPTIONS: `--require ${noisyPreload(ctx)}`,
      TMPDIR: tmp,
      ...(mode.busybox ? { PATH: busyboxSetsidPath(ctx) } : {}),
    };
    const r = spawnSync(SHIM, ['-namespace', NS, '-address', ctx.fakeAddress, '-publish-binary', '/bin/false', '-id', id, 'start'], {
      cwd: bundle,
      input: Buffer.alloc(0),
      env,
      encoding: 'buffer',
    });
    assert.is(r.status, 0, r.stderr.toString() + r.stdout.toString());
    const address = r.stdout.toString();
    assert.match(address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/, 'stdout is the address and nothing else');
    assert.is(r.stderr.toString(), '', 'nothing on stderr');
    assert.equal(fs.readdirSync(tmp), [], "the launcher's scratch file is gone");
    const client = await Client.connect(address.slice('unix://'.length));
    try {
      const conn = task.ConnectResponse.decode(await client.call(SERVICE.Task, 'Connect', task.ConnectRequest.encode({ id }).finish()));
      assert.ok(isAlive(conn.shimPid), 'the daemon serves');
      assert.ok(conn.shimPid !== r.pid, 'the start process is not the daemon');
      const argv = fs.readFileSync(`/proc/${conn.shimPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      assert.is(argv.at(-1), 'daemon');
      const stat = fs.readFileSync(`/proc/${conn.shimPid}/stat`, 'utf8');
      const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
      assert.is(session, conn.shimPid, 'the daemon leads its own session (detached)');
      assert.not.ok(fs.readlinkSync(`/proc/${conn.shimPid}/fd/1`).includes(tmp), "the daemon's stdout left the scratch file");
      await client.call(SERVICE.Task, 'Shutdown', task.ShutdownRequest.encode({ id, now: false }).finish());
      assert.ok(await waitFor(() => !isAlive(conn.shimPid), 10_000), 'the daemon exits after Shutdown');
    } finally {
      client.close();
    }
  });
}

if (fs.existsSync(BUSYBOX)) {
  t("busybox's setsid: a bad flag still fails with Go flag's exit status 2 and says why", (ctx) => {
    const r = spawnSync(SHIM, ['-bogus', 'x', 'start'], { encoding: 'utf8', env: { ...process.env, PATH: busyboxSetsidPath(ctx) } });
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, /flag provided but not defined: -bogus/);
    assert.is(r.stdout, '');
  });
} else {
  skipWithReason(t, "busybox's setsid: a bad flag still fails with exit status 2", `${BUSYBOX} is not installed on this host`);
}

t.run();
