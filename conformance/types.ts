// Shared types of the conformance suite: scenarios observe, the runner compares.
//
// A scenario is a small async function that drives one column (a containerd runtime entry) through
// a private containerd and returns an Observation: a plain JSON object of the facts that must be
// the same on every column (exit codes, outputs, event orders, error codes...). The runner runs the
// same scenario on the reference column (io.containerd.runc.v2) and reports, per column, the
// difference between the two observations.
import type { ChildProcess } from 'node:child_process';
import type { ContainerdClient } from '../src/client/containerd.js';
import type { CriClient } from '../src/client/cri.js';
import type { Operation } from '../src/shim-api/operations.js';
import type { PrivateContainerd } from '../test/helpers/containerd.js';
import type { RunResult } from '../test/helpers/proc.js';
import type { Column, ColumnId, ColumnKind } from './columns.js';
import type { HostFactsReport } from './hostfacts.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The comparable facts a scenario observed. Only what must be equal across columns goes here. */
export type Observation = { [k: string]: Json };

/** A capability a handler may lack: the operations of the OCI-CLI profiles. */
export type Capability = Operation;

/** `differs`: only for a peer reference (gVisor's own shim) whose observation differs from runc-v2's. */
export type CellStatus = 'pass' | 'fail' | 'not-supported' | 'not-run' | 'broken' | 'differs';

export interface CellResult {
  scenario: string;
  column: string;
  status: CellStatus;
  /** One line: why (diff summary, Unimplemented message, not-run reason, error). */
  detail: string;
  /** Observed difference from the reference: `path: reference=<x> column=<y>`. */
  diff?: string[];
  /** Column with a peer reference: difference from the peer's observation (`path: reference=<peer> column=<x>`). */
  peerDiff?: string[];
  /** Problems with the scenario's own expectations (independent of the reference). */
  problems?: string[];
  observation?: Observation;
  /** Facts recorded for the reader but not compared (pids, raw messages...). */
  notes?: { [k: string]: Json };
  durationMs: number;
}

/** Thrown by a scenario when the host cannot run it (the reason names the exact error). */
export class NotRunError extends Error {
  override readonly name = 'NotRunError';
}

/** Thrown when the shim answered Unimplemented; the message is the shim's. */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
  constructor(
    message: string,
    readonly capability?: Capability,
  ) {
    super(message);
  }
}

export interface CtrRunOptions {
  /** `ctr run -d` */
  detach?: boolean;
  /** `ctr run --rm` */
  rm?: boolean;
  /** `ctr run -t` */
  tty?: boolean;
  /** Extra `ctr run` flags placed before the image (e.g. ['--memory-limit', '33554432']). */
  flags?: string[];
  input?: string | Buffer;
  timeoutMs?: number;
}

/** ctr bound to one column: every container it creates gets the column's runtime and config. */
export interface CtrDriver {
  /** `--runtime <type>` plus `--runtime-config-path <file>` for tsshim columns. */
  readonly runtimeFlags: readonly string[];
  /** Any ctr command (`ctr --address .. -n .. <args>`). Never rejects on a non-zero exit. */
  raw(args: string[], opts?: { input?: string | Buffer; timeoutMs?: number }): Promise<RunResult>;
  /** `ctr run [flags] <runtime flags> <image> <id> <cmd...>`. */
  run(id: string, cmd: string[], opts?: CtrRunOptions): Promise<RunResult>;
  /** The full argv of the ctr run above, for wrapping (e.g. in `script`). */
  runArgv(id: string, cmd: string[], opts?: CtrRunOptions): string[];
  /** `ctr container create <runtime flags> <image> <id> <cmd...>`. */
  createContainer(id: string, cmd: string[], opts?: { tty?: boolean; flags?: string[] }): Promise<RunResult>;
  /** Long-running ctr (e.g. `ctr events`), killed when the cell ends. */
  spawn(args: string[]): ChildProcess;
}

/** The CRI side of a cell: a CRI-enabled private containerd with a runtime entry per column. */
export interface CriContext {
  cd: PrivateContainerd;
  client: CriClient;
  /** CRI runtime_handler = containerd runtime entry of this column. */
  runtimeHandler: string;
  /** Directory for pod log directories. */
  logRoot: string;
}

/** How tsshim's columns run: a shim per pod (default) or one node daemon per containerd (ADR 0018). */
export type ShimMode = 'pod' | 'node';

export interface ScenarioContext {
  readonly column: Column;
  /** tsshim's [shim] mode for this run (the reference is always containerd's own runc-v2). */
  readonly shimMode: ShimMode;
  /** The private containerd (plain, CRI disabled) all non-CRI scenarios share. */
  readonly cd: PrivateContainerd;
  readonly ctr: CtrDriver;
  /** containerd gRPC client on cd, namespace cd.namespace. */
  readonly client: ContainerdClient;
  /** The test image (busybox) imported in cd. */
  readonly image: string;
  /** A scratch directory of this cell, removed afterwards. */
  readonly tmp: string;
  /** The CRI-enabled containerd (started on first use). */
  cri(): Promise<CriContext>;
  /** A fresh container id; the runner removes containers with these ids after the cell. */
  uniqueId(prefix?: string): string;
  /** Records a fact for the report that is not compared with the reference. */
  note(key: string, value: Json): void;
  /** Runs fn when the cell ends (last registered first), whatever the outcome. */
  defer(fn: () => unknown | Promise<unknown>): void;
}

export interface Scenario {
  /** Stable id, e.g. `exit-code-42`. */
  id: string;
  /** Group for the report, e.g. `lifecycle`. */
  group: string;
  /** One line: what is driven and what is observed. */
  title: string;
  /** Operations the column must declare; when it does not, an Unimplemented answer is `not-supported`. */
  requires?: Capability[];
  /** Uses the CRI containerd. */
  cri?: boolean;
  /** Per-cell timeout (default 90 s). */
  timeoutMs?: number;
  run(ctx: ScenarioContext): Promise<Observation>;
  /**
   * Absolute expectations on an observation (problems; empty = fine). Applied to every column,
   * the reference included: a reference that fails them makes the scenario "broken".
   */
  expect?(obs: Observation): string[];
}

export interface ColumnReport {
  id: ColumnId;
  /** reference (runc-v2), tsshim (one of tsshim's own handlers), stand-in (a tsshim handler in front of a substitute backend), handler (a handler config's handler under test: the kit). */
  kind?: ColumnKind;
  header: string;
  runtimeType: string;
  handlerToml?: string;
  available: boolean;
  /** Why the column did not run (availability probe). */
  reason?: string;
  detail?: string;
}

export interface ScenarioReport {
  id: string;
  group: string;
  title: string;
  requires: string[];
}

export interface MatrixReport {
  format: 'tsshim-conformance/1';
  generatedAt: string;
  /** The command that produced it (absent in reports from before the kit: npm run conformance). */
  command?: string;
  /** tsshim's [shim] mode for the run (absent in reports from before node mode: pod). */
  shimMode?: ShimMode;
  durationMs: number;
  host: HostFactsReport;
  columns: ColumnReport[];
  scenarios: ScenarioReport[];
  /** Row-major: for each scenario, one cell per column in `columns` order. */
  cells: CellResult[];
  summary: Record<CellStatus, number>;
  /** Scenarios that failed on the reference column. */
  brokenScenarios: string[];
}
