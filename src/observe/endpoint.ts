/**
 * The Prometheus endpoint (ADR 0025): HTTP GET /metrics on a unix socket or a loopback port.
 * Loaded only when `[metrics]` names an address. A failure to listen is logged, never fatal:
 * metrics must not stop a shim from serving containerd.
 */
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { EXPOSITION_CONTENT_TYPE } from './metrics.js';

export type MetricsAddress = { path: string } | { host: string; port: number };

export interface MetricsEndpoint {
  /** `unix:///path` or `host:port` as bound (the port when 0 was asked) */
  readonly address: string;
  close(): Promise<void>;
}

/** A scrape answers within this long or gets 503 (a worker that does not answer). */
export const SCRAPE_TIMEOUT_MS = 5000;

async function answers(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function serveMetrics(where: MetricsAddress, expose: () => Promise<string>): Promise<MetricsEndpoint> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url !== '/metrics' && url !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`metrics not collected within ${SCRAPE_TIMEOUT_MS} ms`)), SCRAPE_TIMEOUT_MS);
    });
    Promise.race([expose(), timeout]).then(
      (text) => {
        clearTimeout(timer);
        res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        clearTimeout(timer);
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.maxConnections = 64;
  if ('path' in where) {
    await fsp.mkdir(path.dirname(where.path), { recursive: true, mode: 0o755 });
    // A socket file nobody answers on is a dead shim's: ours to replace. One that answers is not.
    if (await answers(where.path)) throw new Error(`metrics socket ${where.path} is served by another process`);
    await fsp.rm(where.path, { force: true });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in where) server.listen(where.path, done);
    else server.listen(where.port, where.host, done);
  });
  server.unref(); // never what keeps a shim alive
  let address: string;
  if ('path' in where) {
    await fsp.chmod(where.path, 0o660).catch(() => undefined);
    address = `unix://${where.path}`;
  } else {
    const a = server.address() as net.AddressInfo;
    address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }
  return {
    address,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      if ('path' in where) await fsp.rm(where.path, { force: true });
    },
  };
}
