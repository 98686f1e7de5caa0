/**
 * `tsshim config containerd --version 1.6` against the real containerd 1.6 on this host:
 * a private instance (own root, state, socket under /run/tsshim-test-cli-*) loads the
 * generated runtime entries, and the CRI plugin comes up once default_runtime_name names
 * an entry, exactly as the generated comment says (and fails without it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registry } from '../../src/composition/registry.js';
import { RUNTIME_TYPE } from '../../src/shim-api/runtime-type.js';
import { binariesFor, containerdUnavailable } from '../helpers/containerd-version.js';
import { skipWithReason } from '../helpers/skip.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(REPO, 'bin/tsshim');
// containerd 1.6 itself (Debian's /usr/bin binaries), whichever containerd TSSHIM_CONTAINERD or PATH
// selects for the other tests: this test is about the `--version 1.6` config.
const CD = binariesFor('1.6');
const cdVersion = spawnSync(CD.containerd, ['--version'], { encoding: 'utf8' });
const UNAVAILABLE =
  containerdUnavailable('1.6') ??
  (cdVersion.status !== 0 ? `${CD.containerd} --version failed: ${(cdVersion.stderr || String(cdVersion.error ?? '')).trim()}` : undefined) ??
  (/\bv?1\.6\./.test(cdVersion.stdout) ? undefined : `${CD.containerd} is not containerd 1.6: ${cdVersion.stdout.trim()}`);

const dir = `/run/tsshim-test-cli-${randomBytes(4).toString('hex')}`;

function generated(): string {
  const r = spawnSync(process.execPath, [BIN, 'config', 'containerd', '--version', '1.6', '--config-dir', path.join(dir, 'etc')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Like sleep, but does not keep the process alive. */
const deadline = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/** Start containerd on `toml` + a private grpc address; return `ctr plugins ls`'s CRI line, the log and `config dump`. */
async function boot(name: string, toml: string): Promise<{ cri: string; log: string; dump: string }> {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  const sock = path.join(d, 'c.sock');
  const config = path.join(d, 'config.toml');
  fs.writeFileSync(config, `${toml}\n[grpc]\n  address = ${JSON.stringify(sock)}\n`);
  const logFile = path.join(d, 'containerd.log');
  const logFd = fs.openSync(logFile, 'w');
  const child: ChildProcess = spawn(CD.containerd, ['--config', config, '--root', path.join(d, 'root'), '--state', path.join(d, 'state')], {
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  try {
    const deadline = Date.now() + 20_000;
    let cri = '';
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      const r = spawnSync(CD.ctr, ['--address', sock, 'plugins', 'ls'], { encoding: 'utf8', timeout: 5000 });
      if (r.status === 0) {
        cri = r.stdout.split('\n').find((l) => /^io\.containerd\.grpc\.v1\s+cri\s/.test(l)) ?? '';
        if (cri) break;
      }
      await sleep(200);
    }
    const dump = spawnSync(CD.containerd, ['--config', config, 'config', 'dump'], { encoding: 'utf8', timeout: 10_000 }).stdout;
    return { cri, log: fs.readFileSync(logFile, 'utf8'), dump };
  } finally {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, deadline(10_000)]);
      if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }
  }
}

if (UNAVAILABLE) {
  for (const name of ['as printed (runc note left commented): CRI refuses to load, as the comment warns', 'with the runc note uncommented: CRI loads and carries every tsshim entry and option', 'default_runtime_name pointed at a tsshim entry is enough on its own']) {
    skipWithReason(test, name, UNAVAILABLE);
  }
} else {
  test('as printed (runc note left commented): CRI refuses to load, as the comment warns', async () => {
    const r = await boot('plain', generated());
    assert.match(r.cri, /\serror\s*$/);
    assert.match(r.log, 'no corresponding runtime configured');
    // containerd still parsed every entry
    for (const e of registry) assert.match(r.dump, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${e.runtimeEntry}]`);
  });

  test('with the runc note uncommented: CRI loads and carries every tsshim entry and option', async () => {
    const toml = generated().replace(/^# (\[plugins|  default_runtime_name|  runtime_type)/gm, '$1');
    const r = await boot('runc-kept', toml);
    assert.match(r.cri, /\sok\s*$/, r.log.slice(-2000));
    for (const e of registry) {
      const at = r.dump.indexOf(`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${e.runtimeEntry}]`);
      assert.ok(at >= 0, e.runtimeEntry);
      const section = r.dump.slice(at, r.dump.indexOf('ConfigPath', at) + 200);
      assert.match(section, `runtime_type = "${RUNTIME_TYPE}"`);
      assert.match(section, `ConfigPath = "${path.join(dir, 'etc', e.configFile)}"`);
      assert.match(section, `privileged_without_host_devices = ${e.privilegedWithoutHostDevices}`);
    }
  });

  test('default_runtime_name pointed at a tsshim entry is enough on its own', async () => {
    const toml = generated().replace(
      /^version = 2$/m,
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  default_runtime_name = "tsshim-runc"',
    );
    const r = await boot('tsshim-default', toml);
    assert.match(r.cri, /\sok\s*$/, r.log.slice(-2000));
  });
}

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
