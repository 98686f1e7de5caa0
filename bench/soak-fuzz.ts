// Soak section `fuzz`: N fuzzed ttrpc frames (1,000,000; 100,000 with --short) against a real
// shim daemon's socket (started with containerd's bootstrap contract, no containerd), tsshim
// and runc-v2 alike: 0 crashes, the shim still answers afterwards, RSS before/peak/after.
import type { SoakSection } from './soak.js';
import { startShimDaemon, type ShimKind } from '../test/helpers/shim-daemon.js';
import { fuzz, samplePeak } from '../test/helpers/ttrpc-load.js';
import { Client, Code, TtrpcError } from 'ttrpc-ts';
import { SERVICE, task } from '../src/shim-api/pb.js';

/** tsshim's RSS may grow by at most this much over the run (bounded: a leak would grow with N). */
const TSSHIM_RSS_GROWTH_BOUND_MIB = 128;

async function stillServes(socket: string): Promise<string | undefined> {
  const c = await Client.connect(socket, { connectTimeoutMs: 10_000 }).catch((e: Error) => e);
  if (c instanceof Error) return `cannot connect after the fuzz: ${c.message}`;
  try {
    await c.call(SERVICE.Task, 'State', task.StateRequest.encode({ id: 'soak-missing', execId: '' }).finish(), { timeoutMs: 20_000 });
    return 'State of a missing task succeeded';
  } catch (err) {
    return err instanceof TtrpcError && err.code === Code.NotFound ? undefined : `State after the fuzz: ${String(err)}`;
  } finally {
    c.close();
  }
}

export const fuzzSection: SoakSection = {
  name: 'fuzz',
  description: 'fuzzed ttrpc frames against the shim socket (0 crashes, RSS bounded)',
  async run({ short }) {
    const total = short ? 100_000 : 1_000_000;
    const seed = Number(process.env.TSSHIM_SOAK_SEED ?? 20261202);
    const figures: Record<string, unknown> = { frames: total, seed };
    const failures: string[] = [];
    for (const kind of ['tsshim', 'runc-v2'] as ShimKind[]) {
      const shim = await startShimDaemon(kind, `soak-fuzz-${kind}-${process.pid}`);
      try {
        const before = shim.rssKiB();
        const peak = samplePeak(() => shim.rssKiB(), 250);
        const t0 = Date.now();
        const r = await fuzz(shim.socket, { total, seed });
        const seconds = (Date.now() - t0) / 1000;
        const peakKiB = peak.stop();
        const alive = shim.alive();
        const serves = alive ? await stillServes(shim.socket) : 'daemon gone';
        const after = shim.rssKiB();
        figures[kind] = {
          crashes: alive ? 0 : 1,
          seconds: Math.round(seconds * 10) / 10,
          framesPerSecond: Math.round(r.frames / seconds),
          responses: r.responses,
          connections: r.connections,
          connectionsClosedByShim: r.closedByShim,
          mebibytesSent: Math.round(r.bytes / 1048576),
          rssMiB: { before: +(before / 1024).toFixed(1), peak: +(peakKiB / 1024).toFixed(1), after: +(after / 1024).toFixed(1) },
        };
        if (!alive) failures.push(`${kind}: daemon died during the fuzz`);
        else if (serves) failures.push(`${kind}: ${serves}`);
        if (r.frames !== total) failures.push(`${kind}: sent ${r.frames} of ${total} frames`);
        if (kind === 'tsshim' && (peakKiB - before) / 1024 > TSSHIM_RSS_GROWTH_BOUND_MIB) {
          failures.push(`${kind}: RSS grew by ${((peakKiB - before) / 1024).toFixed(1)} MiB (bound ${TSSHIM_RSS_GROWTH_BOUND_MIB} MiB)`);
        }
      } finally {
        await shim.stop();
      }
    }
    return { figures, failures };
  },
};
