/**
 * The handler port: what a backend implements to serve containerd's task API.
 * shim-api owns this contract and never imports a handler; the composition root
 * lists the handler definitions (definition.ts) and resolves one per task.
 */
import type { Any, task } from './pb.js';

/** A backend serving one or more containers of this shim. */
export interface TaskHandler {
  /** Handler name as configured (e.g. "runc", "gvisor", "kata"). */
  readonly name: string;
  create(req: task.CreateTaskRequest): Promise<task.CreateTaskResponse>;
  start(req: task.StartRequest): Promise<task.StartResponse>;
  delete(req: task.DeleteRequest): Promise<task.DeleteResponse>;
  pids(req: task.PidsRequest): Promise<task.PidsResponse>;
  pause(req: task.PauseRequest): Promise<void>;
  resume(req: task.ResumeRequest): Promise<void>;
  checkpoint(req: task.CheckpointTaskRequest): Promise<void>;
  kill(req: task.KillRequest): Promise<void>;
  exec(req: task.ExecProcessRequest): Promise<void>;
  resizePty(req: task.ResizePtyRequest): Promise<void>;
  closeIO(req: task.CloseIORequest): Promise<void>;
  update(req: task.UpdateTaskRequest): Promise<void>;
  wait(req: task.WaitRequest): Promise<task.WaitResponse>;
  stats(req: task.StatsRequest): Promise<task.StatsResponse>;
  state(req: task.StateRequest): Promise<task.StateResponse>;
  /** Pid of the container's init process, 0 when unknown (Connect). */
  taskPid(id: string): number;
  /** Containers created through this handler and not yet deleted. */
  containerCount(): number;
  /** Release everything this handler holds (shim exit). */
  close(): Promise<void>;
  /**
   * Node mode, a restarted worker (ADR 0018): take over task `a.id` from its last record and its
   * kept fds, as the previous worker left it; exits that happened meanwhile arrive through
   * `os.exits` after this resolves. Handlers without it cannot survive a worker restart.
   */
  adopt?(a: import('./custody.js').Adoption): Promise<void>;
}

/** What the `delete` subcommand reports: containerd's task.DeleteResponse fields. */
export interface CleanupResult {
  pid: number;
  exitStatus: number;
}

/** What selects a handler for a new task. */
export interface HandlerSelection {
  /** Options Any from task.CreateTaskRequest (or `start` stdin). */
  options?: Any;
  /** Annotations of the container's OCI spec. */
  annotations: Record<string, string>;
  bundle: string;
  id: string;
}

/** Resolves a handler for a task; implemented by the composition root. */
export interface HandlerResolver {
  resolve(sel: HandlerSelection): Promise<TaskHandler>;
  /**
   * The `delete` subcommand: the shim daemon of this bundle is gone (or finished);
   * force-remove what the task left behind, using the state its handler recorded in the bundle.
   */
  cleanup(bundle: string, id: string): Promise<CleanupResult>;
  /** Node mode, a restarted worker: the handler that serves the task of `bundle` (the config it recorded there). */
  forBundle?(bundle: string): Promise<TaskHandler>;
  /**
   * `-info`: the runtime features of the handler these runtime options select (no bundle, no
   * task, no annotations: containerd 2.x's CRI asks once per runtime handler at start-up).
   */
  runtimeFeatures?(options: Any | undefined): Promise<RuntimeFeatures>;
}

/** What `-info` reports about the handler that will serve: which one, and its backend's features. */
export interface RuntimeFeatures {
  handler: HandlerConfig;
  /** Where the handler config came from (runtime options ConfigPath, default config, ...). */
  source: string;
  /** The backend's OCI features document as containerd's Any; undefined when the backend does not tell. */
  features?: Any;
}

/** Where a handler package's definition comes from (`handler = "module:<specifier>"`). */
export interface HandlerModuleRef {
  /** What the config names after `module:`: a package ("@acme/tsshim-handler-foo"), an absolute or a relative path. */
  specifier: string;
  /** The directory of the config file, which the specifier resolves from; absent for runtime options' ConfigBody. */
  base?: string;
  /** The file it resolved to, once loaded (recorded in the bundle, so `delete` and node mode load the same). */
  path?: string;
}

/** A handler entry as configured (config file, runtime options), after defaults. */
export interface HandlerConfig {
  /**
   * Handler type: which definition builds it ("runc", "gvisor", "youki", "kata", "crun", "oci", or
   * a handler package's own type). Before its module is loaded, a package handler's is the
   * config's `module:<specifier>`; a handler's factory always sees its definition's type.
   */
  type: string;
  /** Name shown in logs and errors; the runtime entry's name when known. */
  name: string;
  /** Backend binary override (runc Options.BinaryName, `binary` in the config). */
  binary?: string;
  /** Backend state root override (runc Options.Root, `root` in the config). */
  root?: string;
  /** Handler-specific settings (`[options]` table). */
  options: Record<string, unknown>;
  /** Set when the handler comes from a package or file (`handler = "module:..."`). */
  module?: HandlerModuleRef;
}

/** Process-level services the composition root gives every handler. */
export interface HandlerContext {
  namespace: string;
  /** How containerd started this shim: what a delegating handler passes on to its delegate. */
  shim: { containerdAddress: string; publishBinary: string; ttrpcAddress: string; debug: boolean; /** our own `unix://` address ('' outside the daemon) */ address: string };
  publisher: import('./events.js').EventPublisher;
  log: import('pino').Logger;
  /** Everything a handler needs from the operating system, solved once in src/sys. */
  os: OsServices;
  /** Node mode: where fds and task records outlive this worker process (custody.ts); absent in pod mode. */
  custody?: import('./custody.js').Custody;
}

/** The OS primitives Node lacks (reaping, mounts, tracked spawns), behind one interface. */
export interface OsServices {
  run(file: string, args: string[], opts?: { cwd?: string; input?: string | Uint8Array; env?: Record<string, string>; timeoutMs?: number; stdio?: Array<number | 'ignore' | 'pipe'> }): Promise<{ exitCode: number; signal?: string; stdout: string; stderr: string; failed: boolean }>;
  spawn(file: string, args: string[], opts: import('node:child_process').SpawnOptions): import('node:child_process').ChildProcess;
  exits: {
    on(event: 'exit', fn: (e: { pid: number; status: number; exitedAt: Date }) => void): unknown;
    off(event: 'exit', fn: (e: { pid: number; status: number; exitedAt: Date }) => void): unknown;
  };
  /** Mount in order inside rootfs, off the event loop; rejects (naming type, source, target: never options) after undoing its own mounts. */
  mountAll(mounts: Array<{ type: string; source: string; target?: string; options: string[] }>, rootfs: string): Promise<void>;
  /** Unmount everything stacked on target (off the event loop, like mountAll). */
  unmountAll(target: string): Promise<void>;
}

/** What serves tasks of one handler type; a HandlerDefinition's factory() loads it. */
export interface HandlerFactory {
  /** The handler type this factory builds. */
  readonly type: string;
  create(config: HandlerConfig, ctx: HandlerContext): TaskHandler;
  /** `delete` subcommand: remove what a task of this handler left in `bundle`. */
  cleanup(config: HandlerConfig, bundle: string, id: string, ctx: HandlerContext): Promise<CleanupResult>;
  /**
   * `-info`: the backend's OCI runtime features (`runc features`: containerd 2.x's CRI enables
   * recursive read-only and idmap mounts per handler from them), packed as containerd's Any
   * (TYPE_URL.OciFeatures). undefined when the backend cannot say; never invented.
   */
  features?(config: HandlerConfig, ctx: HandlerContext): Promise<Any | undefined>;
}
