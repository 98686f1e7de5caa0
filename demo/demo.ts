// npm run demo: a private containerd, our own busybox image, and one container per
// handler this host can run, through io.containerd.tsshim.v2 (and runc-v2 for reference).
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startContainerd, importTestImage, uniqueId } from '../test/helpers/containerd.js';
import { probeAll } from '../src/composition/registry.js';
import { RUNTIME_TYPE } from '../src/shim-api/runtime-type.js';

interface Row {
  column: string;
  exit: number | string;
  ms: number;
  output: string;
}

const SCRIPT = 'echo "kernel $(uname -r): $(dmesg 2>/dev/null | head -1 | cut -c1-40)"; id -u';

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-demo-'));
  // Every tsshim row runs with its own handler config (never the default handler).
  const configs: Record<string, string> = {
    runc: 'handler = "runc"\nname = "tsshim-runc"\n',
    gvisor: 'handler = "gvisor"\nname = "tsshim-gvisor"\n[options]\nplatform = "ptrace"\nnetwork = "none"\n',
    'kata-standin': 'handler = "kata"\nname = "tsshim-kata-standin"\n[options]\n# stand-in delegate: real Kata (containerd-shim-kata-v2) is not installable here\nshim = "containerd-shim-runc-v2"\n',
    youki: 'handler = "youki"\nname = "tsshim-youki"\n',
    kata: 'handler = "kata"\nname = "tsshim-kata"\n',
  };
  for (const [k, v] of Object.entries(configs)) writeFileSync(join(dir, `${k}.toml`), v);
  const cfg = (k: keyof typeof configs) => join(dir, `${k}.toml`);
  const probes = new Map((await probeAll()).map((p) => [p.type, p] as const));
  const unusable = (type: string) => (probes.get(type)?.usable ? undefined : (probes.get(type)?.reason ?? `no ${type} handler`));
  const columns: Array<{ column: string; runtime: string; configPath?: string; skip?: string }> = [
    { column: 'reference: io.containerd.runc.v2', runtime: 'io.containerd.runc.v2' },
    { column: 'tsshim: runc handler', runtime: RUNTIME_TYPE, configPath: cfg('runc') },
    { column: 'tsshim: gvisor handler (runsc, ptrace)', runtime: RUNTIME_TYPE, configPath: cfg('gvisor'), skip: unusable('gvisor') },
    { column: 'tsshim: kata handler (delegate stand-in: containerd-shim-runc-v2)', runtime: RUNTIME_TYPE, configPath: cfg('kata-standin') },
    { column: 'tsshim: youki handler', runtime: RUNTIME_TYPE, configPath: cfg('youki'), skip: unusable('youki') },
    { column: 'tsshim: real Kata', runtime: RUNTIME_TYPE, configPath: cfg('kata'), skip: unusable('kata') },
  ];
  console.log('[demo] starting a private containerd');
  const cd = await startContainerd({ name: 'demo' });
  const rows: Row[] = [];
  let failures = 0;
  try {
    const image = await importTestImage(cd);
    console.log(`[demo] image ${image} imported (built from busybox-static, no registry)`);
    for (const c of columns) {
      if (c.skip) {
        rows.push({ column: c.column, exit: 'not run', ms: 0, output: c.skip });
        continue;
      }
      const id = uniqueId('demo');
      const t0 = Date.now();
      const args = ['run', '--rm', '--runtime', c.runtime, ...(c.configPath ? ['--runtime-config-path', c.configPath] : []), image, id, 'sh', '-c', SCRIPT];
      const r = await cd.ctr(args, { timeoutMs: 120_000 });
      const ms = Date.now() - t0;
      if (r.exitCode !== 0) failures++;
      rows.push({ column: c.column, exit: r.exitCode, ms, output: (r.stdout + r.stderr).trim().replace(/\s*\n\s*/g, ' | ') });
    }
  } finally {
    await cd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const w = Math.max(...rows.map((r) => r.column.length));
  console.log(`\n${'runtime / handler'.padEnd(w)}  exit     ms  output`);
  for (const r of rows) console.log(`${r.column.padEnd(w)}  ${String(r.exit).padStart(7)}  ${String(r.ms).padStart(5)}  ${r.output}`);
  return failures === 0 ? 0 : 1;
}

main().then((c) => process.exit(c), (e) => {
  console.error(e);
  process.exit(1);
});
