/**
 * The shim's metrics, one set per process (ADR 0025). Always recorded (a Map update per RPC or
 * backend command); exposed only when `[metrics]` is configured (endpoint.ts). Two registries:
 * `registry` (tasks, RPCs, backend commands, OOMs, spans) and `eventRegistry` (event delivery),
 * because in node mode the worker holds the first and the supervisor, which forwards the events
 * (ADR 0018), the second; a pod shim exposes both (exposeShim).
 */
import { Registry } from './metrics.js';

export const registry = new Registry();
export const eventRegistry = new Registry();

export const eventMetrics = {
  eventsPublished: eventRegistry.counter('tsshim_events_published_total', 'Task events containerd accepted, by topic.', ['topic']),
  eventRetries: eventRegistry.counter('tsshim_event_publish_retries_total', 'Event forwards to containerd that failed and were tried again, by topic.', ['topic']),
  eventDrops: eventRegistry.counter(
    'tsshim_event_publish_drops_total',
    'Events given up, by topic and reason (buffer_full, retry_window, closed: published after close, shutdown: still queued at exit).',
    ['topic', 'reason'],
  ),
  eventQueue: eventRegistry.gauge('tsshim_event_queue_depth', 'Events waiting for containerd (queued or being sent).'),
};

/** A pod shim's whole exposition. */
export async function exposeShim(): Promise<string> {
  return (await registry.exposition()) + (await eventRegistry.exposition());
}

export const metrics = {
  /** Refreshed at each scrape by the task services of this process (setTaskCounter). */
  tasks: registry.gauge('tsshim_tasks', 'Tasks served by this process, by handler and state of their init process.', ['handler', 'state']),
  rpcs: registry.counter('tsshim_rpc_requests_total', 'Task API requests answered, by method and ttrpc status code.', ['method', 'code']),
  rpcSeconds: registry.histogram('tsshim_rpc_duration_seconds', 'Time from decoding a task API request to its answer, by method.', ['method']),
  commandSeconds: registry.histogram('tsshim_backend_command_duration_seconds', 'Backend (OCI runtime) command run time, by handler and subcommand.', ['handler', 'command']),
  commandFailures: registry.counter(
    'tsshim_backend_command_failures_total',
    'Backend commands that failed, by handler, subcommand and reason (exit: non-zero status, signal, timeout, spawn: could not be started).',
    ['handler', 'command', 'reason'],
  ),
  ooms: registry.counter('tsshim_oom_events_total', 'OOM kills seen in task cgroups, by handler.', ['handler']),
  spansExported: registry.counter('tsshim_trace_spans_exported_total', 'Spans the OTLP endpoint accepted.'),
  spansDropped: registry.counter('tsshim_trace_spans_dropped_total', 'Spans not exported, by reason (queue_full, export_failed).', ['reason']),
  startTime: registry.gauge('tsshim_process_start_time_seconds', 'Start time of this process (a change means its counters started again from zero).'),
  info: registry.gauge('tsshim_build_info', 'Always 1; labels: the tsshim version, the mode and the role of this process.', ['version', 'mode', 'role']),
};

metrics.startTime.set(undefined, Math.round((Date.now() - process.uptime() * 1000) / 1000));

/** Sources of the task gauge: each task service of this process registers one (node mode: one per namespace). */
const taskSources = new Set<() => Promise<Array<{ handler: string; state: string }>>>();

export function addTaskSource(fn: () => Promise<Array<{ handler: string; state: string }>>): () => void {
  taskSources.add(fn);
  return () => taskSources.delete(fn);
}

registry.onCollect(async () => {
  const all = await Promise.all([...taskSources].map((fn) => fn().catch(() => [])));
  metrics.tasks.reset();
  for (const list of all) for (const t of list) metrics.tasks.inc({ handler: t.handler, state: t.state });
});
