// npm run conformance -- [--handlers runc,gvisor,kata,youki,crun,reference] [--handler-config FILE]... [--scenarios substr[,substr]] [--shim-mode pod|node] [--out docs/]
//
// The command line is conformance/kit.ts (also `tsshim conformance`).
import { runConformanceCli } from './kit.js';

runConformanceCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`conformance: ${e.stack ?? e.message}\n`);
    process.exit(2);
  },
);
