/**
 * Event publishing to containerd: `containerd.services.events.ttrpc.v1.Events/Forward`
 * on TTRPC_ADDRESS, strictly in queue order over one connection, as runc-v2 does.
 */
import type { Logger } from 'pino';
import { Client } from '../ttrpc/index.js';
import { eventsService, timestampFromDate, SERVICE, type Any } from './pb.js';

export interface EventPublisher {
  /** Queue an event; delivery is ordered and asynchronous. */
  publish(topic: string, event: Any): void;
  /** Wait until the queue is empty (bounded), then close the connection. */
  close(timeoutMs?: number): Promise<void>;
}

const FORWARD_SERVICE = SERVICE.Events;
const FORWARD_TIMEOUT_MS = 5000;
const MAX_ATTEMPTS = 5;

interface Queued {
  topic: string;
  event: Any;
  at: Date;
  attempt: number;
}

export class TtrpcEventPublisher implements EventPublisher {
  private readonly queue: Queued[] = [];
  private client?: Client;
  private running = false;
  private idle: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly address: string,
    private readonly namespace: string,
    private readonly log: Logger,
  ) {}

  publish(topic: string, event: Any): void {
    if (this.closed) {
      this.log.warn({ topic }, 'event dropped: publisher closed');
      return;
    }
    this.queue.push({ topic, event, at: new Date(), attempt: 0 });
    if (!this.running) void this.drain();
  }

  private async connection(): Promise<Client> {
    if (this.client && !this.client.closed) return this.client;
    this.client = await Client.connect(this.address, { connectTimeoutMs: FORWARD_TIMEOUT_MS });
    return this.client;
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0) {
      const item = this.queue[0]!;
      try {
        const client = await this.connection();
        const payload = eventsService.ForwardRequest.encode({
          envelope: {
            timestamp: timestampFromDate(item.at),
            namespace: this.namespace,
            topic: item.topic,
            event: item.event,
          },
        }).finish();
        await client.call(FORWARD_SERVICE, 'Forward', payload, {
          timeoutMs: FORWARD_TIMEOUT_MS,
          metadata: { 'containerd-namespace': this.namespace },
        });
        this.queue.shift();
        this.log.debug({ topic: item.topic }, 'event forwarded');
      } catch (err) {
        this.client?.close();
        this.client = undefined;
        item.attempt++;
        if (item.attempt >= MAX_ATTEMPTS || this.closed) {
          this.queue.shift();
          this.log.error({ topic: item.topic, err: String(err) }, 'event dropped after retries');
        } else {
          this.log.warn({ topic: item.topic, attempt: item.attempt, err: String(err) }, 'event forward failed, retrying');
          await new Promise((r) => setTimeout(r, 200 * item.attempt));
        }
      }
    }
    this.running = false;
    for (const fn of this.idle.splice(0)) fn();
  }

  async close(timeoutMs = 5000): Promise<void> {
    if (this.running || this.queue.length > 0) {
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => setTimeout(r, timeoutMs).unref()),
      ]);
    }
    this.closed = true;
    this.client?.close();
  }
}
