/**
 * Event publishing to containerd (ADR 0012): events are encoded here as
 * `containerd.services.events.ttrpc.v1.Events/Forward` requests and delivered by an
 * EventForwarder (event-forwarder.ts: one connection, retries, per-task order, bounds).
 * In node mode the worker encodes and its supervisor forwards (ADR 0018): an event handed over
 * survives the worker.
 */
import type { Logger } from 'pino';
import { eventsService, timestampFromDate, type Any } from './pb.js';
import { EventForwarder, type PublisherOptions } from './event-forwarder.js';

export { PUBLISHER_DEFAULTS, type PublisherOptions } from './event-forwarder.js';

export interface EventPublisher {
  /** Queue an event of task `task` (its container id); delivery is asynchronous, ordered per task. */
  publish(topic: string, event: Any, task: string): void;
  /** Wait until the queue is empty (bounded), then close the connection. */
  close(timeoutMs?: number): Promise<void>;
}

/** The Forward request containerd expects for one event, stamped `at`. */
export function encodeForward(namespace: string, topic: string, event: Any, at: Date): Uint8Array {
  return eventsService.ForwardRequest.encode({
    envelope: { timestamp: timestampFromDate(at), namespace, topic, event },
  }).finish();
}

export class TtrpcEventPublisher implements EventPublisher {
  private readonly forwarder: EventForwarder;

  constructor(
    address: string,
    private readonly namespace: string,
    log: Logger,
    opts: PublisherOptions = {},
  ) {
    this.forwarder = new EventForwarder(address, namespace, log, opts);
  }

  /** Events queued or being sent. */
  get pending(): number { return this.forwarder.pending; }

  publish(topic: string, event: Any, task: string): void {
    this.forwarder.queue(topic, task, encodeForward(this.namespace, topic, event, new Date()));
  }

  close(timeoutMs?: number): Promise<void> {
    return this.forwarder.close(timeoutMs);
  }
}
