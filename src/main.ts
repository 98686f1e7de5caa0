/**
 * containerd-shim-tsshim-v2 entry point. Each subcommand imports only what it
 * needs: containerd runs `start` and `delete` once per task, so their start-up
 * time is on every container's critical path.
 */
import { parseFlags, FlagError, type ShimFlags } from './shim-api/bootstrap/flags.js';
import { version } from './version.js';
import type { Server } from 'ttrpc-ts';
import { RUNTIME_TYPE, SHIM_BINARY as SHIM } from './shim-api/runtime-type.js';

/** Run by bin/containerd-shim-tsshim-v2 for `start`: answer on fd 3 (ADR 0008, 0013). Not inherited by the daemon. */
const launcherMode = process.env.TSSHIM_LAUNCHER === '1';
delete process.env.TSSHIM_LAUNCHER;

async function main(argv: string[]): Promise<number> {
  // The launcher's `start` answers on fd 3: take it before anything else can run (ADR 0013).
  if (launcherMode) (await import('./shim-api/bootstrap/reply.js')).takeReplyChannel();
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
      const channel = await import('./shim-api/bootstrap/reply.js');
      if (channel.reply(r.address)) channel.closeReplyChannel();
      else process.stdout.write(r.address);
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
      const log = createLogger({ level: flags.debug ? 'debug' : 'warn', base: { runtime: RUNTIME_TYPE, id: flags.id, namespace: flags.namespace, pid: process.pid, cmd: 'delete' } });
      const { resolver } = compose({ namespace: flags.namespace, log, containerdAddress: flags.address, publishBinary: flags.publishBinary, debug: flags.debug });
      const bytes = await runDelete(flags, resolver);
      process.stdout.write(bytes);
      return 0;
    }
    case 'node-worker':
      await runNodeWorker(flags);
      return -1; // keep running
    case 'daemon':
      // The launcher runs containerd's `start` as `daemon` with TSSHIM_LAUNCHER=1 (ADR 0008).
      if (launcherMode) return startAsDaemon(flags);
      await runDaemon(flags);
      return -1; // keep running
    case '':
      process.stderr.write(`usage: ${SHIM} -namespace NS -id ID -address ADDR start|delete\n`);
      return 2;
    default:
      process.stderr.write(`${SHIM}: unknown command "${flags.command}"\n`);
      return 2;
  }
}

/** Serve the task API until Shutdown (daemon mode). */
async function runDaemon(flags: ShimFlags, listen?: (server: Server) => Promise<boolean>, containerdPid?: number): Promise<void> {
  const { createLogger } = await import('./log.js');
  const { compose } = await import('./composition/root.js');
  const { serve } = await import('./shim-api/bootstrap/daemon.js');
  const { reaper } = await import('./sys/reaper.js');
  const { peerCredentials } = await import('./sys/libc.js');
  const obs = await import('./composition/observe.js');
  const setup = await obs.observeSetup(containerdPid);
  const log = createLogger({ level: flags.debug || process.env.TSSHIM_DEBUG === '1' ? 'debug' : 'info', base: { runtime: RUNTIME_TYPE, namespace: flags.namespace, pid: process.pid }, format: setup.logFormat });
  keepServingOnErrors(log, 'shim');
  if (setup.problem) log.warn({ err: setup.problem }, 'default config unreadable: metrics and tracing off, log format logfmt');
  obs.startTracing(setup.config, log, { 'service.version': version(), 'tsshim.mode': 'pod' });
  obs.recordBuildInfo(version(), 'pod', 'shim');
  let endpoint: { close(): Promise<void> } | undefined;
  const { resolver, publisher } = compose({
    namespace: flags.namespace,
    log,
    ttrpcAddress: process.env.TTRPC_ADDRESS,
    containerdAddress: flags.address,
    publishBinary: flags.publishBinary,
    debug: flags.debug,
    socket: flags.socket,
  });
  await serve(flags, {
    resolver,
    publisher,
    log,
    version: version(),
    listen,
    startReaping: () => {
      reaper.start();
      return () => reaper.stop();
    },
    authorize: peerAuthorizer(peerCredentials),
    // Pod mode's endpoint (ADR 0025): one socket per pod shim, named after the shim's own socket.
    onServing: async () => {
      const dir = setup.config.metricsPodDir;
      if (dir && flags.socket) endpoint = await obs.startMetricsEndpoint(`unix://${obs.podMetricsSocket(dir, flags.socket)}`, log);
    },
    beforeExit: async () => {
      await endpoint?.close();
      await obs.flushTracing(2000);
    },
  });
}

/** Node mode's worker (ADR 0018), started by the supervisor with the channel's sockets as fds 3 and 4. */
async function runNodeWorker(flags: ShimFlags): Promise<void> {
  const { createLogger } = await import('./log.js');
  const { compose } = await import('./composition/root.js');
  const { reaper } = await import('./sys/reaper.js');
  const { Worker } = await import('./shim-api/node/worker.js');
  const obs = await import('./composition/observe.js');
  const setup = await obs.observeSetup(undefined); // the supervisor resolved containerd's format (TSSHIM_LOG_FORMAT)
  const log = createLogger({ level: flags.debug || process.env.TSSHIM_DEBUG === '1' ? 'debug' : 'info', base: { runtime: RUNTIME_TYPE, mode: 'node', role: 'worker', pid: process.pid }, format: setup.logFormat });
  keepServingOnErrors(log, 'worker');
  if (setup.problem) log.warn({ err: setup.problem }, 'default config unreadable: tracing off');
  obs.startTracing(setup.config, log, { 'service.version': version(), 'tsshim.mode': 'node' });
  obs.recordBuildInfo(version(), 'node', 'worker');
  // Ended by its supervisor (reload) or an operator: leave every container as it is.
  process.on('SIGTERM', () => void obs.flushTracing(1000).finally(() => process.exit(0)));
  const worker = new Worker(
    {
      log,
      containerdAddress: flags.address,
      compose: (namespace, socket, exits, custody, publisher) =>
        compose({ namespace, log: log.child({ namespace }), ttrpcAddress: process.env.TTRPC_ADDRESS, containerdAddress: flags.address, publishBinary: flags.publishBinary, debug: flags.debug, socket, exits, custody, publisher }),
      startReaping: (onExit, onCommand) => {
        reaper.on('exit', onExit);
        reaper.on('command', (c) => onCommand(c.pid, c.running));
        reaper.start({ subreaper: false });
      },
    },
    { msgFd: 3, fdSock: 4 },
  );
  worker.start();
  log.info({ pid: process.pid, containerd: flags.address, version: version() }, 'node worker started');
}

/** A long-lived process logs what escaped and keeps serving its other tasks. */
function keepServingOnErrors(log: import('pino').Logger, role: string): void {
  process.on('uncaughtException', (err) => log.error({ err: err.stack ?? String(err) }, `uncaught exception (${role} keeps serving)`));
  process.on('unhandledRejection', (err) => log.error({ err: err instanceof Error ? err.stack : String(err) }, `unhandled rejection (${role} keeps serving)`));
}

/** Only peers with our uid and gid (SO_PEERCRED) may talk to a shim socket. */
function peerAuthorizer(peerCredentials: (fd: number) => { uid: number; gid: number }): (socket: import('node:net').Socket) => void {
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  return (socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (fd === undefined || fd < 0) throw new Error('cannot read peer credentials');
    const cred = peerCredentials(fd);
    if (cred.uid !== uid || cred.gid !== gid) throw new Error(`ttrpc: peer uid/gid ${cred.uid}/${cred.gid} refused`);
  };
}

/**
 * Node mode's `start` (ADR 0018), run by the launcher when `[shim] mode = "node"` and the daemon
 * does not serve this namespace yet: ask the running daemon to serve it, or become the daemon.
 */
async function startNodeMode(flags: ShimFlags, answer: (text: string, done: boolean) => void, containerdPid: number): Promise<number> {
  const fs = await import('node:fs');
  const fsp = await import('node:fs/promises');
  const path = await import('node:path');
  const libc = await import('./sys/libc.js');
  const boot = await import('./shim-api/bootstrap/start.js');
  const node = await import('./shim-api/bootstrap/node.js');
  const { bindSocket, isServing, withSocketLock } = await import('./shim-api/bootstrap/address.js');
  if (!flags.namespace) throw new Error('shim namespace cannot be empty');
  if (!flags.id) throw new Error('shim id cannot be empty');
  if (!flags.address) throw new Error('node mode needs containerd\'s -address (one daemon per containerd)');
  const bundle = process.cwd();
  boot.readStdinOptions(bundle); // Create brings the options again
  const paths = node.nodePaths(flags.address);
  await fsp.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  // One daemon per containerd: whoever binds the control socket under the node lock is it.
  const control = await withSocketLock(async () => {
    if (await isServing(paths.control)) return undefined;
    await fsp.rm(paths.control, { force: true }); // a dead daemon's
    const fd = await bindSocket(paths.control);
    await fsp.writeFile(paths.pidFile, `${process.pid}\n`);
    return fd;
  }, { lockFile: paths.lock });
  if (control === undefined) {
    const address = await node.askServe(paths.control, flags.namespace);
    fs.writeFileSync(path.join(bundle, 'address'), address);
    answer(address, true);
    return 0;
  }
  // This process is the supervisor now: off containerd's pipes, into the node log, out of the bundle.
  await fsp.mkdir(node.NODE_LOG_DIR, { recursive: true, mode: 0o755 });
  const devNull = fs.openSync('/dev/null', 'r+');
  const logFd = fs.openSync(paths.log, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
  libc.dup2(devNull, 0);
  libc.dup2(devNull, 1);
  libc.dup2(logFd, 2);
  fs.closeSync(devNull);
  fs.closeSync(logFd);
  process.chdir(paths.dir);
  if (Number.isInteger(containerdPid) && containerdPid > 0) boot.adjustOomScore(process.pid, containerdPid);
  const { createLogger } = await import('./log.js');
  const { reaper } = await import('./sys/reaper.js');
  const { Supervisor } = await import('./shim-api/node/supervisor.js');
  const obs = await import('./composition/observe.js');
  const setup = await obs.observeSetup(containerdPid);
  process.env.TSSHIM_LOG_FORMAT = setup.logFormat; // for the workers (they do not know containerd's pid)
  const log = createLogger({ level: flags.debug || process.env.TSSHIM_DEBUG === '1' ? 'debug' : 'info', base: { runtime: RUNTIME_TYPE, mode: 'node', role: 'supervisor', pid: process.pid }, format: setup.logFormat });
  keepServingOnErrors(log, 'supervisor');
  if (setup.problem) log.warn({ err: setup.problem }, 'default config unreadable: metrics off');
  // The only child subreaper: container processes re-parent here, whichever worker started them.
  reaper.start();
  const script = process.argv[1]!;
  const supervisor = new Supervisor({
    log,
    version: version(),
    containerdAddress: flags.address,
    ttrpcAddress: process.env.TTRPC_ADDRESS,
    paths,
    authorize: peerAuthorizer(libc.peerCredentials),
    exits: reaper,
    workerArgv: () => [
      ...process.execArgv,
      script,
      '-address', flags.address,
      ...(flags.publishBinary ? ['-publish-binary', flags.publishBinary] : []),
      ...(flags.debug ? ['-debug'] : []),
      'node-worker',
    ],
  });
  await supervisor.listenControl(control);
  const address = await supervisor.serveNamespace(flags.namespace);
  supervisor.startWorker();
  fs.writeFileSync(path.join(bundle, 'address'), address);
  answer(address, true);
  // One endpoint per node daemon (ADR 0025): held here, so it outlives workers; the worker's data.
  const metricsAddress = setup.config.metricsAddress;
  const endpoint = metricsAddress ? await obs.startMetricsEndpoint(metricsAddress, log, () => supervisor.metricsText()) : undefined;
  let exiting = false;
  const exit = async (reason: string) => {
    if (exiting) return;
    exiting = true;
    log.info({ reason }, 'node daemon exiting');
    await endpoint?.close();
    await supervisor.close();
    reaper.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void exit('SIGTERM'));
  process.on('SIGINT', () => void exit('SIGINT'));
  log.info({ pid: process.pid, containerd: flags.address, control: paths.control, version: version() }, 'node daemon supervisor serving');
  return -1; // keep running
}

/**
 * containerd's `start`, run by the launcher (bin/containerd-shim-tsshim-v2, ADR 0008) as `daemon`
 * under `setsid -f`: this process does start's work and becomes the daemon. Its stdout/stderr are
 * the launcher's capture pipe, which must see exactly the address (or an error) and then EOF; so
 * stdio moves off it before anything can log, and the reply goes through a private copy of it.
 */
async function startAsDaemon(flags: ShimFlags): Promise<number> {
  const fs = await import('node:fs');
  const libc = await import('./sys/libc.js');
  const boot = await import('./shim-api/bootstrap/start.js');
  const { isServing } = await import('./shim-api/bootstrap/address.js');
  const containerdPid = Number(process.env.TSSHIM_CONTAINERD_PID);
  delete process.env.TSSHIM_CONTAINERD_PID;
  const channel = await import('./shim-api/bootstrap/reply.js');
  // The address alone on the answer channel, then EOF; an error says its text (main adds the status).
  const answer = (text: string, done: boolean) => {
    channel.reply(text);
    if (done) channel.closeReplyChannel();
  };
  try {
    // The launcher read `[shim] mode` from the default config; the full parser has the last word.
    const launcherSaid = process.env.TSSHIM_MODE;
    delete process.env.TSSHIM_MODE;
    if (launcherSaid === 'node') {
      const { defaultConfig } = await import('./composition/config.js');
      if ((await defaultConfig()).mode === 'node') return await startNodeMode(flags, answer, containerdPid);
    }
    const plan = boot.planStart(flags); // reads the options on stdin
    // A later task of a pod joins its shim: answer before loading anything of the daemon.
    if (await isServing(plan.sock)) {
      boot.writeAddressFile(plan); // the pod's shim serves this task too
      answer(plan.address, true);
      return 0;
    }
    const devNull = fs.openSync('/dev/null', 'r+');
    const logFd = boot.openBundleLog(plan.bundle);
    libc.dup2(devNull, 0);
    libc.dup2(devNull, 1);
    libc.dup2(logFd ?? devNull, 2);
    fs.closeSync(devNull);
    if (logFd !== undefined) fs.closeSync(logFd);
    if (Number.isInteger(containerdPid) && containerdPid > 0) boot.adjustOomScore(process.pid, containerdPid);
    await runDaemon({ ...flags, socket: plan.sock }, async (server) => {
      const state = await boot.listenOrJoin(plan.sock, (fd) => server.listen({ fd }));
      boot.writeAddressFile(plan);
      answer(plan.address, true);
      return state === 'listening';
    }, containerdPid);
    return -1; // keep running
  } catch (err) {
    answer(`${SHIM}: start: ${err instanceof Error ? err.message : String(err)}\n`, false);
    return 1;
  }
}

/** Under the launcher's `setsid -f` nobody sees our exit status: say it last on the answer channel. */
async function exitStatusToLauncher(code: number, message?: string): Promise<void> {
  if (!launcherMode) return;
  const channel = await import('./shim-api/bootstrap/reply.js');
  if (message !== undefined) channel.reply(message);
  if (code > 0) channel.reply(`[exit status ${code}]`);
  channel.closeReplyChannel();
}

main(process.argv.slice(2)).then(
  async (code) => {
    if (code >= 0) {
      await exitStatusToLauncher(code);
      process.exit(code);
    }
  },
  async (err: unknown) => {
    const text = `${SHIM}: ${err instanceof Error ? err.message : String(err)}\n`;
    if (launcherMode) await exitStatusToLauncher(1, text);
    else process.stderr.write(text);
    process.exit(1);
  },
);
