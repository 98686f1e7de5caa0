// Issue 11.3 on the real shim daemon (started with containerd's bootstrap contract, no
// containerd): a client writes 1 MiB requests for 10 s and never reads the answers. The shim
// stops reading it (its RSS stays bounded), answers no error with the request's bulk, and keeps
// serving another connection. The same run on containerd-shim-runc-v2 is printed for the record.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Client } from 'ttrpc-ts';
import { SERVICE, task } from '../../src/shim-api/pb.js';
import { startShimDaemon, type ShimKind } from '../helpers/shim-daemon.js';
import { flood, samplePeak } from '../helpers/ttrpc-load.js';
import { uniqueId } from '../helpers/containerd.js';

const t = suite('ttrpc-backpressure');

/**
 * Stated bound on the shim's RSS growth under the flood. What the shim may hold for one
 * connection: one partial frame (4 MiB), request payloads of in-flight calls (64 MiB cap; here
 * none, each call is answered at once), answers queued while the peer does not read (small
 * errors), plus V8's garbage-collection slack (the shim still parses a few hundred MiB of
 * 1 MiB requests before the kernel buffer of small answers fills). Measured: +61..72 MiB; before
 * the fix +398 MiB (a 1 MiB id logged per request into an unbounded log buffer).
 */
const RSS_GROWTH_BOUND_MIB = 128;
const FLOOD_MS = 10_000;
const FRAME_BYTES = 1 << 20;

const figures: Record<string, string> = {};

for (const kind of ['tsshim', 'runc-v2'] as ShimKind[]) {
  t(`[${kind}] a client that writes 1 MiB requests for 10 s and never reads: RSS bounded, another connection served`, async () => {
    const shim = await startShimDaemon(kind, uniqueId('flood'));
    try {
      // warm up: one answered call, then the baseline
      const c = await Client.connect(shim.socket, { connectTimeoutMs: 10_000 });
      await c.call(SERVICE.Task, 'Connect', task.ConnectRequest.encode({ id: shim.id }).finish(), { timeoutMs: 20_000 }).catch(() => undefined);
      const before = shim.rssKiB();
      const peak = samplePeak(() => shim.rssKiB());
      const r = await flood(shim.socket, { durationMs: FLOOD_MS, frameBytes: FRAME_BYTES });
      const peakKiB = peak.stop();
      const growthMiB = (peakKiB - before) / 1024;
      figures[kind] = `RSS ${(before / 1024).toFixed(1)} MiB before, peak ${(peakKiB / 1024).toFixed(1)} MiB (+${growthMiB.toFixed(1)} MiB); ` +
        `flooder got ${(r.bytesAccepted / 1048576).toFixed(0)} MiB into the socket in ${FLOOD_MS / 1000} s; ` +
        `probes answered ${r.probesAnswered}/${r.probes}, slowest ${r.probeMaxMs} ms`;
      process.stdout.write(`\n[ttrpc-backpressure] ${kind}: ${figures[kind]}\n`);
      assert.ok(shim.alive(), 'shim alive');
      assert.equal(r.probeErrors, [], 'probe calls answered (NotFound)');
      assert.ok(r.probes >= 2 && r.probesAnswered === r.probes, `every probe answered during the flood (${r.probesAnswered}/${r.probes})`);
      // still serving after the flooder is gone
      await c.call(SERVICE.Task, 'Connect', task.ConnectRequest.encode({ id: shim.id }).finish(), { timeoutMs: 20_000 }).catch((e) => {
        if (!/not found|NotFound/i.test(String(e))) throw e;
      });
      c.close();
      if (kind === 'tsshim') {
        assert.ok(growthMiB < RSS_GROWTH_BOUND_MIB, `shim RSS grew by ${growthMiB.toFixed(1)} MiB (bound ${RSS_GROWTH_BOUND_MIB} MiB)`);
      }
    } finally {
      await shim.stop();
    }
  });
}

t.run();
