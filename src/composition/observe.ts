/**
 * Observability set-up of a long-lived shim process (ADR 0025): the default config's [log],
 * [metrics] and [tracing], containerd's log format, the tracer and the metrics endpoint.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { defaultConfig, parseMetricsAddress, tracingFromEnv, type ObserveConfig } from './config.js';
import type { LogFormat } from '../log.js';
import { containerdLogFormat } from '../observe/containerd-format.js';
import { enableTracing, tracer } from '../observe/tracing.js';
import { exposeShim, metrics } from '../observe/shim-metrics.js';
import { RUNTIME_TYPE } from '../shim-api/runtime-type.js';

export interface ObserveSetup {
  config: ObserveConfig;
  logFormat: LogFormat;
  /** the default config could not be read: said once the logger exists */
  problem?: string;
}

/** The default config's observability settings and the log format to use (containerd's, for `auto`). */
export async function observeSetup(containerdPid: number | undefined, env = process.env): Promise<ObserveSetup> {
  let config: ObserveConfig = { logFormat: 'auto' };
  let problem: string | undefined;
  try {
    config = (await defaultConfig(env)).observe;
  } catch (err) {
    problem = (err as Error).message;
  }
  // Node mode's worker: its supervisor resolved the format (it knows containerd's pid).
  const told = env.TSSHIM_LOG_FORMAT;
  let logFormat: LogFormat;
  if (config.logFormat !== 'auto') logFormat = config.logFormat;
  else if (told === 'json' || told === 'logfmt') logFormat = told;
  else logFormat = await containerdLogFormat(containerdPid);
  return { config, logFormat, ...(problem ? { problem } : {}) };
}

/** Tracing from [tracing] or, when the config names no endpoint, the OTEL_EXPORTER_OTLP_* variables containerd passes on. */
export function startTracing(cfg: ObserveConfig, log: Logger, resource: Record<string, string | number>, env = process.env): void {
  const t = cfg.tracing ?? tracingFromEnv(env);
  if (!t) return;
  try {
    enableTracing({ endpoint: t.endpoint, serviceName: t.serviceName, sampleRatio: t.sampleRatio, resource: { 'service.version': String(resource['service.version'] ?? ''), 'process.pid': process.pid, ...resource } });
    log.debug({ endpoint: t.endpoint, fromEnv: cfg.tracing === undefined }, 'tracing on');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'tracing not started');
  }
}

/** Spans still queued, exported before the process exits (bounded). */
export async function flushTracing(timeoutMs = 2000): Promise<void> {
  await tracer()?.flush(timeoutMs);
}

export function recordBuildInfo(version: string, mode: string, role: string): void {
  metrics.info.set({ version, mode, role }, 1);
}

/** Pod mode: `<pod_dir>/<the shim socket's file name>.sock`, found from the bundle's `address` file. */
export function podMetricsSocket(podDir: string, shimSocket: string): string {
  return path.join(podDir, `${path.basename(shimSocket)}.sock`);
}

/** Serve this process's registry (pod mode) or the given exposition (node mode's supervisor); never throws. */
export async function startMetricsEndpoint(address: string, log: Logger, expose: () => Promise<string> = exposeShim): Promise<{ close(): Promise<void> } | undefined> {
  try {
    const { serveMetrics } = await import('../observe/endpoint.js');
    const ep = await serveMetrics(parseMetricsAddress(address), expose);
    log.info({ metrics: ep.address, runtime: RUNTIME_TYPE }, 'metrics endpoint serving');
    return ep;
  } catch (err) {
    log.error({ err: (err as Error).message, metrics: address }, 'metrics endpoint not started (the shim serves without it)');
    return undefined;
  }
}
