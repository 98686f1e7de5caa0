/**
 * Test support (not used by the shim): a local OTLP/HTTP receiver that decodes the binary
 * protobuf ExportTraceServiceRequest (what tsshim and containerd's exporter send), and a scrape
 * of a metrics endpoint over a unix socket or TCP.
 */
import http from 'node:http';
import type net from 'node:net';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  attributes: Record<string, string | number | boolean>;
  status: { code: number; message: string };
  flags: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Calls fn(fieldNo, wireType, reader) for each field of a message of `len` bytes (or to the end). */
function fields(r: BinaryReader, len: number | undefined, fn: (no: number, wt: WireType) => void): void {
  const end = len === undefined ? r.len : r.pos + len;
  while (r.pos < end) {
    const [no, wt] = r.tag();
    const before = r.pos;
    fn(no, wt);
    if (r.pos === before) r.skip(wt);
  }
}

function anyValue(r: BinaryReader, len: number): string | number | boolean {
  let v: string | number | boolean = '';
  fields(r, len, (no) => {
    if (no === 1) v = r.string();
    else if (no === 2) v = r.bool();
    else if (no === 3) v = Number(r.int64());
    else if (no === 4) v = r.double();
  });
  return v;
}

function keyValue(r: BinaryReader, len: number, into: Record<string, string | number | boolean>): void {
  let key = '';
  let value: string | number | boolean = '';
  fields(r, len, (no) => {
    if (no === 1) key = r.string();
    else if (no === 2) value = anyValue(r, r.uint32());
  });
  into[key] = value;
}

/** The spans of one ExportTraceServiceRequest. */
export function decodeExportRequest(body: Uint8Array): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const r = new BinaryReader(body);
  fields(r, undefined, (no) => {
    if (no !== 1) return;
    const rsLen = r.uint32();
    const resource: Record<string, string | number | boolean> = {};
    const spans: ReceivedSpan[] = [];
    fields(r, rsLen, (rno) => {
      if (rno === 1) {
        fields(r, r.uint32(), (n) => {
          if (n === 1) keyValue(r, r.uint32(), resource);
        });
      } else if (rno === 2) {
        fields(r, r.uint32(), (sno) => {
          if (sno !== 2) return;
          const s: ReceivedSpan = { service: '', traceId: '', spanId: '', parentSpanId: '', name: '', kind: 0, start: 0n, end: 0n, attributes: {}, status: { code: 0, message: '' }, flags: 0 };
          fields(r, r.uint32(), (f) => {
            if (f === 1) s.traceId = hex(r.bytes());
            else if (f === 2) s.spanId = hex(r.bytes());
            else if (f === 4) s.parentSpanId = hex(r.bytes());
            else if (f === 5) s.name = r.string();
            else if (f === 6) s.kind = r.int32();
            else if (f === 7) s.start = BigInt(r.fixed64());
            else if (f === 8) s.end = BigInt(r.fixed64());
            else if (f === 9) keyValue(r, r.uint32(), s.attributes);
            else if (f === 15) {
              fields(r, r.uint32(), (st) => {
                if (st === 2) s.status.message = r.string();
                else if (st === 3) s.status.code = r.int32();
              });
            } else if (f === 16) s.flags = r.fixed32();
          });
          spans.push(s);
        });
      }
    });
    for (const s of spans) s.service = String(resource['service.name'] ?? '');
    out.push(...spans);
  });
  return out;
}

export interface Receiver {
  url: string;
  spans: ReceivedSpan[];
  requests: number;
  /** answer this HTTP status instead of 200 (an endpoint that fails) */
  failWith?: number;
  close(): Promise<void>;
}

/** A local OTLP/HTTP traces receiver on 127.0.0.1 (protobuf only; JSON bodies are rejected with 415). */
export async function startReceiver(): Promise<Receiver> {
  const rec: Receiver = { url: '', spans: [], requests: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      rec.requests += 1;
      if (rec.failWith) {
        res.writeHead(rec.failWith).end();
        return;
      }
      if (!String(req.headers['content-type']).startsWith('application/x-protobuf')) {
        res.writeHead(415).end();
        return;
      }
      try {
        rec.spans.push(...decodeExportRequest(Buffer.concat(chunks)));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  rec.url = `http://127.0.0.1:${port}`;
  rec.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return rec;
}

/** GET /metrics from `unix:///path` or `host:port`: status and body. */
export function scrape(address: string, urlPath = '/metrics'): Promise<{ status: number; body: string; contentType: string }> {
  const opts: http.RequestOptions = address.startsWith('unix://')
    ? { socketPath: address.slice('unix://'.length), path: urlPath }
    : { host: address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(address.slice(address.lastIndexOf(':') + 1)), path: urlPath };
  return new Promise((resolve, reject) => {
    const req = http.get({ ...opts, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, contentType: String(res.headers['content-type'] ?? '') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
  });
}

/** The samples of an exposition: `name{labels}` -> value (labels as written, in order). */
export function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Sum of the samples of `name` whose labels include every `want` pair. */
export function sumOf(text: string, name: string, want: Record<string, string> = {}): number {
  let total = 0;
  for (const [k, v] of samples(text)) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n !== name) continue;
    const labels = brace < 0 ? '' : k.slice(brace);
    if (Object.entries(want).every(([lk, lv]) => labels.includes(`${lk}="${lv}"`))) total += v;
  }
  return total;
}
