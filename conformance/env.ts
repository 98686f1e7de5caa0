// Where cells run: one shared private containerd (plus one CRI-enabled containerd, started on the
// first CRI scenario), the ctr driver bound to a column, and each cell's context and cleanup.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectContainerd, type ContainerdClient } from '../src/client/containerd.js';
import { connectCri, type CriClient } from '../src/client/cri.js';
import { importTestImage, startContainerd, uniqueId, type PrivateContainerd } from '../test/helpers/containerd.js';
import { criConfig, importCriImages, type CriRuntimeEntry } from '../test/helpers/cri.js';
import { removeContainers } from '../test/helpers/teardown.js';
import type { Column, ColumnId } from './columns.js';
import type { CtrDriver, CtrRunOptions, Json, ScenarioContext, ShimMode } from './types.js';

interface CriEnv {
  cd: PrivateContainerd;
  client: CriClient;
  /** Column id -> CRI runtime_handler. */
  handlers: Map<ColumnId, string>;
  logRoot: string;
}

export class MatrixEnv {
  cd!: PrivateContainerd;
  client!: ContainerdClient;
  image!: string;
  private criEnv: Promise<CriEnv> | undefined;
  private savedConfig: string | undefined;

  constructor(
    readonly tmp: string,
    readonly configs: Map<ColumnId, { ctr?: string; cri?: string }>,
    readonly runnable: Column[],
    readonly shimMode: ShimMode = 'pod',
  ) {}

  async start(): Promise<void> {
    // Shims of peer references (containerd-shim-runsc-v1) go on the private containerd's PATH, last:
    // nothing there shadows a binary the other columns use (runsc is named by absolute path).
    const extra = this.runnable.map((c) => c.shimPath).filter((d): d is string => d !== undefined);
    const path = (process.env.PATH ?? '').split(':').filter(Boolean);
    for (const d of extra) if (!path.includes(d)) path.push(d);
    process.env.PATH = path.join(':');
    if (this.shimMode === 'node') {
      // The default tsshim config (containerd passes TSSHIM_CONFIG on to its shims) selects node
      // mode; each column's handler still comes from its runtime entry's config file.
      const file = join(this.tmp, 'tsshim-node.toml');
      writeFileSync(file, '[shim]\nmode = "node"\n');
      this.savedConfig = process.env.TSSHIM_CONFIG;
      process.env.TSSHIM_CONFIG = file;
    }
    this.cd = await startContainerd({ name: 'conformance' });
    this.image = await importTestImage(this.cd);
    this.client = await connectContainerd(this.cd.address, this.cd.namespace);
  }

  cri(): Promise<CriEnv> {
    this.criEnv ??= (async () => {
      const handlers = new Map<ColumnId, string>();
      const runtimes: Record<string, CriRuntimeEntry> = {};
      for (const c of this.runnable) {
        if (c.id === 'reference') {
          handlers.set(c.id, 'runc'); // criConfig's built-in io.containerd.runc.v2 entry
          continue;
        }
        const name = `conformance-${c.id}`;
        runtimes[name] = { runtimeType: c.runtimeType, configPath: this.configs.get(c.id)?.cri, ...(c.runtimePath ? { runtimePath: c.runtimePath } : {}) };
        handlers.set(c.id, name);
      }
      const cd = await startContainerd({ name: 'conf-cri', extraConfig: criConfig(runtimes, { cniDir: join(this.tmp, 'cni') }) });
      try {
        await importCriImages(cd);
        const client = await connectCri(cd.address);
        const logRoot = join(this.tmp, 'pods');
        mkdirSync(logRoot, { recursive: true });
        return { cd, client, handlers, logRoot };
      } catch (e) {
        await cd.stop();
        throw e;
      }
    })();
    return this.criEnv;
  }

  /** Both containerds with the shared teardown (runc and runsc containers whose shim died included). */
  async stop(): Promise<void> {
    this.client?.close();
    if (this.criEnv) {
      const c = await this.criEnv.catch(() => undefined);
      c?.client.close();
      await c?.cd.stop();
    }
    await this.cd?.stop();
    if (this.shimMode === 'node') {
      if (this.savedConfig === undefined) delete process.env.TSSHIM_CONFIG;
      else process.env.TSSHIM_CONFIG = this.savedConfig;
    }
  }
}

export function ctrDriver(env: MatrixEnv, column: Column, spawned: Set<ChildProcess>): CtrDriver {
  const cd = env.cd;
  const cfg = env.configs.get(column.id)?.ctr;
  const runtimeFlags = ['--runtime', column.runtimeType, ...(cfg ? ['--runtime-config-path', cfg] : [])];
  const runArgs = (id: string, cmd: string[], o: CtrRunOptions = {}) => [
    'run',
    ...(o.rm ? ['--rm'] : []),
    ...(o.detach ? ['-d'] : []),
    ...(o.tty ? ['-t'] : []),
    ...(o.flags ?? []),
    ...runtimeFlags,
    env.image,
    id,
    ...cmd,
  ];
  return {
    runtimeFlags,
    raw: (args, opts = {}) => cd.ctr(args, { input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 }),
    run: (id, cmd, o = {}) => cd.ctr(runArgs(id, cmd, o), { input: o.input, timeoutMs: o.timeoutMs ?? 60_000 }),
    runArgv: (id, cmd, o = {}) => cd.ctrArgv(runArgs(id, cmd, o)),
    createContainer: (id, cmd, o = {}) =>
      cd.ctr(['containers', 'create', ...(o.tty ? ['-t'] : []), ...(o.flags ?? []), ...runtimeFlags, env.image, id, ...cmd], { timeoutMs: 60_000 }),
    spawn: (args) => {
      const child = cd.ctrSpawn(args);
      spawned.add(child);
      return child;
    },
  };
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** One cell's context; cleanup() undoes whatever the scenario left, whatever its outcome. */
export function openCell(env: MatrixEnv, column: Column, scenarioId: string): { ctx: ScenarioContext; notes: { [k: string]: Json }; cleanup(): Promise<void> } {
  const ids: string[] = [];
  const deferred: Array<() => unknown | Promise<unknown>> = [];
  const notes: { [k: string]: Json } = {};
  const spawned = new Set<ChildProcess>();
  const tmp = mkdtempSync(join(env.tmp, `${column.id}-${scenarioId}-`.slice(0, 60)));
  const ctx: ScenarioContext = {
    column,
    shimMode: env.shimMode,
    cd: env.cd,
    ctr: ctrDriver(env, column, spawned),
    client: env.client,
    image: env.image,
    tmp,
    cri: async () => {
      const c = await env.cri();
      return { cd: c.cd, client: c.client, runtimeHandler: c.handlers.get(column.id)!, logRoot: c.logRoot };
    },
    uniqueId: (prefix = 'c') => {
      const id = uniqueId(`${prefix}-${column.id}`.slice(0, 20));
      ids.push(id);
      return id;
    },
    note: (k, v) => {
      notes[k] = v;
    },
    defer: (fn) => {
      deferred.push(fn);
    },
  };
  return {
    ctx,
    notes,
    async cleanup() {
      // Deferred actions (last first), spawned ctr, then the containers the scenario named.
      for (const fn of deferred.reverse()) await withTimeout(Promise.resolve().then(fn), 30_000, 'cleanup').catch(() => undefined);
      for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await removeContainers((args, o) => env.cd.ctr(args, o), ids);
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
