// The conformance matrix in node mode (ADR 0018): the same scenarios, every tsshim column served by
// the one node daemon of the containerd (`[shim] mode = "node"`), the reference still
// io.containerd.runc.v2. Reports go to $TSSHIM_CONFORMANCE_OUT/node (default
// /tmp/tsshim-conformance-ci/node).
import { join } from 'node:path';
import { test } from 'uvu';
import { registerMatrix } from './matrix-cells.js';

await registerMatrix(test, 'node', join(process.env.TSSHIM_CONFORMANCE_OUT ?? '/tmp/tsshim-conformance-ci', 'node'));
test.run();
