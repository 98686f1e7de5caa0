// Bundles the shim (dist/src/main.js and what it imports) into dist/bundle/ with
// esbuild: containerd runs our binary twice per task (start, delete), and module
// resolution of ~150 files was most of their start-up time (see docs/benchmarks.md).
// koffi stays external: it loads its prebuilt native module at run time. Everything else is
// inlined, the workspace package ttrpc-ts (packages/ttrpc-ts) included, so the shim process
// resolves no package but koffi (ADR 0022).
// A second entry, handler.js, is the public handler API (package export tsshim/handler, src/sdk/handler.ts):
// it shares its chunks with main.js, so a handler package loaded by the shim gets the very modules the
// shim runs (one ShimError class, one OCI-CLI driver), not a second copy (ADR 0023).
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';

rmSync(new URL('../dist/bundle', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: {
    main: new URL('../dist/src/main.js', import.meta.url).pathname,
    handler: new URL('../dist/src/sdk/handler.js', import.meta.url).pathname,
  },
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

// The launcher runs this entry: named as the shim, so `ps` and containerd's tooling show the shim's
// name for its daemons (an extensionless file is ES module code under "type": "module").
writeFileSync(new URL('../dist/bundle/containerd-shim-tsshim-v2', import.meta.url), "// containerd-shim-tsshim-v2 (see bin/containerd-shim-tsshim-v2)\nimport './main.js';\n");
