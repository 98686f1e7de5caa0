// Hand-written entry point to the generated protobuf code in src/proto (scripts/gen-proto.sh, ts-proto).
// Messages are plain interfaces plus a same-named codec object (encode/decode/fromPartial/create/...).
// 64-bit fields are `number`, except the cgroups metrics (`bigint`: their counters exceed 2^53).

import { Any } from '../proto/google/protobuf/any.js';
import type { MessageFns } from '../proto/google/protobuf/any.js';
import { Timestamp } from '../proto/google/protobuf/timestamp.js';

/** containerd.task.v2: the Task service (TaskDefinition) and its requests/responses. */
export * as task from '../proto/containerd/task/v2/shim.js';
/** containerd.v1.types: Status, Process, ProcessInfo. */
export * as taskTypes from '../proto/containerd/types/task.js';
/** containerd.types: Mount. */
export * as mountTypes from '../proto/containerd/types/mount.js';
/** containerd.types: Metric. */
export * as metricTypes from '../proto/containerd/types/metrics.js';
/** containerd.events: TaskCreate, TaskStart, TaskExit, TaskDelete, TaskOOM, TaskExec*, TaskPaused, ... */
export * as events from '../proto/containerd/events/task.js';
/** containerd.services.events.ttrpc.v1: Events.Forward (EventsDefinition), ForwardRequest, Envelope. */
export * as eventsService from '../proto/containerd/services/ttrpc/events/v1/events.js';
/** containerd.runc.v1: Options, CheckpointOptions, ProcessDetails. */
export * as runcOptions from '../proto/containerd/runc/options/oci.js';
/** runtimeoptions.v1: Options {typeUrl, configPath, configBody}. */
export * as runtimeOptions from '../proto/runtimeoptions/v1/api.js';
/** containerd.types: RuntimeInfo, RuntimeVersion (the `-info` answer, containerd 2.x). */
export * as introspection from '../proto/containerd/types/introspection.js';
/** containerd.runtime.bootstrap.v1: BootstrapParams (start's stdin from containerd >= 2.3) and BootstrapResult (its answer). */
export * as bootstrap from '../proto/containerd/runtime/bootstrap/v1/bootstrap.js';
/** io.containerd.cgroups.v1: Metrics (bigint counters). */
export * as cgroupsV1 from '../proto/cgroups/v1/metrics.js';
/** io.containerd.cgroups.v2: Metrics (bigint counters). */
export * as cgroupsV2 from '../proto/cgroups/v2/metrics.js';

export { Any } from '../proto/google/protobuf/any.js';
export type { MessageFns, DeepPartial } from '../proto/google/protobuf/any.js';
export { Empty } from '../proto/google/protobuf/empty.js';
export { Timestamp } from '../proto/google/protobuf/timestamp.js';
export { Mount } from '../proto/containerd/types/mount.js';
export { Status, ProcessInfo } from '../proto/containerd/types/task.js';
export { TaskDefinition } from '../proto/containerd/task/v2/shim.js';
export { EventsDefinition } from '../proto/containerd/services/ttrpc/events/v1/events.js';

/** Full service names as they appear in ttrpc method paths (`/<service>/<Method>`). */
export const SERVICE = {
  Task: 'containerd.task.v2.Task',
  /** containerd 2.x: the same messages under another name; a shim announcing version 3 serves only this. */
  TaskV3: 'containerd.task.v3.Task',
  Events: 'containerd.services.events.ttrpc.v1.Events',
} as const;

/**
 * google.protobuf.Any type URLs used by containerd. Protobuf types use the bare full message name
 * (no `type.googleapis.com/` prefix); OCI types are JSON under `types.containerd.io/...`.
 */
export const TYPE_URL = {
  TaskCreate: 'containerd.events.TaskCreate',
  TaskStart: 'containerd.events.TaskStart',
  TaskDelete: 'containerd.events.TaskDelete',
  TaskIO: 'containerd.events.TaskIO',
  TaskExit: 'containerd.events.TaskExit',
  TaskOOM: 'containerd.events.TaskOOM',
  TaskExecAdded: 'containerd.events.TaskExecAdded',
  TaskExecStarted: 'containerd.events.TaskExecStarted',
  TaskPaused: 'containerd.events.TaskPaused',
  TaskResumed: 'containerd.events.TaskResumed',
  TaskCheckpointed: 'containerd.events.TaskCheckpointed',
  RuncOptions: 'containerd.runc.v1.Options',
  RuncCheckpointOptions: 'containerd.runc.v1.CheckpointOptions',
  RuncProcessDetails: 'containerd.runc.v1.ProcessDetails',
  RuntimeOptions: 'runtimeoptions.v1.Options',
  CgroupsV1Metrics: 'io.containerd.cgroups.v1.Metrics',
  CgroupsV2Metrics: 'io.containerd.cgroups.v2.Metrics',
  OciSpec: 'types.containerd.io/opencontainers/runtime-spec/1/Spec',
  OciProcess: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
  OciLinuxResources: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources',
  /** An OCI runtime's `features` document (JSON), in RuntimeInfo.features. */
  OciFeatures: 'types.containerd.io/opencontainers/runtime-spec/1/features/Features',
} as const;

export type TypeUrl = (typeof TYPE_URL)[keyof typeof TYPE_URL];

/** An Any holding already-encoded bytes. */
export function anyOf(typeUrl: string, value: Uint8Array): Any {
  return { typeUrl, value };
}

/** Encodes `message` with `codec` and wraps it in an Any with `typeUrl`. */
export function packAny<T>(typeUrl: string, codec: MessageFns<T>, message: T): Any {
  return { typeUrl, value: codec.encode(message).finish() };
}

/** Decodes an Any's value with `codec` if its type URL is `typeUrl`; undefined otherwise (or when `any` is undefined). */
export function unpackAny<T>(any: Any | undefined, typeUrl: string, codec: MessageFns<T>): T | undefined {
  if (any === undefined || any.typeUrl !== typeUrl) return undefined;
  return codec.decode(any.value);
}

/** Go's zero time.Time (0001-01-01T00:00:00Z): what containerd 1.6 sends for "not set" (e.g. exited_at of a running process). */
export const ZERO_TIME: Readonly<Timestamp> = Object.freeze({ seconds: -62135596800, nanos: 0 });

/** Timestamp for a Date (millisecond precision; correct for dates before 1970 too). */
export function timestampFromDate(d: Date): Timestamp {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('timestampFromDate: invalid Date');
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** Date for a Timestamp (nanoseconds truncated to milliseconds). */
export function dateFromTimestamp(ts: Timestamp): Date {
  return new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1_000_000));
}

/** True when a Timestamp means "not set": absent, or Go's zero time. */
export function isZeroTime(ts: Timestamp | undefined): boolean {
  return ts === undefined || (ts.seconds === ZERO_TIME.seconds && ts.nanos === 0);
}
