/**
 * OciCliDriver: the one owner of the OCI runtime command line (runc dialect) for
 * runc, runsc, youki, crun and any runc-compatible binary. A backend differs only
 * by its RuntimeProfile (data). Processes are run through the injected
 * CommandRunner; this module never spawns anything itself.
 */
import { constants as fsConstants } from 'node:fs';
import { access, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ShimError, type ErrorKind } from '../../shim-api/errors.js';
// containerd's identifier rule, for ids and namespaces; also keeps ids from being parsed as flags.
import { isIdentifier } from '../../shim-api/identifiers.js';
import type { FlagDisposition, Operation, RuntimeProfile } from './profile.js';
import type { CommandRunner, RunOptions, RunResult, StdioSlot } from './runner.js';

/** Default per-command timeout (runsc create/restore can take seconds; runc takes ~60 ms). */
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface DriverConfig {
  profile: RuntimeProfile;
  /** Override of profile.binary, e.g. runc Options.BinaryName. */
  binary?: string;
  /** Override of profile.defaultRoot, e.g. runc Options.Root; the namespace is still appended. */
  root?: string;
  namespace: string;
  /** Absolute bundle directory; cwd of every command and home of log.json. */
  bundle: string;
  systemdCgroup?: boolean;
  criuPath?: string;
  extraGlobalArgs?: readonly string[];
  /** Per-command timeout in ms (default DEFAULT_TIMEOUT_MS; 0 = none). */
  timeoutMs?: number;
}

export type Stdio3 = [StdioSlot, StdioSlot, StdioSlot];

export interface CreateOptions {
  pidFile: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  stdio?: Stdio3;
}

export interface ExecOptions {
  processJsonPath: string;
  pidFile: string;
  /** runsc only (`--internal-pid-file`): pid of the process inside the sandbox. */
  internalPidFile?: string;
  consoleSocket?: string;
  stdio?: Stdio3;
}

export interface CheckpointOptions {
  imagePath: string;
  workPath?: string;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  externalUnixSockets?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
  emptyNamespaces?: string[];
  cgroupsMode?: string;
}

export interface RestoreOptions {
  imagePath: string;
  workPath?: string;
  pidFile: string;
  consoleSocket?: string;
  noPivot?: boolean;
  detach: true;
  stdio?: Stdio3;
  tcpEstablished?: boolean;
  externalUnixSockets?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
}

export interface RuntimeState {
  id: string;
  /** Host pid of the init; 0 when the runtime reports none (youki omits it, runsc says -1). */
  pid: number;
  status: string;
  bundle?: string;
}


/**
 * Map a runtime failure message to an error kind, like containerd's runc shim
 * (checkKillError for kill; "does not exist" for state/delete). Case-insensitive.
 */
export function classifyFailure(op: Operation, message: string): ErrorKind {
  const m = message.toLowerCase();
  if (op === 'kill') {
    if (
      m.includes('process already finished') ||
      m.includes('no such process') ||
      m.includes('container not running') ||
      m.includes('not running') ||
      m.includes('does not exist')
    ) {
      return 'NotFound';
    }
    return 'Unknown';
  }
  if (op === 'state' || op === 'delete') {
    if (m.includes('container does not exist') || m.includes('does not exist') || m.includes('not found')) {
      return 'NotFound';
    }
    return 'Unknown';
  }
  return 'Unknown';
}

/**
 * The message of the last error-level line of an OCI runtime JSON log.
 * Lines are JSON objects: runc/crun/runsc `{level, msg, time}`, youki (tracing)
 * `{timestamp, level: "ERROR", message}`. Garbage lines are skipped.
 */
export function lastLogError(text: string): string | undefined {
  let found: string | undefined;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(t);
    } catch {
      continue;
    }
    if (obj === null || typeof obj !== 'object') continue;
    const rec = obj as Record<string, unknown>;
    const level = typeof rec.level === 'string' ? rec.level.toLowerCase() : '';
    if (level !== 'error' && level !== 'fatal' && level !== 'panic') continue;
    const fields = rec.fields as Record<string, unknown> | undefined;
    const msg =
      typeof rec.msg === 'string'
        ? rec.msg
        : typeof rec.message === 'string'
          ? rec.message
          : fields && typeof fields.message === 'string'
            ? fields.message
            : undefined;
    // Rust runtimes (youki) print anyhow's report, with a stack backtrace when RUST_BACKTRACE is
    // set in their environment: the words end where the backtrace starts.
    const words = msg?.split(/\n\s*Stack backtrace:/)[0]?.trim();
    if (words) found = words;
  }
  return found;
}

/** Read a pid file written by --pid-file (runc writes it without a newline). */
export async function readPidFile(file: string): Promise<number> {
  const text = (await readFile(file, 'utf8')).trim();
  const pid = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(pid) || pid <= 0) {
    throw new ShimError('Internal', `pid file ${file} does not hold a pid: ${JSON.stringify(text.slice(0, 64))}`);
  }
  return pid;
}

interface Invocation {
  op: Operation;
  args: string[];
  stdio: [StdioSlot, StdioSlot, StdioSlot];
  input?: string;
  noTimeout?: boolean;
}

export class OciCliDriver {
  readonly profile: RuntimeProfile;
  readonly binary: string;
  readonly root: string;
  readonly logPath: string;
  readonly bundle: string;
  readonly timeoutMs: number;
  readonly #config: DriverConfig;
  readonly #run: CommandRunner;

  constructor(config: DriverConfig, run: CommandRunner) {
    const p = config.profile;
    if (!isIdentifier(config.namespace ?? '')) {
      throw new ShimError('InvalidArgument', `invalid namespace ${JSON.stringify(config.namespace)}`);
    }
    if (typeof config.bundle !== 'string' || !path.isAbsolute(config.bundle)) {
      throw new ShimError('InvalidArgument', `bundle must be an absolute path, got ${JSON.stringify(config.bundle)}`);
    }
    const binary = config.binary !== undefined && config.binary !== '' ? config.binary : p.binary;
    const rootBase = config.root !== undefined && config.root !== '' ? config.root : p.defaultRoot;
    if (!path.isAbsolute(rootBase)) {
      throw new ShimError('InvalidArgument', `${p.name} root must be an absolute path, got ${JSON.stringify(rootBase)}`);
    }
    if (config.systemdCgroup && p.systemdCgroupFlag === undefined) {
      throw new ShimError('InvalidArgument', `${p.name} has no systemd cgroup flag; unset SystemdCgroup`);
    }
    if (config.criuPath && p.criuFlag === undefined) {
      throw new ShimError('InvalidArgument', `${p.name} does not use CRIU; unset CriuPath`);
    }
    for (const a of config.extraGlobalArgs ?? []) {
      if (typeof a !== 'string' || !a.startsWith('-')) {
        throw new ShimError('InvalidArgument', `extra global argument ${JSON.stringify(a)} is not a flag`);
      }
    }
    const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new ShimError('InvalidArgument', `timeoutMs must be >= 0, got ${timeoutMs}`);
    }
    this.#config = config;
    this.#run = run;
    this.profile = p;
    this.binary = binary;
    this.root = path.join(rootBase, config.namespace);
    this.bundle = path.normalize(config.bundle);
    this.logPath = path.join(this.bundle, 'log.json');
    this.timeoutMs = timeoutMs;
  }

  /** [--root R, --log L, --log-format json, ...profile.globalArgs, ...extra, (--systemd-cgroup), (--criu P)] */
  globalArgs(): string[] {
    const p = this.profile;
    const c = this.#config;
    const args = ['--root', this.root, '--log', this.logPath, '--log-format', 'json', ...p.globalArgs];
    args.push(...(c.extraGlobalArgs ?? []));
    if (c.systemdCgroup && p.systemdCgroupFlag) args.push(p.systemdCgroupFlag);
    if (c.criuPath && p.criuFlag) args.push(p.criuFlag, c.criuPath);
    return args;
  }

  /** `create`; returns the init's pid from the pid file (the one pid-file reader). */
  async create(id: string, o: CreateOptions): Promise<number> {
    this.#supported('create');
    this.#id(id);
    const f = this.#flags('create');
    const args = ['create', '--bundle', this.bundle, '--pid-file', req('pidFile', o.pidFile)];
    f.value('--console-socket', o.consoleSocket, true);
    f.bool('--no-pivot', o.noPivot, true);
    f.bool('--no-new-keyring', o.noNewKeyring, true);
    args.push(...f.args, id);
    await this.#invoke({ op: 'create', args, stdio: o.stdio ?? ['ignore', 'ignore', 'ignore'] });
    return readPidFile(o.pidFile);
  }

  /** `stdio`: for backends whose `start` hands its own stdio to the container (runsc sub-containers). */
  async start(id: string, o: { stdio?: Stdio3 } = {}): Promise<void> {
    this.#supported('start');
    this.#id(id);
    await this.#invoke({ op: 'start', args: ['start', id], stdio: o.stdio ?? ['ignore', 'pipe', 'pipe'] });
  }

  /**
   * `wait <id>` (runsc): blocks until the container exits and returns its exit status.
   * No timeout: it lives as long as the container.
   */
  async wait(id: string): Promise<number> {
    this.#supported('wait');
    this.#id(id);
    const r = await this.#invoke({ op: 'wait', args: ['wait', id], stdio: ['ignore', 'pipe', 'pipe'], noTimeout: true });
    const m = /"exitStatus"\s*:\s*(-?\d+)/.exec(r.stdout);
    if (!m) throw new ShimError('Unknown', `${this.profile.name} wait ${id}: unexpected output ${JSON.stringify(r.stdout.slice(0, 200))}`);
    const status = Number(m[1]);
    // runsc reports the raw wait status for signals on some builds: normalise to 128+signal.
    return status > 255 ? 128 + (status & 0x7f) : status;
  }

  /** Always `--detach`: returns the host pid to wait on from the pid file (runsc: its exec helper). */
  async exec(id: string, o: ExecOptions): Promise<number> {
    this.#supported('exec');
    this.#id(id);
    const f = this.#flags('exec');
    const args = ['exec', '--process', req('processJsonPath', o.processJsonPath), '--detach', '--pid-file', req('pidFile', o.pidFile)];
    f.value('--internal-pid-file', o.internalPidFile, false);
    f.value('--console-socket', o.consoleSocket, true);
    args.push(...f.args, id);
    await this.#invoke({ op: 'exec', args, stdio: o.stdio ?? ['ignore', 'ignore', 'ignore'] });
    return readPidFile(o.pidFile);
  }

  /**
   * `kill [--all] [--pid P] <id> <signal>`; without profile.killAllFlag, `all` signals the init
   * only. `pid`: one process of the container by the runtime's own pid for it (runsc: the pid
   * inside the sandbox); a flag runc does not have (profile.flags 'kill --pid').
   */
  async kill(id: string, signal: number, all?: boolean, pid?: number): Promise<void> {
    this.#supported('kill');
    this.#id(id);
    if (!Number.isInteger(signal) || signal < 0 || signal > 64) {
      throw new ShimError('InvalidArgument', `invalid signal ${signal}`);
    }
    const f = this.#flags('kill');
    if (all && this.profile.killAllFlag) f.bool('--all', true, true);
    if (pid !== undefined) {
      if (!Number.isInteger(pid) || pid <= 0) throw new ShimError('InvalidArgument', `invalid pid ${pid}`);
      f.value('--pid', String(pid), false);
    }
    await this.#invoke({ op: 'kill', args: ['kill', ...f.args, id, String(signal)], stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async delete(id: string, o?: { force?: boolean }): Promise<void> {
    this.#supported('delete');
    this.#id(id);
    const args = ['delete'];
    if (o?.force) args.push(this.profile.forceDeleteFlag);
    args.push(id);
    await this.#invoke({ op: 'delete', args, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async pause(id: string): Promise<void> {
    this.#supported('pause');
    this.#id(id);
    await this.#invoke({ op: 'pause', args: ['pause', id], stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async resume(id: string): Promise<void> {
    this.#supported('resume');
    this.#id(id);
    await this.#invoke({ op: 'resume', args: ['resume', id], stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** `ps --format json <id>`; pids are host pids unless !profile.psReportsHostPids (runsc). */
  async ps(id: string): Promise<number[]> {
    this.#supported('ps');
    this.#id(id);
    const r = await this.#invoke({ op: 'ps', args: ['ps', '--format', 'json', id], stdio: ['ignore', 'pipe', 'pipe'] });
    const v = this.#json('ps', r.stdout);
    if (v === null) return [];
    if (!Array.isArray(v) || !v.every((n) => Number.isSafeInteger(n))) {
      throw new ShimError('Internal', `${this.profile.name} ps printed ${abbreviate(r.stdout)}, not a JSON array of pids`);
    }
    return v as number[];
  }

  /** `update --resources - <id>` with the LinuxResources JSON on stdin. */
  async update(id: string, resourcesJson: string): Promise<void> {
    this.#supported('update');
    this.#id(id);
    let parsed: unknown;
    try {
      parsed = JSON.parse(resourcesJson);
    } catch (e) {
      throw new ShimError('InvalidArgument', `update resources are not valid JSON: ${(e as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ShimError('InvalidArgument', 'update resources must be a JSON object (OCI LinuxResources)');
    }
    await this.#invoke({
      op: 'update',
      args: ['update', '--resources', '-', id],
      stdio: ['pipe', 'pipe', 'pipe'],
      input: resourcesJson,
    });
  }

  async checkpoint(id: string, o: CheckpointOptions): Promise<void> {
    this.#supported('checkpoint');
    this.#id(id);
    const f = this.#flags('checkpoint');
    f.value('--image-path', req('imagePath', o.imagePath), true);
    f.value('--work-path', o.workPath, true);
    f.bool('--leave-running', o.leaveRunning, true);
    f.bool('--tcp-established', o.tcpEstablished, true);
    f.bool('--ext-unix-sk', o.externalUnixSockets, true);
    f.bool('--shell-job', o.shellJob, true);
    f.bool('--file-locks', o.fileLocks, true);
    for (const ns of o.emptyNamespaces ?? []) f.value('--empty-ns', req('emptyNamespaces[]', ns), true);
    f.value('--manage-cgroups-mode', o.cgroupsMode, true);
    const sub = this.profile.checkpointSubcommand ?? 'checkpoint';
    await this.#invoke({ op: 'checkpoint', args: [sub, ...f.args, id], stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** `restore --detach --bundle B --pid-file P --no-subreaper ... <id>`: starts the restored container; returns its pid. */
  async restore(id: string, o: RestoreOptions): Promise<number> {
    this.#supported('restore');
    this.#id(id);
    const f = this.#flags('restore');
    f.value('--image-path', req('imagePath', o.imagePath), true);
    f.value('--work-path', o.workPath, true);
    f.bool('--tcp-established', o.tcpEstablished, true);
    f.bool('--ext-unix-sk', o.externalUnixSockets, true);
    f.bool('--shell-job', o.shellJob, true);
    f.bool('--file-locks', o.fileLocks, true);
    f.bool('--detach', true, true);
    f.value('--bundle', this.bundle, true);
    f.value('--pid-file', req('pidFile', o.pidFile), true);
    f.value('--console-socket', o.consoleSocket, true);
    f.bool('--no-pivot', o.noPivot, true);
    f.bool('--no-subreaper', true, true);
    await this.#invoke({ op: 'restore', args: ['restore', ...f.args, id], stdio: o.stdio ?? ['ignore', 'ignore', 'ignore'] });
    return readPidFile(o.pidFile);
  }

  async state(id: string): Promise<RuntimeState> {
    this.#supported('state');
    this.#id(id);
    const r = await this.#invoke({ op: 'state', args: ['state', id], stdio: ['ignore', 'pipe', 'pipe'] });
    const v = this.#json('state', r.stdout);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new ShimError('Internal', `${this.profile.name} state printed ${abbreviate(r.stdout)}, not a JSON object`);
    }
    const s = v as Record<string, unknown>;
    const pid = typeof s.pid === 'number' && Number.isSafeInteger(s.pid) && s.pid > 0 ? s.pid : 0;
    const out: RuntimeState = {
      id: typeof s.id === 'string' ? s.id : id,
      pid,
      status: typeof s.status === 'string' ? s.status : 'unknown',
    };
    if (typeof s.bundle === 'string') out.bundle = s.bundle;
    return out;
  }

  /** The OCI features document (`<runtime> features`). */
  async features(): Promise<unknown> {
    this.#supported('features');
    const r = await this.#invoke({ op: 'features', args: ['features'], stdio: ['ignore', 'pipe', 'pipe'] });
    return this.#json('features', r.stdout);
  }

  // ---------------------------------------------------------------------------

  #supported(op: Operation): void {
    if (!this.profile.supports.has(op)) {
      throw new ShimError('Unimplemented', `${this.profile.name} does not support ${op}`);
    }
  }

  #id(id: string): void {
    if (!isIdentifier(id)) {
      throw new ShimError('InvalidArgument', `invalid container id ${JSON.stringify(id)}`);
    }
  }

  /** Collects optional flags of one subcommand, applying the profile's dispositions. */
  #flags(op: Operation) {
    const profile = this.profile;
    const args: string[] = [];
    const disposition = (flag: string, standard: boolean): FlagDisposition =>
      profile.flags.get(`${op} ${flag}`) ?? (standard ? 'pass' : 'reject');
    const use = (flag: string, standard: boolean): boolean => {
      const d = disposition(flag, standard);
      if (d === 'reject') throw new ShimError('Unimplemented', `${profile.name} does not support ${op} ${flag}`);
      return d === 'pass';
    };
    return {
      args,
      /** `flag value` when value is a non-empty string. */
      value(flag: string, value: string | undefined, standard: boolean): void {
        if (value === undefined || value === '') return;
        if (use(flag, standard)) args.push(flag, value);
      },
      /** `flag` when on is true. */
      bool(flag: string, on: boolean | undefined, standard: boolean): void {
        if (!on) return;
        if (use(flag, standard)) args.push(flag);
      },
    };
  }

  #json(op: Operation, stdout: string): unknown {
    try {
      return JSON.parse(stdout);
    } catch {
      throw new ShimError('Internal', `${this.profile.name} ${op} printed ${abbreviate(stdout)}, not JSON`);
    }
  }

  async #invoke(inv: Invocation): Promise<RunResult> {
    const { op } = inv;
    const name = this.profile.name;
    await this.#checkBinary();
    const logStart = await fileSize(this.logPath);
    const bundleExists = await isDirectory(this.bundle);
    const opts: RunOptions = { stdio: inv.stdio };
    if (bundleExists) opts.cwd = this.bundle;
    if (inv.input !== undefined) opts.input = inv.input;
    if (this.timeoutMs > 0 && !inv.noTimeout) opts.timeoutMs = this.timeoutMs;
    const args = [...this.globalArgs(), ...inv.args];
    if (inv.args[0]) opts.command = inv.args[0];
    const started = Date.now();
    let r: RunResult;
    try {
      r = await this.#run(this.binary, args, opts);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'ENOENT') throw this.#notFound(e);
      if (code === 'EACCES') {
        throw new ShimError('FailedPrecondition', `OCI runtime binary "${this.binary}" cannot be executed (permission denied)`, { cause: e });
      }
      throw new ShimError('Internal', `cannot run OCI runtime binary "${this.binary}": ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    const sub = inv.args[0];
    if (r.timedOut || (r.signal !== undefined && this.timeoutMs > 0 && Date.now() - started >= this.timeoutMs)) {
      throw new ShimError('DeadlineExceeded', `OCI runtime ${op} failed: ${name} ${sub} did not finish within ${this.timeoutMs} ms`);
    }
    if (!r.failed && r.exitCode === 0 && r.signal === undefined) return r;
    const logged = lastLogError(await readFrom(this.logPath, logStart));
    const said = logged ?? (r.stderr.trim() || r.stdout.trim());
    // killed before it said anything (SIGKILL, OOM): that is the whole story
    if (!said && r.signal !== undefined) throw new ShimError('Unknown', `OCI runtime ${op} failed: ${name} ${sub} was killed by ${r.signal} before it finished`);
    const msg = said || 'no error message';
    const detail = msg.startsWith(`${name} ${sub} failed`) ? msg : `${name} ${sub} failed: ${msg}`;
    const status = r.signal !== undefined ? `signal: ${r.signal}` : `exit status ${r.exitCode}`;
    // runc-v2 (runtimeError) gives only the runtime's last logged error when there is one; the
    // exit status only when the log said nothing.
    const message = logged !== undefined ? `OCI runtime ${op} failed: ${detail}` : `OCI runtime ${op} failed: ${detail}: ${status}`;
    throw new ShimError(classifyFailure(op, msg), message);
  }

  async #checkBinary(): Promise<void> {
    if (!this.binary.includes('/')) return; // looked up on PATH by the runner; ENOENT handled there
    try {
      await access(this.binary, fsConstants.X_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw this.#notFound(e);
      throw new ShimError('FailedPrecondition', `OCI runtime binary "${this.binary}" cannot be executed: ${(e as Error).message}`, { cause: e });
    }
  }

  #notFound(cause: unknown): ShimError {
    return new ShimError(
      'FailedPrecondition',
      `OCI runtime binary "${this.binary}" not found: install ${this.profile.name} or set BinaryName/binary in the handler config`,
      { cause },
    );
  }
}

function req(what: string, v: string): string {
  if (typeof v !== 'string' || v === '') throw new ShimError('InvalidArgument', `${what} is required`);
  if (v.startsWith('-')) throw new ShimError('InvalidArgument', `${what} must not start with "-": ${JSON.stringify(v)}`);
  return v;
}

function abbreviate(s: string): string {
  const t = s.trim();
  return JSON.stringify(t.length > 200 ? t.slice(0, 200) + '...' : t);
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

/** The part of `file` written after byte `offset` (all of it if it shrank); '' if missing. Capped at 1 MiB. */
async function readFrom(file: string, offset: number): Promise<string> {
  const cap = 1 << 20;
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = (await fh.stat()).size;
    let start = size < offset ? 0 : offset;
    if (size - start > cap) start = size - cap;
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch {
    return '';
  } finally {
    await fh.close();
  }
}

/**
 * `<binary> features` as containerd's runc shim runs it for `-info`: without global flags (there is
 * no bundle for --log and no namespace for --root when containerd asks; `features` reads neither).
 * The parsed document, or undefined when the profile has no OCI `features` (Debian's 2022 runsc
 * and crun 1.8 have none; the pinned runsc has one). Throws a ShimError when the binary cannot be run, fails, or prints
 * something that is not a JSON object.
 */
export async function runtimeFeatures(
  profile: RuntimeProfile,
  binary: string | undefined,
  run: CommandRunner,
  timeoutMs = 10_000,
): Promise<Record<string, unknown> | undefined> {
  if (!profile.supports.has('features')) return undefined;
  const bin = binary !== undefined && binary !== '' ? binary : profile.binary;
  let r: RunResult;
  try {
    r = await run(bin, ['features'], { stdio: ['ignore', 'pipe', 'pipe'], timeoutMs });
  } catch (e) {
    throw new ShimError('FailedPrecondition', `OCI runtime binary "${bin}" cannot be run: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  if (r.failed || r.exitCode !== 0) {
    throw new ShimError('Unknown', `${profile.name} features failed: ${abbreviate(r.stderr.trim() || r.stdout.trim() || 'no message')}: exit status ${r.exitCode}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    doc = undefined;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ShimError('Internal', `${profile.name} features printed ${abbreviate(r.stdout)}, not a JSON object`);
  }
  return doc as Record<string, unknown>;
}
