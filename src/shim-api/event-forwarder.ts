/**
 * Delivery of encoded events to containerd: `containerd.services.events.ttrpc.v1.Events/Forward`
 * on TTRPC_ADDRESS over one shared connection (ADR 0012). It knows the wire call and the retry
 * policy, not the messages: events.ts encodes them (so node mode's supervisor, which forwards what
 * its worker encoded, loads no protobuf code).
 *
 * - Retries with backoff while containerd is away (restart, overload): each event is retried
 *   until `retryWindowMs` (default 30 s) has passed since its first attempt. runc-v2
 *   (pkg/shim/publisher.go) retries 5 times 1, 2, 3, 4, 5 s apart (last attempt about 15 s after
 *   the first, eviction at about 21 s); ours starts faster (250 ms, doubling to 2 s) and lasts longer.
 * - Order per task: events are queued in one lane per task id (the container id the caller names); a lane sends one event at a time, so a later event of a task
 *   never overtakes an earlier one. Lanes of different tasks do not wait for each other.
 * - Bounded: at most `maxBuffered` events (default 4096, twice runc-v2's requeue channel) wait
 *   across all lanes; past that, or past the retry window, the event is dropped with an error log
 *   naming its topic and task id.
 */
import type { Logger } from 'pino';
import { Client } from 'ttrpc-ts';
import { eventMetrics as metrics } from '../observe/shim-metrics.js';

export interface PublisherOptions {
  /** Keep retrying an event until this long after its first attempt (default 30 s). */
  retryWindowMs?: number;
  /** Events waiting across all tasks before new ones are dropped (default 4096). */
  maxBuffered?: number;
  /** Timeout of one Forward call and of one connect (default 5 s, as runc-v2). */
  forwardTimeoutMs?: number;
  /** First retry delay (default 250 ms); doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  /** Largest retry delay (default 2 s). */
  maxBackoffMs?: number;
}

export const PUBLISHER_DEFAULTS: Required<PublisherOptions> = {
  retryWindowMs: 30_000,
  maxBuffered: 4096,
  forwardTimeoutMs: 5000,
  initialBackoffMs: 250,
  maxBackoffMs: 2000,
};

/** containerd's events service on its ttrpc socket (pb.ts SERVICE.Events). */
export const FORWARD_SERVICE = 'containerd.services.events.ttrpc.v1.Events';

interface Queued {
  topic: string;
  /** an encoded ForwardRequest */
  payload: Uint8Array;
  task: string;
  attempts: number;
  firstAttempt: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class EventForwarder {
  private readonly lanes = new Map<string, Queued[]>();
  private buffered = 0;
  private client?: Client;
  private connecting?: Promise<Client>;
  private idle: Array<() => void> = [];
  private closed = false;
  private readonly opts: Required<PublisherOptions>;

  constructor(
    private readonly address: string,
    private readonly namespace: string,
    private readonly log: Logger,
    opts: PublisherOptions = {},
  ) {
    this.opts = { ...PUBLISHER_DEFAULTS, ...opts };
  }

  /** Events queued or being sent. */
  get pending(): number { return this.buffered; }

  /** Queue an encoded ForwardRequest of task `task`; delivery is asynchronous, ordered per task. */
  queue(topic: string, task: string, payload: Uint8Array): void {
    if (this.closed) {
      metrics.eventDrops.inc({ topic, reason: 'closed' });
      this.log.error({ topic, task }, 'event dropped: publisher closed');
      return;
    }
    if (this.buffered >= this.opts.maxBuffered) {
      metrics.eventDrops.inc({ topic, reason: 'buffer_full' });
      this.log.error({ topic, task, buffered: this.buffered }, `event dropped: ${this.buffered} events already wait for containerd (limit ${this.opts.maxBuffered})`);
      return;
    }
    const item: Queued = { topic, payload, task, attempts: 0, firstAttempt: 0 };
    this.buffered++;
    metrics.eventQueue.inc();
    const lane = this.lanes.get(task);
    if (lane) { lane.push(item); return; }
    this.lanes.set(task, [item]);
    void this.runLane(task);
  }

  private connection(): Promise<Client> {
    if (this.client && !this.client.closed) return Promise.resolve(this.client);
    this.connecting ??= Client.connect(this.address, { connectTimeoutMs: this.opts.forwardTimeoutMs }).then(
      (c) => { this.connecting = undefined; this.client = c; return c; },
      (err: unknown) => { this.connecting = undefined; throw err; },
    );
    return this.connecting;
  }

  private async forward(item: Queued): Promise<void> {
    const client = await this.connection();
    try {
      await client.call(FORWARD_SERVICE, 'Forward', item.payload, {
        timeoutMs: this.opts.forwardTimeoutMs,
        metadata: { 'containerd-namespace': this.namespace },
      });
    } catch (err) {
      // A timeout may mean a wedged connection: start afresh on the next attempt.
      if (this.client === client) { client.close(); this.client = undefined; }
      throw err;
    }
  }

  /** Sends one task's events in order, each retried until the window closes. */
  private async runLane(task: string): Promise<void> {
    const lane = this.lanes.get(task)!;
    while (lane.length > 0) {
      const item = lane[0]!;
      let backoff = this.opts.initialBackoffMs;
      for (;;) {
        if (this.abandoned) return;
        const now = Date.now();
        if (item.attempts === 0) item.firstAttempt = now;
        item.attempts++;
        try {
          await this.forward(item);
          metrics.eventsPublished.inc({ topic: item.topic });
          if (item.attempts > 1) this.log.info({ topic: item.topic, task, attempts: item.attempts, afterMs: Date.now() - item.firstAttempt }, 'event forwarded after retries');
          else this.log.debug({ topic: item.topic, task }, 'event forwarded');
          break;
        } catch (err) {
          const elapsed = Date.now() - item.firstAttempt;
          if (this.abandoned) return;
          if (elapsed + backoff > this.opts.retryWindowMs) {
            metrics.eventDrops.inc({ topic: item.topic, reason: 'retry_window' });
            this.log.error({ topic: item.topic, task, attempts: item.attempts, elapsedMs: elapsed, err: String(err) },
              `event dropped: ${item.topic} of task ${JSON.stringify(task)} not accepted by containerd after ${item.attempts} attempts in ${elapsed} ms`);
            break;
          }
          if (item.attempts === 1) this.log.warn({ topic: item.topic, task, err: String(err) }, 'event forward failed, retrying');
          else this.log.debug({ topic: item.topic, task, attempt: item.attempts, err: String(err) }, 'event forward failed, retrying');
          metrics.eventRetries.inc({ topic: item.topic });
          await sleep(backoff);
          backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
        }
      }
      lane.shift();
      this.buffered--;
      metrics.eventQueue.inc(undefined, -1);
    }
    this.lanes.delete(task);
    if (this.lanes.size === 0) for (const fn of this.idle.splice(0)) fn();
  }

  /** Set when close() gave up waiting: lanes stop at their next step. */
  private abandoned = false;

  async close(timeoutMs = 5000): Promise<void> {
    this.closed = true;
    if (this.lanes.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); timer.unref(); }),
      ]);
      clearTimeout(timer);
      this.abandoned = true;
      for (const [task, lane] of this.lanes) {
        for (const item of lane) {
          metrics.eventDrops.inc({ topic: item.topic, reason: 'shutdown' });
          this.log.error({ topic: item.topic, task, attempts: item.attempts },
            `event dropped: ${item.topic} of task ${JSON.stringify(task)} still undelivered when the shim shut down`);
        }
      }
    }
    this.client?.close();
  }
}
