// Bundles the shim (dist/src/main.js and what it imports) into dist/bundle/ with
// esbuild: containerd runs our binary twice per task (start, delete), and module
// resolution of ~150 files was most of their start-up time (see docs/benchmarks.md).
// koffi stays external: it loads its prebuilt native module at run time.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync(new URL('../dist/bundle', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: [new URL('../dist/src/main.js', import.meta.url).pathname],
  outdir: new URL('../dist/bundle', import.meta.url).pathname,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __tsshimRequire } from 'node:module'; const require = __tsshimRequire(import.meta.url);" },
});
