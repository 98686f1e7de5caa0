// npm run demo [-- --containerd 1.6,2]: on each containerd version (default: Debian's 1.6 and the
// 2.x peer build), a private containerd, our own busybox image, and one container per handler this
// host can run, through io.containerd.tsshim.v2 (and that containerd's own runc-v2 for reference).
// A version that is not built here is shown as not run, with the reason.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { startContainerd, importTestImage, uniqueId } from '../test/helpers/containerd.js';
import { CONTAINERD_VERSIONS, containerdUnavailable, kataStandInDelegate, type ContainerdVersion } from '../test/helpers/containerd-version.js';
import { probeAll } from '../src/composition/registry.js';
import { RUNTIME_TYPE } from '../src/shim-api/runtime-type.js';

interface Row {
  containerd: string;
  column: string;
  exit: number | string;
  ms: number;
  output: string;
}

const SCRIPT = 'echo "kernel $(uname -r): $(dmesg 2>/dev/null | head -1 | cut -c1-40)"; id -u';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { containerd: { type: 'string' } }, strict: true });
  const versions = (values.containerd ?? '1.6,2').split(',').map((v) => v.trim()) as ContainerdVersion[];
  for (const v of versions) if (!CONTAINERD_VERSIONS.includes(v)) throw new Error(`--containerd: unknown version ${v} (${CONTAINERD_VERSIONS.join(', ')})`);
  const probes = new Map((await probeAll()).map((p) => [p.type, p] as const));
  const unusable = (type: string) => (probes.get(type)?.usable ? undefined : (probes.get(type)?.reason ?? `no ${type} handler`));
  const rows: Row[] = [];
  let failures = 0;
  for (const version of versions) {
    const dir = mkdtempSync(join(tmpdir(), 'tsshim-demo-'));
    // Every tsshim row runs with its own handler config (never the default handler).
    const configs: Record<string, string> = {
      runc: 'handler = "runc"\nname = "tsshim-runc"\n',
      gvisor: 'handler = "gvisor"\nname = "tsshim-gvisor"\n[options]\nplatform = "ptrace"\nnetwork = "none"\n',
      // STAND-IN delegate: this containerd's own containerd-shim-runc-v2 (real Kata is not installable here).
      'kata-standin': `handler = "kata"\nname = "tsshim-kata-standin"\n[options]\n# stand-in delegate: real Kata (containerd-shim-kata-v2) is not installable here\nshim = ${JSON.stringify(kataStandInDelegate(version))}\n`,
      youki: 'handler = "youki"\nname = "tsshim-youki"\n',
      kata: 'handler = "kata"\nname = "tsshim-kata"\n',
    };
    for (const [k, v] of Object.entries(configs)) writeFileSync(join(dir, `${k}.toml`), v);
    const cfg = (k: keyof typeof configs) => join(dir, `${k}.toml`);
    const columns: Array<{ column: string; runtime: string; configPath?: string; skip?: string }> = [
      { column: 'reference: io.containerd.runc.v2', runtime: 'io.containerd.runc.v2' },
      { column: 'tsshim: runc handler', runtime: RUNTIME_TYPE, configPath: cfg('runc') },
      { column: 'tsshim: gvisor handler (runsc, ptrace)', runtime: RUNTIME_TYPE, configPath: cfg('gvisor'), skip: unusable('gvisor') },
      { column: 'tsshim: kata handler (delegate STAND-IN: containerd-shim-runc-v2)', runtime: RUNTIME_TYPE, configPath: cfg('kata-standin') },
      { column: 'tsshim: youki handler', runtime: RUNTIME_TYPE, configPath: cfg('youki'), skip: unusable('youki') },
      { column: 'tsshim: real Kata', runtime: RUNTIME_TYPE, configPath: cfg('kata'), skip: unusable('kata') },
    ];
    const why = containerdUnavailable(version);
    if (why) {
      for (const c of columns) rows.push({ containerd: version, column: c.column, exit: 'not run', ms: 0, output: why });
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    console.log(`[demo] containerd ${version}: starting a private containerd`);
    const cd = await startContainerd({ name: `demo-${version}`, containerd: version });
    let label: string = version;
    try {
      const server = /Server:[\s\S]*?Version:\s+(\S+)/.exec((await cd.ctr(['version'])).stdout)?.[1];
      if (server) label = server;
      const image = await importTestImage(cd);
      console.log(`[demo] containerd ${label}: image ${image} imported (built from busybox-static, no registry)`);
      for (const c of columns) {
        if (c.skip) {
          rows.push({ containerd: label, column: c.column, exit: 'not run', ms: 0, output: c.skip });
          continue;
        }
        const id = uniqueId('demo');
        const t0 = Date.now();
        const args = ['run', '--rm', '--runtime', c.runtime, ...(c.configPath ? ['--runtime-config-path', c.configPath] : []), image, id, 'sh', '-c', SCRIPT];
        const r = await cd.ctr(args, { timeoutMs: 120_000 });
        const ms = Date.now() - t0;
        if (r.exitCode !== 0) failures++;
        rows.push({ containerd: label, column: c.column, exit: r.exitCode, ms, output: (r.stdout + r.stderr).trim().replace(/\s*\n\s*/g, ' | ') });
      }
    } finally {
      await cd.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const v = Math.max('containerd'.length, ...rows.map((r) => r.containerd.length));
  const w = Math.max(...rows.map((r) => r.column.length));
  console.log(`\n${'containerd'.padEnd(v)}  ${'runtime / handler'.padEnd(w)}  exit     ms  output`);
  for (const r of rows) console.log(`${r.containerd.padEnd(v)}  ${r.column.padEnd(w)}  ${String(r.exit).padStart(7)}  ${String(r.ms).padStart(5)}  ${r.output}`);
  return failures === 0 ? 0 : 1;
}

main().then((c) => process.exit(c), (e) => {
  console.error(e);
  process.exit(1);
});
