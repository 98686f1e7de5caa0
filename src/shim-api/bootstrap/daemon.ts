/**
 * Daemon mode: serve the task API on the listening socket `start` handed us as
 * fd 3, as child subreaper, until Shutdown finds no container left.
 */
import fs from 'node:fs';
import type { Logger } from 'pino';
import { Server } from '../../ttrpc/index.js';
import type { HandlerResolver } from '../handler.js';
import type { EventPublisher } from '../events.js';
import { TaskService } from '../task-service.js';
import type { ShimFlags } from './flags.js';

export interface DaemonDeps {
  resolver: HandlerResolver;
  publisher: EventPublisher;
  log: Logger;
  /** becomes child subreaper and starts reaping; returns a stop function */
  startReaping: () => () => void;
  /** throws unless the peer may talk to us (SO_PEERCRED uid/gid equal ours) */
  authorize: (socket: import('node:net').Socket) => void;
  version: string;
}

export async function serve(flags: ShimFlags, deps: DaemonDeps): Promise<void> {
  const { log } = deps;
  const stopReaping = deps.startReaping();
  const server = new Server({
    authorize: deps.authorize,
    onError: (err, where) => log.warn({ err: String(err), where }, 'ttrpc error'),
  });
  let exiting = false;
  const exit = async (reason: string, code = 0) => {
    if (exiting) return;
    exiting = true;
    log.info({ reason }, 'shim exiting');
    await server.close().catch(() => undefined);
    await service.close();
    await deps.publisher.close(5000);
    if (flags.socket) fs.rmSync(flags.socket, { force: true });
    stopReaping();
    process.exit(code);
  };
  const service = new TaskService({
    resolver: deps.resolver,
    log,
    version: '',
    onShutdown: () => void exit('shutdown: no container left'),
  });
  service.register(server);
  await server.listen({ fd: 3 });
  process.on('SIGTERM', () => void exit('SIGTERM'));
  process.on('SIGINT', () => void exit('SIGINT'));
  log.info({ id: flags.id, namespace: flags.namespace, pid: process.pid, socket: flags.socket, version: deps.version }, 'shim serving');
}
