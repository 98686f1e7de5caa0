// The real conformance matrix as a test, pod mode (one shim per pod, as runc-v2): every scenario on
// every column this host can run (reference io.containerd.runc.v2, tsshim runc, gvisor, kata
// stand-in, youki; crun when it works here). See matrix-cells.ts.
//
// The matrix runs once, before the tests are registered (top-level await); the reports go to
// $TSSHIM_CONFORMANCE_OUT (default /tmp/tsshim-conformance-ci). TSSHIM_CONFORMANCE_SCENARIOS and
// TSSHIM_CONFORMANCE_HANDLERS narrow the run like the CLI's --scenarios and --handlers.
import { test } from 'uvu';
import { registerMatrix } from './matrix-cells.js';

await registerMatrix(test, 'pod', process.env.TSSHIM_CONFORMANCE_OUT ?? '/tmp/tsshim-conformance-ci');
test.run();
