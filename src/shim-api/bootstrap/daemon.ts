/**
 * Daemon mode: serve the task API, as child subreaper, until Shutdown finds no container left.
 * By default on the listening socket the classic `start` handed us as fd 3; the launcher's start
 * (ADR 0008) passes its own `listen`.
 */
import type { Logger } from 'pino';
import { Server } from 'ttrpc-ts';
import type { HandlerResolver } from '../handler.js';
import type { EventPublisher } from '../events.js';
import { TaskService } from '../task-service.js';
import type { ShimFlags } from './flags.js';
import { socketIdentity, unlinkOwnSocket, type SocketIdentity } from './address.js';

export interface DaemonDeps {
  resolver: HandlerResolver;
  publisher: EventPublisher;
  log: Logger;
  /** becomes child subreaper and starts reaping; returns a stop function */
  startReaping: () => () => void;
  /** throws unless the peer may talk to us (SO_PEERCRED uid/gid equal ours) */
  authorize: (socket: import('node:net').Socket) => void;
  version: string;
  /**
   * Starts listening once the task service is registered. false: another shim already serves
   * this socket, exit without serving. Default: the inherited listening socket on fd 3.
   */
  listen?: (server: Server) => Promise<boolean>;
  /** Runs once serving (after containerd got its answer): e.g. the metrics endpoint. */
  onServing?: () => Promise<void>;
  /** Runs before the process exits (bounded by the caller): e.g. close the endpoint, flush spans. */
  beforeExit?: () => Promise<void>;
}

export async function serve(flags: ShimFlags, deps: DaemonDeps): Promise<void> {
  const { log } = deps;
  const stopReaping = deps.startReaping();
  const server = new Server({
    authorize: deps.authorize,
    onError: (err, where) => log.warn({ err: String(err), where }, 'ttrpc error'),
  });
  let exiting = false;
  let ownSocket: SocketIdentity | undefined;
  const exit = async (reason: string, code = 0) => {
    if (exiting) return;
    exiting = true;
    log.info({ reason }, 'shim exiting');
    // Unlink first, while still listening: the file is ours only if it is the inode we bound, and
    // our bound socket keeps that inode (and its number) alive until the server closes (ADR 0013).
    if (flags.socket) await unlinkOwnSocket(flags.socket, ownSocket);
    await server.close().catch(() => undefined);
    await service.close();
    await deps.publisher.close(5000);
    await deps.beforeExit?.().catch(() => undefined);
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
  const serving = deps.listen ? await deps.listen(server) : (await server.listen({ fd: 3 }), true);
  if (!serving) {
    stopReaping();
    process.exit(0);
  }
  // Serving: nothing of ours unlinks a socket that answers, so the file at the path is ours now.
  if (flags.socket) ownSocket = await socketIdentity(flags.socket);
  process.on('SIGTERM', () => void exit('SIGTERM'));
  process.on('SIGINT', () => void exit('SIGINT'));
  log.info({ id: flags.id, pid: process.pid, socket: flags.socket, version: deps.version }, 'shim serving');
  await deps.onServing?.().catch((err: unknown) => log.warn({ err: String(err) }, 'after-start step failed'));
}
