/**
 * Traces (ADR 0025): W3C trace context in, spans out over OTLP/HTTP (binary protobuf, the
 * encoding every OTLP receiver must accept and the one containerd's own exporter sends).
 * Hand-written: @opentelemetry/sdk-trace-base with the OTLP/HTTP exporter costs ~60 ms of
 * start-up per pod shim (measured in the ADR); what we need is small.
 *
 * - `parseTraceparent`: https://www.w3.org/TR/trace-context/#traceparent-header
 * - spans are batched: at most `maxQueue` wait, one export at a time of at most `maxBatch`,
 *   every `delayMs` or as soon as a batch is full; a full queue drops new spans, a failed
 *   export drops its batch (no retries: the queue stays bounded); both counted
 *   (tsshim_trace_spans_dropped_total). Nothing here blocks the event loop: the export is an
 *   async HTTP request with a timeout.
 */
import { getRandomValues } from 'node:crypto';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { metrics } from './shim-metrics.js';

export interface SpanContext {
  /** 32 lower-case hex digits */
  traceId: string;
  /** 16 lower-case hex digits */
  spanId: string;
  /** trace-flags; bit 0 = sampled */
  flags: number;
  /** the tracestate header, passed on unchanged */
  state?: string;
  /** came from another process (containerd) */
  remote?: boolean;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/** The parent context of a `traceparent` value (and `tracestate`), or undefined when invalid. */
export function parseTraceparent(value: string | undefined, state?: string): SpanContext | undefined {
  if (!value) return undefined;
  const v = value.trim();
  const parts = v.split('-');
  if (parts.length < 4) return undefined;
  const [version, traceId, spanId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff') return undefined;
  // version 00 has exactly four fields; a later version may append more (parse the first four)
  if (version === '00' && parts.length !== 4) return undefined;
  if (!HEX32.test(traceId) || traceId === ZERO32) return undefined;
  if (!HEX16.test(spanId) || spanId === ZERO16) return undefined;
  if (!/^[0-9a-f]{2}$/.test(flags)) return undefined;
  const ctx: SpanContext = { traceId, spanId, flags: parseInt(flags, 16), remote: true };
  if (state !== undefined && state.length > 0 && state.length <= 512) ctx.state = state;
  return ctx;
}

export function formatTraceparent(ctx: SpanContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${(ctx.flags & 0xff).toString(16).padStart(2, '0')}`;
}

export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
export type Attr = string | number | boolean;

const hrBase = process.hrtime.bigint();
const wallBase = BigInt(Date.now()) * 1_000_000n;
/** Nanoseconds since the epoch, monotonic within this process. */
export function nowNanos(): bigint {
  return wallBase + (process.hrtime.bigint() - hrBase);
}

function randomHex(bytes: number): string {
  const b = getRandomValues(new Uint8Array(bytes));
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export class Span {
  readonly context: SpanContext;
  readonly parentSpanId?: string;
  readonly start = nowNanos();
  end?: bigint;
  readonly attributes: Record<string, Attr> = {};
  status: { code: 0 | 1 | 2; message?: string } = { code: 0 };

  constructor(
    private readonly tracer: Tracer,
    readonly name: string,
    readonly kind: number,
    parent: SpanContext | undefined,
    private readonly parentRemote: boolean,
  ) {
    this.context = { traceId: parent?.traceId ?? randomHex(16), spanId: randomHex(8), flags: parent ? parent.flags : 1, ...(parent?.state ? { state: parent.state } : {}) };
    if (parent) this.parentSpanId = parent.spanId;
  }

  setAttribute(key: string, value: Attr | undefined): this {
    if (value !== undefined && value !== '') this.attributes[key] = value;
    return this;
  }

  /** Status ERROR with `message` (OTel: only failures set a status; success stays UNSET). */
  fail(message: string): this {
    this.status = { code: 2, message };
    return this;
  }

  finish(): void {
    if (this.end !== undefined) return;
    this.end = nowNanos();
    this.tracer.enqueue(this);
  }

  /** the OTLP span flags field: trace flags, and whether the parent came from another process */
  get otlpFlags(): number {
    return (this.context.flags & 0xff) | 0x100 | (this.parentRemote ? 0x200 : 0);
  }
}

export interface TracerOptions {
  /** OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces */
  endpoint: string;
  serviceName?: string;
  /** resource attributes (service.version, process.pid, ...) */
  resource?: Record<string, Attr>;
  /** fraction of new traces (no sampled parent from containerd) that are recorded; default 1 */
  sampleRatio?: number;
  maxQueue?: number;
  maxBatch?: number;
  delayMs?: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export const TRACER_DEFAULTS = { maxQueue: 2048, maxBatch: 512, delayMs: 1000, timeoutMs: 10_000 } as const;

export class Tracer {
  private readonly queue: Span[] = [];
  private timer?: NodeJS.Timeout;
  private exporting?: Promise<void>;
  private readonly opts: Required<Omit<TracerOptions, 'headers' | 'resource'>> & Pick<TracerOptions, 'headers' | 'resource'>;
  private readonly url: URL;

  constructor(opts: TracerOptions) {
    this.opts = { serviceName: 'tsshim', sampleRatio: 1, ...TRACER_DEFAULTS, ...opts };
    this.url = new URL(opts.endpoint);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new Error(`tracing endpoint ${opts.endpoint}: only http:// and https:// (OTLP/HTTP) are supported`);
  }

  /**
   * A span, or undefined when not recorded: the parent says "not sampled", or a new trace falls
   * outside the sample ratio. `parent` from containerd (traceparent) or a span of ours.
   */
  startSpan(name: string, kind: number, parent?: SpanContext | Span): Span | undefined {
    const remote = parent !== undefined && !(parent instanceof Span) && parent.remote === true;
    const ctx = parent instanceof Span ? parent.context : parent;
    if (ctx) {
      if ((ctx.flags & 1) === 0) return undefined;
    } else if (this.opts.sampleRatio < 1 && Math.random() >= this.opts.sampleRatio) {
      return undefined;
    }
    return new Span(this, name, kind, ctx, remote);
  }

  /** Called by Span.finish. */
  enqueue(span: Span): void {
    if (this.queue.length >= this.opts.maxQueue) {
      metrics.spansDropped.inc({ reason: 'queue_full' });
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.opts.maxBatch) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.delayMs).unref();
  }

  get pending(): number {
    return this.queue.length;
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.exporting || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    this.exporting = this.export(batch).finally(() => {
      this.exporting = undefined;
      if (this.queue.length >= this.opts.maxBatch) this.kick();
      else if (this.queue.length > 0) this.timer ??= setTimeout(() => this.kick(), this.opts.delayMs).unref();
    });
  }

  private async export(batch: Span[]): Promise<void> {
    const body = encodeExportRequest(batch, { 'service.name': this.opts.serviceName, ...this.opts.resource });
    try {
      await post(this.url, body, this.opts.timeoutMs, this.opts.headers);
      metrics.spansExported.inc(undefined, batch.length);
    } catch {
      metrics.spansDropped.inc({ reason: 'export_failed' }, batch.length);
    }
  }

  /** Export what waits (shim exit), bounded by timeoutMs. */
  async flush(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.queue.length > 0 || this.exporting) && Date.now() < deadline) {
      this.kick();
      await Promise.race([this.exporting ?? Promise.resolve(), new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())).unref())]);
    }
  }
}

async function post(url: URL, body: Uint8Array, timeoutMs: number, headers?: Record<string, string>): Promise<void> {
  const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  await new Promise<void>((resolve, reject) => {
    const req = mod.request(
      url,
      { method: 'POST', timeout: timeoutMs, headers: { ...headers, 'content-type': 'application/x-protobuf', 'content-length': body.byteLength } },
      (res) => {
        res.resume(); // the answer's body (partial success) is not needed
        res.on('end', () => ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`OTLP endpoint answered ${res.statusCode}`))));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`OTLP export timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

// --- OTLP protobuf (opentelemetry/proto/collector/trace/v1/trace_service.proto) ---

function writeAttr(w: BinaryWriter, field: number, key: string, v: Attr): void {
  w.tag(field, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).string(key);
  w.tag(2, WireType.LengthDelimited).fork(); // AnyValue
  if (typeof v === 'string') w.tag(1, WireType.LengthDelimited).string(v);
  else if (typeof v === 'boolean') w.tag(2, WireType.Varint).bool(v);
  else if (Number.isInteger(v)) w.tag(3, WireType.Varint).int64(v);
  else w.tag(4, WireType.Bit64).double(v);
  w.join().join();
}

const hexBytes = (h: string) => Buffer.from(h, 'hex');

/** ExportTraceServiceRequest with one ResourceSpans and one ScopeSpans. */
export function encodeExportRequest(spans: readonly Span[], resource: Record<string, Attr>): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).fork(); // resource_spans
  w.tag(1, WireType.LengthDelimited).fork(); // resource
  for (const [k, v] of Object.entries(resource)) writeAttr(w, 1, k, v);
  w.join();
  w.tag(2, WireType.LengthDelimited).fork(); // scope_spans
  w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string('tsshim').join(); // scope
  for (const s of spans) {
    w.tag(2, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).bytes(hexBytes(s.context.traceId));
    w.tag(2, WireType.LengthDelimited).bytes(hexBytes(s.context.spanId));
    if (s.context.state) w.tag(3, WireType.LengthDelimited).string(s.context.state);
    if (s.parentSpanId) w.tag(4, WireType.LengthDelimited).bytes(hexBytes(s.parentSpanId));
    w.tag(5, WireType.LengthDelimited).string(s.name);
    w.tag(6, WireType.Varint).int32(s.kind);
    w.tag(7, WireType.Bit64).fixed64(s.start);
    w.tag(8, WireType.Bit64).fixed64(s.end ?? s.start);
    for (const [k, v] of Object.entries(s.attributes)) writeAttr(w, 9, k, v);
    if (s.status.code !== 0) {
      w.tag(15, WireType.LengthDelimited).fork();
      if (s.status.message) w.tag(2, WireType.LengthDelimited).string(s.status.message);
      w.tag(3, WireType.Varint).int32(s.status.code);
      w.join();
    }
    w.tag(16, WireType.Bit32).fixed32(s.otlpFlags);
    w.join();
  }
  w.join().join();
  return w.finish();
}

// --- the process's tracer ---

let active: Tracer | undefined;

/** Turn tracing on for this process (main.ts, from the default config). */
export function enableTracing(opts: TracerOptions): Tracer {
  active = new Tracer(opts);
  return active;
}

export function tracer(): Tracer | undefined {
  return active;
}
