/**
 * The composition root: the only place that builds the inversify container and
 * binds concrete services. Everything else takes its dependencies as arguments.
 */
import { Container } from 'inversify';
import type { Logger } from 'pino';
import type { HandlerContext, HandlerResolver, OsServices } from '../shim-api/handler.js';
import type { HandlerDefinition } from '../shim-api/definition.js';
import type { EventPublisher } from '../shim-api/events.js';
import type { Custody } from '../shim-api/custody.js';
import { TtrpcEventPublisher } from '../shim-api/events.js';
import { reaper } from '../sys/reaper.js';
import { mountAll, unmountAll } from '../sys/mount.js';
import { registry } from './registry.js';
import { ConfiguredResolver } from './resolver.js';
import { Context, Definitions, Log, Os, Publisher, Resolver } from './tokens.js';

export interface RootOptions {
  namespace: string;
  log: Logger;
  /** containerd's ttrpc address for events; absent in the `delete` subcommand */
  ttrpcAddress?: string;
  /** containerd's grpc address (-address) and publish binary (-publish-binary) */
  containerdAddress?: string;
  publishBinary?: string;
  debug?: boolean;
  /** the daemon's own socket path */
  socket?: string;
  /** the handler definitions (default: the registry) */
  definitions?: readonly HandlerDefinition[];
  /** where exits come from (default: this process's reaper); node mode's worker merges its supervisor's */
  exits?: OsServices['exits'];
  /** node mode's worker: what outlives it (ADR 0018) */
  custody?: Custody;
  /** node mode's worker: events go through its supervisor (ADR 0018); else containerd's ttrpcAddress */
  publisher?: EventPublisher;
}

const noPublisher: EventPublisher = {
  publish() {},
  async close() {},
};

export function osServices(exits: OsServices['exits'] = reaper): OsServices {
  return {
    run: (file, args, opts) => reaper.run(file, args, opts),
    spawn: (file, args, opts) => reaper.spawnTracked(file, args, opts),
    exits,
    mountAll,
    unmountAll,
  };
}

export function buildContainer(opts: RootOptions): Container {
  const c = new Container();
  c.bind<Logger>(Log).toConstantValue(opts.log);
  c.bind<EventPublisher>(Publisher).toConstantValue(
    opts.publisher ?? (opts.ttrpcAddress ? new TtrpcEventPublisher(opts.ttrpcAddress, opts.namespace, opts.log.child({ component: 'events' })) : noPublisher),
  );
  c.bind<OsServices>(Os).toDynamicValue(() => osServices(opts.exits)).inSingletonScope();
  c.bind<HandlerContext>(Context)
    .toDynamicValue((ctx) => ({
      namespace: opts.namespace,
      shim: {
        containerdAddress: opts.containerdAddress ?? '',
        publishBinary: opts.publishBinary ?? '',
        ttrpcAddress: opts.ttrpcAddress ?? '',
        debug: opts.debug ?? false,
        address: opts.socket ? `unix://${opts.socket}` : '',
      },
      publisher: ctx.get<EventPublisher>(Publisher),
      log: ctx.get<Logger>(Log),
      os: ctx.get<OsServices>(Os),
      ...(opts.custody ? { custody: opts.custody } : {}),
    }))
    .inSingletonScope();
  // The one handler list, bound whole (no multi-binding beside it: ADR 0009).
  c.bind<readonly HandlerDefinition[]>(Definitions).toConstantValue(opts.definitions ?? registry);
  c.bind<HandlerResolver>(Resolver)
    .toDynamicValue((ctx) => new ConfiguredResolver(ctx.get<readonly HandlerDefinition[]>(Definitions), ctx.get<HandlerContext>(Context)))
    .inSingletonScope();
  return c;
}

export interface Composed {
  resolver: HandlerResolver;
  publisher: EventPublisher;
}

export function compose(opts: RootOptions): Composed {
  const c = buildContainer(opts);
  return { resolver: c.get<HandlerResolver>(Resolver), publisher: c.get<EventPublisher>(Publisher) };
}
