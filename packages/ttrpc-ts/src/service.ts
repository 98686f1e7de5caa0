/**
 * Typed services: a service definition names each method's request and response codecs once;
 * `serveService` registers a typed implementation on a Server and `serviceClient` gives typed
 * stubs over a Client. Codecs are two functions, so any protobuf library fits (see README).
 */
import { Code } from './codes.js';
import { TtrpcError } from './errors.js';
import type { CallOptions, Client } from './client.js';
import type { RequestContext, Server, UnaryHandler } from './server.js';

/** Turns one message type into bytes and back. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export interface MethodDefinition<Req, Res> {
  readonly request: Codec<Req>;
  readonly response: Codec<Res>;
}

type AnyMethod = MethodDefinition<any, any>;
export type MethodMap = Record<string, AnyMethod>;

export interface ServiceDefinition<M extends MethodMap = MethodMap> {
  /** Fully qualified service name as on the wire, e.g. "containerd.task.v2.Task". */
  readonly name: string;
  readonly methods: M;
}

export type RequestOf<D> = D extends MethodDefinition<infer Req, unknown> ? Req : never;
export type ResponseOf<D> = D extends MethodDefinition<unknown, infer Res> ? Res : never;

/** What a server implements: one async function per method. */
export type ServiceImplementation<S extends ServiceDefinition> = {
  [K in keyof S['methods']]: (request: RequestOf<S['methods'][K]>, ctx: RequestContext) => Promise<ResponseOf<S['methods'][K]>>;
};

/** What a client calls: one async function per method. */
export type ServiceClient<S extends ServiceDefinition> = {
  [K in keyof S['methods']]: (request: RequestOf<S['methods'][K]>, opts?: CallOptions) => Promise<ResponseOf<S['methods'][K]>>;
};

/** Define a service: its wire name and a codec pair per method. */
export function defineService<M extends MethodMap>(name: string, methods: M): ServiceDefinition<M> {
  if (!name) throw new TypeError('ttrpc: a service needs a name');
  return { name, methods };
}

/** Payloads as they are: for methods whose bytes the caller encodes itself. */
export const bytesCodec: Codec<Uint8Array> = { encode: (b) => b, decode: (b) => b };

/**
 * Register a typed implementation. A request that does not decode is answered `Internal`
 * ("ttrpc: error unmarshalling payload: ...", as Go ttrpc answers); errors the implementation
 * throws are answered as with Server.register (TtrpcError keeps its code, others are Unknown).
 */
export function serveService<S extends ServiceDefinition>(server: Server, service: S, impl: ServiceImplementation<S>): void {
  const handlers: Record<string, UnaryHandler> = {};
  for (const [method, def] of Object.entries(service.methods)) {
    const fn = (impl as Record<string, (req: unknown, ctx: RequestContext) => Promise<unknown>>)[method];
    if (typeof fn !== 'function') throw new TypeError(`ttrpc: ${service.name}/${method} has no implementation`);
    handlers[method] = async (payload, ctx) => {
      let request: unknown;
      try {
        request = def.request.decode(payload);
      } catch (err) {
        throw new TtrpcError(Code.Internal, `ttrpc: error unmarshalling payload: ${(err as Error).message}`);
      }
      const response = await fn.call(impl, request, ctx);
      try {
        return def.response.encode(response);
      } catch (err) {
        throw new TtrpcError(Code.Internal, `ttrpc: error marshalling response: ${(err as Error).message}`);
      }
    };
  }
  server.register(service.name, handlers);
}

/**
 * Typed stubs over a connection. A response that does not decode rejects with `Internal`
 * ("ttrpc: error unmarshalling response: ...").
 */
export function serviceClient<S extends ServiceDefinition>(client: Client, service: S): ServiceClient<S> {
  const stubs: Record<string, (req: unknown, opts?: CallOptions) => Promise<unknown>> = {};
  for (const [method, def] of Object.entries(service.methods)) {
    stubs[method] = async (request, opts) => {
      let bytes: Uint8Array;
      try {
        bytes = def.request.encode(request);
      } catch (err) {
        throw new TtrpcError(Code.InvalidArgument, `ttrpc: ${service.name}/${method}: cannot encode request: ${(err as Error).message}`);
      }
      const payload = await client.call(service.name, method, bytes, opts);
      try {
        return def.response.decode(payload);
      } catch (err) {
        throw new TtrpcError(Code.Internal, `ttrpc: ${service.name}/${method}: error unmarshalling response: ${(err as Error).message}`);
      }
    };
  }
  return stubs as ServiceClient<S>;
}
