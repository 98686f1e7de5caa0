/**
 * containerd-shim-tsshim-v2 entry point. Each subcommand imports only what it
 * needs: containerd runs `start` and `delete` once per task, so their start-up
 * time is on every container's critical path.
 */
import { parseFlags, FlagError, type ShimFlags } from './shim-api/bootstrap/flags.js';
import { version } from './version.js';

const SHIM = 'containerd-shim-tsshim-v2';

async function main(argv: string[]): Promise<number> {
  let flags: ShimFlags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`${err.message}\nusage: ${SHIM} -namespace NS -id ID -address ADDR [-debug] start|delete\n`);
      return 2;
    }
    throw err;
  }
  if (flags.version) {
    process.stdout.write(`${SHIM}:\n  Version:  ${version()}\n  Runtime:  Node.js ${process.version}\n`);
    return 0;
  }
  if (flags.info) {
    const { runtimeInfo } = await import('./shim-api/bootstrap/info.js');
    process.stdout.write(await runtimeInfo());
    return 0;
  }
  switch (flags.command) {
    case 'start': {
      const { start } = await import('./shim-api/bootstrap/start.js');
      const r = await start(flags, process.argv[1]!);
      process.stdout.write(r.address);
      return 0;
    }
    case 'delete': {
      const { fastDelete } = await import('./shim-api/bootstrap/delete.js');
      const answered = fastDelete(flags);
      if (answered) {
        process.stdout.write(answered);
        return 0;
      }
      const { createLogger } = await import('./log.js');
      const { compose } = await import('./composition/root.js');
      const { runDelete } = await import('./shim-api/bootstrap/delete.js');
      const log = createLogger({ level: flags.debug ? 'debug' : 'warn', base: { id: flags.id, namespace: flags.namespace, cmd: 'delete' } });
      const { resolver } = compose({ namespace: flags.namespace, log, containerdAddress: flags.address, publishBinary: flags.publishBinary, debug: flags.debug });
      const bytes = await runDelete(flags, resolver);
      process.stdout.write(bytes);
      return 0;
    }
    case 'daemon': {
      const { createLogger } = await import('./log.js');
      const { compose } = await import('./composition/root.js');
      const { serve } = await import('./shim-api/bootstrap/daemon.js');
      const { reaper } = await import('./sys/reaper.js');
      const { peerCredentials } = await import('./sys/libc.js');
      const log = createLogger({ level: flags.debug || process.env.TSSHIM_DEBUG === '1' ? 'debug' : 'info', base: { runtime: 'io.containerd.tsshim.v2', namespace: flags.namespace } });
      process.on('uncaughtException', (err) => log.error({ err: err.stack ?? String(err) }, 'uncaught exception (shim keeps serving)'));
      process.on('unhandledRejection', (err) => log.error({ err: err instanceof Error ? err.stack : String(err) }, 'unhandled rejection (shim keeps serving)'));
      const { resolver, publisher } = compose({
        namespace: flags.namespace,
        log,
        ttrpcAddress: process.env.TTRPC_ADDRESS,
        containerdAddress: flags.address,
        publishBinary: flags.publishBinary,
        debug: flags.debug,
        socket: flags.socket,
      });
      const uid = process.geteuid?.() ?? 0;
      const gid = process.getegid?.() ?? 0;
      await serve(flags, {
        resolver,
        publisher,
        log,
        version: version(),
        startReaping: () => {
          reaper.start();
          return () => reaper.stop();
        },
        authorize: (socket) => {
          const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
          if (fd === undefined || fd < 0) throw new Error('cannot read peer credentials');
          const cred = peerCredentials(fd);
          if (cred.uid !== uid || cred.gid !== gid) throw new Error(`ttrpc: peer uid/gid ${cred.uid}/${cred.gid} refused`);
        },
      });
      return -1; // keep running
    }
    case '':
      process.stderr.write(`usage: ${SHIM} -namespace NS -id ID -address ADDR start|delete\n`);
      return 2;
    default:
      process.stderr.write(`${SHIM}: unknown command "${flags.command}"\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`${SHIM}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
