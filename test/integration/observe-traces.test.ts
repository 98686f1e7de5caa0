// Issue 13.4 (ADR 0025): the span tree through real containerd 2.x, which traces itself
// (OTEL_EXPORTER_OTLP_ENDPOINT, its OTLP plugin) and passes the W3C trace context to its shims in
// ttrpc metadata (github.com/containerd/otelttrpc on its shim client). containerd's spans and
// tsshim's go to one local OTLP/HTTP receiver: each tsshim RPC span is the child of containerd's
// client span of the same call, in the same trace, and each backend command a child of its RPC.
// The shim finds the endpoint in the OTEL_* variables containerd passes on (no [tracing] here).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { containerdUnavailable } from '../helpers/containerd-version.js';
import { skipWithReason } from '../helpers/skip.js';
import { waitFor } from '../helpers/proc.js';
import { TSSHIM } from '../helpers/tasks.js';
import { startReceiver, type Receiver, type ReceivedSpan } from '../../src/observe/testing.js';

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  dir: string;
  receiver: Receiver;
  saved: Record<string, string | undefined>;
}
const t = suite<Ctx>('observe-traces');
const ENV = ['TSSHIM_CONFIG', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_BSP_SCHEDULE_DELAY'] as const;

const unavailable = containerdUnavailable('2');
if (unavailable) {
  skipWithReason(t, 'tsshim spans are children of containerd 2.x spans', unavailable);
} else {
  t.before(async (ctx) => {
    ctx.receiver = await startReceiver();
    ctx.dir = mkdtempSync('/run/tsshim-observe-tr-');
    const config = join(ctx.dir, 'config.toml');
    writeFileSync(config, 'handler = "runc"\n');
    ctx.saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
    process.env.TSSHIM_CONFIG = config;
    // containerd's own OTLP exporter (http/protobuf), exporting every 200 ms rather than 5 s.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = ctx.receiver.url;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
    ctx.cd = await startContainerd({ name: 'observe-tr', containerd: '2' });
    ctx.image = await importTestImage(ctx.cd);
  });
  t.after(async (ctx) => {
    await ctx.cd?.stop();
    await ctx.receiver?.close();
    for (const k of ENV) {
      if (ctx.saved?.[k] === undefined) delete process.env[k];
      else process.env[k] = ctx.saved[k];
    }
    if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
  });

  t('tsshim spans are children of containerd 2.x spans', async ({ cd, image, receiver }) => {
    const id = uniqueId('obs-tr2');
    const r = await cd.ctr(['run', '-d', '--runtime', TSSHIM, image, id, 'sleep', '300']);
    assert.is(r.exitCode, 0, r.stderr);
    await cd.ctr(['task', 'kill', '-s', 'KILL', id]);
    await waitFor(async () => (await cd.ctr(['task', 'ls'])).stdout.includes('STOPPED'), 10_000);
    await cd.ctr(['task', 'rm', id]);
    await cd.ctr(['c', 'rm', id]);
    const byId = () => new Map(receiver.spans.map((s) => [s.spanId, s]));
    const ours = (name: string) => receiver.spans.find((s) => s.service === 'tsshim' && s.name === name && s.attributes['tsshim.task.id'] === id);
    let create: ReceivedSpan | undefined;
    let parent: ReceivedSpan | undefined;
    const arrived = await waitFor(() => {
      create = ours('containerd.task.v2.Task/Create');
      parent = create ? byId().get(create.parentSpanId) : undefined;
      return parent !== undefined && ours('containerd.task.v2.Task/Delete') !== undefined;
    }, 20_000, 100);
    const services = [...new Set(receiver.spans.map((s) => s.service))];
    assert.ok(create, `tsshim's Create span arrived (services seen: ${services.join(', ')}; ${receiver.spans.length} spans)`);
    assert.ok(create!.parentSpanId, 'it has a parent: containerd passed traceparent in the ttrpc metadata');
    assert.ok(arrived && parent, `containerd exported the parent span ${create!.parentSpanId} (services seen: ${services.join(', ')})`);
    assert.is(parent!.service, 'containerd');
    assert.is(parent!.name, 'containerd.task.v2.Task/Create', "containerd's otelttrpc client span of the same call");
    assert.is(parent!.kind, 3, 'client span');
    assert.is(parent!.traceId, create!.traceId);
    assert.is(create!.flags & 0x300, 0x300, 'marked: the parent is remote');
    // containerd's gRPC Tasks.Create (from ctr) is further up the same trace.
    const chain: string[] = [];
    for (let s: ReceivedSpan | undefined = create; s; s = s.parentSpanId ? byId().get(s.parentSpanId) : undefined) chain.push(`${s.service}:${s.name}`);
    assert.ok(chain.length >= 3, `a chain of containerd spans above ours: ${chain.join(' <- ')}`);
    process.stdout.write(`\nspan chain: ${chain.join(' <- ')}\n`);
    const runcCreate = receiver.spans.find((s) => s.parentSpanId === create!.spanId && s.name === 'runc create');
    assert.ok(runcCreate, 'runc create is a child of our Create span');
    assert.is(runcCreate!.traceId, parent!.traceId, 'one trace from ctr to runc');
    // Every RPC span of this task that came with a context sits under a containerd span.
    for (const s of receiver.spans.filter((x) => x.service === 'tsshim' && x.attributes['tsshim.task.id'] === id && x.kind === 2)) {
      const p = byId().get(s.parentSpanId);
      if (p) assert.is(p.service, 'containerd', `${s.name}'s parent is containerd's`);
    }
  });
}

t.run();
