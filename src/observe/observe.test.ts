// Metrics exposition, the logrus text format, W3C trace context, the OTLP exporter against a
// local receiver, the metrics endpoint, and the [log]/[metrics]/[tracing] config (ADR 0025).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_SERIES, Registry } from './metrics.js';
import { formatLogfmt, goQuote, rfc3339NanoFixed, toLogfmt } from './logfmt.js';
import { Tracer, SpanKind, formatTraceparent, parseTraceparent } from './tracing.js';
import { metrics } from './shim-metrics.js';
import { serveMetrics } from './endpoint.js';
import { configFromArgv, formatFromConfig } from './containerd-format.js';
import { decodeExportRequest, samples, scrape, startReceiver, sumOf } from './testing.js';
import { createLogger } from '../log.js';
import { parseConfig, tracingFromEnv } from '../composition/config.js';
import { parse as parseToml } from 'smol-toml';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('exposition: counter, gauge and histogram in the text format 0.0.4', async () => {
  const r = new Registry();
  const c = r.counter('x_requests_total', 'Requests.\nSecond line \\ here.', ['method', 'code']);
  const g = r.gauge('x_queue', 'Queue depth.');
  const h = r.histogram('x_seconds', 'Latency.', ['method'], [0.1, 1]);
  c.inc({ method: 'Create', code: 'OK' });
  c.inc({ method: 'Create', code: 'OK' }, 2);
  c.inc({ method: 'Kill', code: 'NotFound' });
  c.inc({ method: 'Kill', code: 'NotFound' }, -5); // ignored: counters only go up
  g.set(undefined, 7);
  h.observe({ method: 'a"b\\c\nd' }, 0.05);
  h.observe({ method: 'a"b\\c\nd' }, 0.5);
  h.observe({ method: 'a"b\\c\nd' }, 3);
  assert.is(
    await r.exposition(),
    [
      '# HELP x_requests_total Requests.\\nSecond line \\\\ here.',
      '# TYPE x_requests_total counter',
      'x_requests_total{method="Create",code="OK"} 3',
      'x_requests_total{method="Kill",code="NotFound"} 1',
      '# HELP x_queue Queue depth.',
      '# TYPE x_queue gauge',
      'x_queue 7',
      '# HELP x_seconds Latency.',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{method="a\\"b\\\\c\\nd",le="0.1"} 1',
      'x_seconds_bucket{method="a\\"b\\\\c\\nd",le="1"} 2',
      'x_seconds_bucket{method="a\\"b\\\\c\\nd",le="+Inf"} 3',
      'x_seconds_sum{method="a\\"b\\\\c\\nd"} 3.55',
      'x_seconds_count{method="a\\"b\\\\c\\nd"} 3',
      '',
    ].join('\n'),
  );
});

test('exposition: collectors run first; series are bounded; bad names refused', async () => {
  const r = new Registry();
  const g = r.gauge('y_tasks', 'Tasks.', ['state']);
  let runs = 0;
  r.onCollect(() => {
    runs++;
    g.reset();
    g.set({ state: 'running' }, 2);
  });
  r.onCollect(() => {
    throw new Error('a failing collector does not fail the scrape');
  });
  assert.match(await r.exposition(), /^y_tasks\{state="running"\} 2$/m);
  assert.is(runs, 1);
  const c = r.counter('y_many_total', 'Many.', ['k']);
  for (let i = 0; i < MAX_SERIES + 10; i++) c.inc({ k: String(i) });
  assert.is([...samples(await r.exposition()).keys()].filter((k) => k.startsWith('y_many_total')).length, MAX_SERIES);
  assert.throws(() => r.counter('bad-name', 'x'), /not valid/);
  assert.throws(() => r.counter('y_many_total', 'again'), /registered twice/);
  assert.throws(() => r.histogram('z', 'x', ['le']), /le/);
});

test('logfmt: logrus TextFormatter layout (time, level, msg, then sorted fields; Go quoting)', () => {
  const line = formatLogfmt({
    level: 'warning',
    time: '2024-05-01T10:00:00.123456789Z',
    msg: 'shim serving',
    runtime: 'io.containerd.tsshim.v2',
    namespace: 'k8s.io',
    pid: 42,
    id: 'c1',
    path: '/run/containerd/s/abc',
    error: 'exit status 1: "quoted"\nnext',
    ok: true,
    empty: '',
    obj: { a: 1 },
  });
  assert.is(
    line,
    'time="2024-05-01T10:00:00.123456789Z" level=warning msg="shim serving" empty= error="exit status 1: \\"quoted\\"\\nnext" id=c1 namespace=k8s.io obj="{\\"a\\":1}" ok=true path=/run/containerd/s/abc pid=42 runtime=io.containerd.tsshim.v2\n',
  );
  assert.is(goQuote('tab\there \u0001 \u007f é ✓'), '"tab\\there \\x01 \\x7f é ✓"');
  assert.is(toLogfmt('not json\n'), 'not json\n', 'a line that is not JSON passes unchanged');
  assert.match(rfc3339NanoFixed(Date.UTC(2024, 0, 2, 3, 4, 5, 6), 7), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.006000007(Z|[+-]\d\d:\d\d)$/);
});

async function loggedLines(format: 'logfmt' | 'json'): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-log-'));
  const file = join(dir, 'log');
  const fd = openSync(file, 'w');
  const log = createLogger({ level: 'debug', base: { runtime: 'io.containerd.tsshim.v2', namespace: 'default', pid: 7 }, format, fd });
  log.info({ id: 'c1' }, 'shim serving');
  log.warn({ err: new Error('boom'), env: ['SECRET=1'] }, 'request failed');
  log.flush();
  await sleep(50);
  closeSync(fd);
  const text = readFileSync(file, 'utf8');
  rmSync(dir, { recursive: true, force: true });
  return text.trim().split('\n');
}

test('createLogger: logfmt by default with runc-v2 keys; json with the same keys; secrets redacted', async () => {
  const text = await loggedLines('logfmt');
  assert.is(text.length, 2);
  assert.match(text[0]!, /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)" level=info msg="shim serving" id=c1 namespace=default pid=7 runtime=io\.containerd\.tsshim\.v2$/);
  assert.match(text[1]!, /^time="[^"]+" level=warning msg="request failed" env="\[redacted\]" error=boom namespace=default pid=7 runtime=io\.containerd\.tsshim\.v2$/);
  const json = (await loggedLines('json')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.is(json[0]!.level, 'info');
  assert.is(json[0]!.msg, 'shim serving');
  assert.is(json[0]!.runtime, 'io.containerd.tsshim.v2');
  assert.is(json[0]!.namespace, 'default');
  assert.is(json[0]!.pid, 7);
  assert.match(String(json[0]!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}/);
  assert.is(json[1]!.level, 'warning');
  assert.is(json[1]!.error, 'boom');
  assert.is(json[1]!.env, '[redacted]');
});

test('traceparent: W3C vectors', () => {
  const ok = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'congo=t61rcWkgMzE');
  assert.equal(ok, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1, remote: true, state: 'congo=t61rcWkgMzE' });
  assert.is(formatTraceparent(ok!), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  assert.ok(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future'), 'a later version may add fields');
  for (const bad of [
    '',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
  ]) {
    assert.is(parseTraceparent(bad), undefined, bad);
  }
});

test('tracer: spans reach an OTLP/HTTP receiver as a tree under the remote parent; unsampled parents record nothing', async () => {
  const rec = await startReceiver();
  try {
    const t = new Tracer({ endpoint: `${rec.url}/v1/traces`, delayMs: 20, resource: { 'service.version': 'test' } });
    const parent = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')!;
    const rpc = t.startSpan('containerd.task.v2.Task/Create', SpanKind.SERVER, parent)!;
    rpc.setAttribute('rpc.method', 'Create').setAttribute('tsshim.task.id', 'c1');
    const cmd = t.startSpan('runc create', SpanKind.INTERNAL, rpc)!;
    cmd.setAttribute('process.exit.code', 1).fail('exit status 1');
    cmd.finish();
    rpc.finish();
    assert.is(t.startSpan('x', SpanKind.SERVER, parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')), undefined);
    const root = t.startSpan('root', SpanKind.SERVER)!;
    root.finish();
    const exportedBefore = metrics.spansExported.get();
    await t.flush(5000);
    assert.is(rec.spans.length, 3);
    const byName = new Map(rec.spans.map((s) => [s.name, s]));
    const r = byName.get('containerd.task.v2.Task/Create')!;
    const c = byName.get('runc create')!;
    assert.is(r.traceId, parent.traceId);
    assert.is(r.parentSpanId, parent.spanId);
    assert.is(r.kind, SpanKind.SERVER);
    assert.is(r.service, 'tsshim');
    assert.is(r.attributes['tsshim.task.id'], 'c1');
    assert.is(r.flags & 0x300, 0x300, 'parent is remote');
    assert.is(c.traceId, parent.traceId);
    assert.is(c.parentSpanId, r.spanId);
    assert.is(c.status.code, 2);
    assert.is(c.status.message, 'exit status 1');
    assert.is(c.attributes['process.exit.code'], 1);
    assert.ok(c.start >= r.start && c.end <= r.end, 'the child lies within its parent');
    const rt = byName.get('root')!;
    assert.is(rt.parentSpanId, '');
    assert.is(rt.traceId.length, 32);
    assert.is(metrics.spansExported.get() - exportedBefore, 3);
  } finally {
    await rec.close();
  }
});

test('tracer: a failing or absent endpoint drops spans, counted; a full queue drops new spans, counted; nothing waits', async () => {
  const rec = await startReceiver();
  rec.failWith = 503;
  const failedBefore = metrics.spansDropped.get({ reason: 'export_failed' });
  const fullBefore = metrics.spansDropped.get({ reason: 'queue_full' });
  const t = new Tracer({ endpoint: `${rec.url}/v1/traces`, delayMs: 10_000, maxQueue: 5, maxBatch: 100 });
  for (let i = 0; i < 8; i++) t.startSpan(`s${i}`, SpanKind.INTERNAL)!.finish();
  assert.is(t.pending, 5, 'the queue holds at most maxQueue');
  assert.is(metrics.spansDropped.get({ reason: 'queue_full' }) - fullBefore, 3);
  await t.flush(5000);
  assert.is(rec.requests, 1);
  assert.is(metrics.spansDropped.get({ reason: 'export_failed' }) - failedBefore, 5);
  await rec.close();
  // Nobody listens any more: refused at once, dropped, counted.
  t.startSpan('late', SpanKind.INTERNAL)!.finish();
  await t.flush(5000);
  assert.is(metrics.spansDropped.get({ reason: 'export_failed' }) - failedBefore, 6);
  assert.is(t.pending, 0);
});

test('tracer: the exporter encodes what decodes back (protobuf round trip of attributes of each type)', () => {
  const t = new Tracer({ endpoint: 'http://127.0.0.1:1/v1/traces' });
  const s = t.startSpan('n', SpanKind.CLIENT)!;
  s.setAttribute('s', 'v').setAttribute('i', 42).setAttribute('f', 1.5).setAttribute('b', true).setAttribute('skip', undefined);
  s.end = s.start + 5n;
  const { encodeExportRequest } = Tracer as unknown as { encodeExportRequest?: unknown };
  assert.is(encodeExportRequest, undefined);
  return import('./tracing.js').then(({ encodeExportRequest: enc }) => {
    const [d] = decodeExportRequest(enc([s], { 'service.name': 'svc' }));
    assert.equal(d!.attributes, { s: 'v', i: 42, f: 1.5, b: true });
    assert.is(d!.service, 'svc');
    assert.is(d!.end - d!.start, 5n);
    assert.is(d!.kind, SpanKind.CLIENT);
  });
});

test('endpoint: GET /metrics on a unix socket and on a loopback port; 404 elsewhere; a served socket is not taken over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-metrics-'));
  const r = new Registry();
  r.counter('z_total', 'Z.').inc();
  const sock = join(dir, 'sub', 'm.sock');
  const a = await serveMetrics({ path: sock }, () => r.exposition());
  const b = await serveMetrics({ host: '127.0.0.1', port: 0 }, () => r.exposition());
  try {
    assert.is(a.address, `unix://${sock}`);
    for (const addr of [a.address, b.address]) {
      const got = await scrape(addr);
      assert.is(got.status, 200);
      assert.is(got.contentType, 'text/plain; version=0.0.4; charset=utf-8');
      assert.is(sumOf(got.body, 'z_total'), 1);
      assert.is((await scrape(addr, '/other')).status, 404);
    }
    await serveMetrics({ path: sock }, () => r.exposition()).then(
      () => assert.unreachable('a second endpoint on a served socket'),
      (err: Error) => assert.match(err.message, /served by another process/),
    );
  } finally {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: [log], [metrics], [tracing] parsed and checked; OTEL_* variables as the fallback', () => {
  const c = parseConfig('[log]\nformat = "json"\n[metrics]\naddress = "unix:///run/tsshim/metrics.sock"\npod_dir = "/run/tsshim/metrics"\n[tracing]\nendpoint = "http://127.0.0.1:4318/v1/traces"\nsample_ratio = 0.5\n', 't');
  assert.equal(c.observe, { logFormat: 'json', metricsAddress: 'unix:///run/tsshim/metrics.sock', metricsPodDir: '/run/tsshim/metrics', tracing: { endpoint: 'http://127.0.0.1:4318/v1/traces', sampleRatio: 0.5, serviceName: 'tsshim' } });
  assert.equal(parseConfig('', 't').observe, { logFormat: 'auto' });
  assert.is(parseConfig('[metrics]\naddress = "127.0.0.1:9464"\n', 't').observe.metricsAddress, '127.0.0.1:9464');
  assert.is(parseConfig('[metrics]\naddress = "[::1]:9464"\n', 't').observe.metricsAddress, '[::1]:9464');
  assert.throws(() => parseConfig('[metrics]\naddress = "0.0.0.0:9464"\n', 't'), /loopback/);
  assert.throws(() => parseConfig('[metrics]\naddress = "unix://relative.sock"\n', 't'), /absolute path/);
  assert.throws(() => parseConfig('[log]\nformat = "xml"\n', 't'), /"auto", "logfmt" or "json"/);
  assert.throws(() => parseConfig('[tracing]\nendpoint = "127.0.0.1:4318"\n', 't'), /OTLP\/HTTP URL/);
  assert.throws(() => parseConfig('[tracing]\nendpoint = "http://x/v1/traces"\nsample_ratio = 2\n', 't'), /sample_ratio/);
  assert.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' }), { endpoint: 'http://127.0.0.1:4318/v1/traces', sampleRatio: 1, serviceName: 'tsshim' });
  assert.is(tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://h:1/t' })?.endpoint, 'http://h:1/t');
  assert.is(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://h:1', OTEL_SDK_DISABLED: 'true' }), undefined);
  assert.is(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://h:1', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), undefined);
  assert.is(tracingFromEnv({}), undefined);
});

test("containerd's log format: --config from its argv; [debug] format in the file and its imports (the last wins)", async () => {
  assert.is(configFromArgv(['containerd', '--config', '/a.toml']), '/a.toml');
  assert.is(configFromArgv(['containerd', '-c', 'b.toml', '--log-level', 'debug']), 'b.toml');
  assert.is(configFromArgv(['containerd', '--config=/c.toml']), '/c.toml');
  assert.is(configFromArgv(['containerd', '--log-level', 'debug']), undefined);
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-cdcfg-'));
  try {
    const parse = (t: string) => parseToml(t) as Record<string, unknown>;
    writeFileSync(join(dir, 'main.toml'), 'version = 2\nimports = ["conf.d/*.toml"]\n[debug]\nformat = "text"\n');
    assert.is(await formatFromConfig(join(dir, 'main.toml'), parse), 'text');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'conf.d', '10-json.toml'), '[debug]\nformat = "json"\n');
    assert.is(await formatFromConfig(join(dir, 'main.toml'), parse), 'json');
    writeFileSync(join(dir, 'plain.toml'), 'version = 2\n');
    assert.is(await formatFromConfig(join(dir, 'plain.toml'), parse), undefined);
    assert.is(await formatFromConfig(join(dir, 'missing.toml'), parse), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
