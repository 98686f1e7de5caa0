// Small typed client for containerd's gRPC API (unix socket), on @grpc/grpc-js and the ts-proto
// generated code in ./proto. Every call carries the `containerd-namespace` metadata.
//
//   const cd = await connectContainerd('/run/x/containerd.sock', 'default');
//   const { version } = await cd.version.version({});
//   const { namespaces } = await cd.namespaces.list({});
//   for await (const env of cd.events.subscribe({ filters: ['topic~="/tasks/"'] })) { ... }
//   cd.close();
//
// The promise clients (`tasks`, `containers`, ...) take a DeepPartial request (missing fields get
// proto3 defaults) and resolve with the decoded response; server-streaming methods return the
// grpc-js ClientReadableStream (async-iterable). Errors reject with grpc-js ServiceError
// (`code` is the gRPC status code, `details` the message). The generated grpc-js clients are
// available under `raw`, sharing the same channel and namespace metadata.

import * as grpc from '@grpc/grpc-js';
import { TasksClient, TasksDefinition } from '../proto/containerd/services/tasks/v1/tasks.js';
import { ContainersClient, ContainersDefinition } from '../proto/containerd/services/containers/v1/containers.js';
import { EventsClient, EventsDefinition } from '../proto/containerd/services/events/v1/events.js';
import { VersionClient, VersionDefinition } from '../proto/containerd/services/version/v1/version.js';
import { NamespacesClient, NamespacesDefinition } from '../proto/containerd/services/namespaces/v1/namespace.js';
import { ImagesClient, ImagesDefinition } from '../proto/containerd/services/images/v1/images.js';
import { SnapshotsClient, SnapshotsDefinition } from '../proto/containerd/services/snapshots/v1/snapshots.js';

export * as tasksV1 from '../proto/containerd/services/tasks/v1/tasks.js';
export * as containersV1 from '../proto/containerd/services/containers/v1/containers.js';
export * as eventsV1 from '../proto/containerd/services/events/v1/events.js';
export * as versionV1 from '../proto/containerd/services/version/v1/version.js';
export * as namespacesV1 from '../proto/containerd/services/namespaces/v1/namespace.js';
export * as imagesV1 from '../proto/containerd/services/images/v1/images.js';
export * as snapshotsV1 from '../proto/containerd/services/snapshots/v1/snapshots.js';
export { Any } from '../proto/google/protobuf/any.js';
export { Timestamp } from '../proto/google/protobuf/timestamp.js';
export { Mount } from '../proto/containerd/types/mount.js';
export { Status } from '../proto/containerd/types/task.js';

/** gRPC metadata key containerd reads the namespace from. */
export const NAMESPACE_METADATA_KEY = 'containerd-namespace';

/** containerd's server-side message size limit (16 MiB); the grpc-js default receive limit is 4 MiB. */
const MAX_MESSAGE_BYTES = 16 << 20;

/** Per-call options. */
export interface CallOpts {
  /** Absolute deadline. */
  deadline?: grpc.Deadline;
  /** Relative deadline in milliseconds (ignored when `deadline` is given). */
  timeoutMs?: number;
  /** Namespace for this call instead of the client's. */
  namespace?: string;
  /** Extra metadata (copied; the namespace key is added unless already present). */
  metadata?: grpc.Metadata;
}

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromPartial(object: unknown): T;
}

interface MethodDef {
  readonly name: string;
  readonly requestType: Codec<any>;
  readonly responseType: Codec<any>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

interface ServiceDef {
  readonly fullName: string;
  readonly methods: { readonly [key: string]: MethodDef };
}

type RequestArg<M> = M extends { requestType: { fromPartial(object: infer P): unknown } } ? P : never;
type ResponseOf<M> = M extends { responseType: { decode(input: any, length?: number): infer R } } ? R : never;

/** Promise-returning view of a generated service definition (client-streaming methods omitted). */
export type PromiseClient<D extends ServiceDef> = {
  readonly [K in keyof D['methods'] as D['methods'][K]['requestStream'] extends false ? K : never]: D['methods'][K]['responseStream'] extends true
    ? (request: RequestArg<D['methods'][K]>, opts?: CallOpts) => grpc.ClientReadableStream<ResponseOf<D['methods'][K]>>
    : (request: RequestArg<D['methods'][K]>, opts?: CallOpts) => Promise<ResponseOf<D['methods'][K]>>;
};

export interface ContainerdClient {
  /** The socket path or grpc-js target that was given to connectContainerd. */
  readonly address: string;
  /** Default namespace sent with every call. */
  readonly namespace: string;
  readonly tasks: PromiseClient<typeof TasksDefinition>;
  readonly containers: PromiseClient<typeof ContainersDefinition>;
  readonly events: PromiseClient<typeof EventsDefinition>;
  readonly version: PromiseClient<typeof VersionDefinition>;
  readonly namespaces: PromiseClient<typeof NamespacesDefinition>;
  readonly images: PromiseClient<typeof ImagesDefinition>;
  readonly snapshots: PromiseClient<typeof SnapshotsDefinition>;
  /** The generated grpc-js clients (callback style), same channel and namespace metadata. */
  readonly raw: {
    readonly tasks: TasksClient;
    readonly containers: ContainersClient;
    readonly events: EventsClient;
    readonly version: VersionClient;
    readonly namespaces: NamespacesClient;
    readonly images: ImagesClient;
    readonly snapshots: SnapshotsClient;
  };
  /** Closes the shared channel; pending calls fail with CANCELLED/UNAVAILABLE. */
  close(): void;
}

export interface ConnectOptions {
  /** How long to wait for the socket to accept a connection (default 10000 ms). */
  connectTimeoutMs?: number;
}

/** grpc-js target for a socket path (`/a/b.sock` -> `unix:///a/b.sock`); targets with a scheme pass through. */
export function grpcTarget(address: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(address)) return address;
  return address.startsWith('/') ? `unix://${address}` : `unix:${address}`;
}

function namespaceInterceptor(namespace: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get(NAMESPACE_METADATA_KEY).length === 0) metadata.set(NAMESPACE_METADATA_KEY, namespace);
        next(metadata, listener);
      },
    });
}

function callMetadata(opts: CallOpts | undefined): grpc.Metadata {
  const md = opts?.metadata ? opts.metadata.clone() : new grpc.Metadata();
  if (opts?.namespace !== undefined) md.set(NAMESPACE_METADATA_KEY, opts.namespace);
  return md;
}

function callOptions(opts: CallOpts | undefined): grpc.CallOptions {
  if (opts?.deadline !== undefined) return { deadline: opts.deadline };
  if (opts?.timeoutMs !== undefined) return { deadline: Date.now() + opts.timeoutMs };
  return {};
}

/** Builds a PromiseClient for `def` on top of a plain grpc-js Client. */
export function promiseClient<D extends ServiceDef>(client: grpc.Client, def: D): PromiseClient<D> {
  const out: Record<string, unknown> = {};
  for (const [key, m] of Object.entries(def.methods)) {
    if (m.requestStream) continue;
    const path = `/${def.fullName}/${m.name}`;
    const serialize = (value: unknown): Buffer => Buffer.from(m.requestType.encode(value).finish());
    const deserialize = (bytes: Buffer): unknown => m.responseType.decode(bytes);
    if (m.responseStream) {
      out[key] = (request: unknown, opts?: CallOpts) =>
        client.makeServerStreamRequest(path, serialize, deserialize, m.requestType.fromPartial(request), callMetadata(opts), callOptions(opts));
    } else {
      out[key] = (request: unknown, opts?: CallOpts) =>
        new Promise((resolve, reject) => {
          const full = m.requestType.fromPartial(request);
          client.makeUnaryRequest(path, serialize, deserialize, full, callMetadata(opts), callOptions(opts), (err, res) => {
            if (err) reject(err);
            else resolve(res);
          });
        });
    }
  }
  return out as PromiseClient<D>;
}

/**
 * Promise wrapper for one unary method of a generated grpc-js client:
 * `await unary(cd.raw.version, cd.raw.version.version)({})`.
 */
export function unary<C extends grpc.Client, Req, Res>(
  client: C,
  method: (
    this: C,
    request: Req,
    metadata: grpc.Metadata,
    options: Partial<grpc.CallOptions>,
    callback: (error: grpc.ServiceError | null, response: Res) => void,
  ) => grpc.ClientUnaryCall,
): (request: Req, opts?: CallOpts) => Promise<Res> {
  return (request, opts) =>
    new Promise<Res>((resolve, reject) => {
      method.call(client, request, callMetadata(opts), callOptions(opts), (err, res) => {
        if (err) reject(err);
        else resolve(res);
      });
    });
}

/** One grpc-js client on its own channel (16 MiB messages both ways), connected within the timeout. */
export async function dialGrpc(
  address: string,
  who: string,
  options: ConnectOptions,
  interceptors: grpc.Interceptor[] = [],
): Promise<{ base: grpc.Client; channel: grpc.Channel; target: string; creds: grpc.ChannelCredentials; clientOpts: Partial<grpc.ClientOptions> }> {
  const target = grpcTarget(address);
  const creds = grpc.credentials.createInsecure();
  const channel = new grpc.Channel(target, creds, {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  const clientOpts: Partial<grpc.ClientOptions> = { channelOverride: channel, interceptors };
  const base = new grpc.Client(target, creds, clientOpts);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      base.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
    });
  } catch (err) {
    channel.close();
    throw new Error(`${who}: cannot reach ${address} within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
  }
  return { base, channel, target, creds, clientOpts };
}

/**
 * Connects to containerd's gRPC socket (`address` is a socket path or a grpc-js target) and waits
 * until the connection is up. All calls carry `containerd-namespace: <namespace>` unless a call
 * overrides it.
 */
export async function connectContainerd(
  address: string,
  namespace: string,
  options: ConnectOptions = {},
): Promise<ContainerdClient> {
  const { base, channel, target, creds, clientOpts } = await dialGrpc(address, 'connectContainerd', options, [namespaceInterceptor(namespace)]);
  return {
    address,
    namespace,
    tasks: promiseClient(base, TasksDefinition),
    containers: promiseClient(base, ContainersDefinition),
    events: promiseClient(base, EventsDefinition),
    version: promiseClient(base, VersionDefinition),
    namespaces: promiseClient(base, NamespacesDefinition),
    images: promiseClient(base, ImagesDefinition),
    snapshots: promiseClient(base, SnapshotsDefinition),
    raw: {
      tasks: new TasksClient(target, creds, clientOpts),
      containers: new ContainersClient(target, creds, clientOpts),
      events: new EventsClient(target, creds, clientOpts),
      version: new VersionClient(target, creds, clientOpts),
      namespaces: new NamespacesClient(target, creds, clientOpts),
      images: new ImagesClient(target, creds, clientOpts),
      snapshots: new SnapshotsClient(target, creds, clientOpts),
    },
    close() {
      channel.close();
    },
  };
}
