/**
 * The handler registry as data, for operator tools (`tsshim doctor`, `tsshim config`,
 * docs): one entry per handler type with its containerd runtime entry name, default
 * binary, operations, known differences, default config file and a host probe.
 *
 * No inversify here: the CLI imports this directly so that it starts light. The
 * registry test checks that its types match the factories bound in modules.ts.
 *
 * Probing is split in two: gatherHostFacts() reads the host (PATH, `--version`,
 * /proc, /sys, /dev/kvm); each entry's assess() turns facts into a verdict and is
 * pure, so the verdicts for other hosts can be tested with hand-written facts.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { HandlerConfig } from '../shim-api/handler.js';
import { ALL_OPERATIONS, RUNC_OPERATIONS, type Operation } from '../handlers/oci-cli/profile.js';
import { runcProfile } from '../handlers/runc/profile.js';
import { gvisorProfile } from '../handlers/gvisor/profile.js';
import { youkiProfile } from '../handlers/youki/profile.js';
import { crunProfile } from '../handlers/generic/profile.js';
import { kataDescription } from '../handlers/kata/describe.js';

export const RUNTIME_TYPE = 'io.containerd.tsshim.v2';
export const SHIM_BINARY = 'containerd-shim-tsshim-v2';

export type HandlerType = 'runc' | 'gvisor' | 'youki' | 'kata' | 'oci';

/** A backend binary as found on this host. */
export interface BinaryFact {
  /** What was looked for: a bare name (PATH) or an absolute path. */
  name: string;
  /** Resolved absolute path; undefined when not found. */
  path?: string;
  /** Parsed version, e.g. "1.1.5+ds1"; undefined when `--version` failed. */
  version?: string;
  /** Why `--version` failed, when it did. */
  versionError?: string;
}

export type CgroupMode = 'v1' | 'hybrid' | 'v2';

export interface HostFacts {
  binaries: Record<string, BinaryFact>;
  cgroup: {
    mode: CgroupMode;
    /** Mount point of the cgroup v2 hierarchy, if any (/sys/fs/cgroup or /sys/fs/cgroup/unified). */
    unifiedPath?: string;
    /** Controllers enabled in the v2 hierarchy (its cgroup.controllers). */
    unifiedControllers: string[];
    /** Controllers attached to v1 hierarchies (/proc/cgroups, hierarchy != 0). */
    v1Controllers: string[];
  };
  systemd: {
    /** /proc/1/comm is "systemd". */
    pid1: boolean;
    /** Name of PID 1, for messages. */
    pid1Name: string;
    /** /run/systemd/system exists: what runc checks before using the systemd cgroup driver. */
    booted: boolean;
  };
  kvm: { present: boolean; readWrite: boolean };
  /** Hardware virtualisation flag in /proc/cpuinfo. */
  cpuVirt: 'vmx' | 'svm' | null;
}

/** The verdict on one handler on this host. */
export interface Probe {
  type: HandlerType;
  runtimeEntry: string;
  usable: boolean;
  /** Binary looked for (after config overrides). */
  binary: string;
  path: string | null;
  version: string | null;
  /** One line an operator reads: why (not) usable. */
  reason: string;
  /** Host facts that led to the verdict, e.g. { platform: 'ptrace', cgroupMode: 'hybrid' }. */
  details: Record<string, string | boolean | null>;
}

export interface PodOverhead {
  memory: string;
  cpu: string;
  comment: string;
}

export interface HandlerEntry {
  type: HandlerType;
  /** containerd runtime entry and RuntimeClass handler name, e.g. "tsshim-gvisor". */
  runtimeEntry: string;
  /** File name of its handler config under the config dir, e.g. "gvisor.toml". */
  configFile: string;
  /** One-line description. */
  summary: string;
  /** Default backend binary (bare name looked up on PATH). */
  binary: string;
  supports: readonly Operation[];
  notes: readonly string[];
  /** containerd `pod_annotations` globs forwarded to this handler. */
  podAnnotations: readonly string[];
  privilegedWithoutHostDevices: boolean;
  /** RuntimeClass overhead.podFixed, when the handler costs a pod more than its containers. */
  podOverhead?: PodOverhead;
  /** Default handler config (TOML body of `<config-dir>/<configFile>`). */
  defaultConfig: string;
  /** Binaries the probe needs on this host, given an optional config. */
  binariesFor(config?: HandlerConfig): string[];
  /** Pure: the verdict for these host facts and an optional handler config (default: defaultConfig). */
  assess(facts: HostFacts, config?: HandlerConfig): Probe;
  /** Checks usability on this host. */
  probe(config?: HandlerConfig): Promise<Probe>;
}

// ---------------------------------------------------------------- host facts

/** Resolve a bare name on PATH (or check an absolute path): executable regular file. */
export function which(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  const ok = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/')) return ok(name) ? path.resolve(name) : undefined;
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    if (ok(p)) return p;
  }
  return undefined;
}

/** The version token of a `--version` output: "runc version 1.1.5+ds1" -> "1.1.5+ds1". */
export function parseVersion(output: string): string | undefined {
  const m = /\bversion[:\s]+v?([0-9][^\s,;"]*)/i.exec(output);
  if (m) return m[1];
  const first = output.split('\n').find((l) => l.trim() !== '');
  return first ? first.trim().slice(0, 60) : undefined;
}

function runVersion(file: string, timeoutMs = 5000): Promise<{ version?: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(file, ['--version'], { timeout: timeoutMs, maxBuffer: 64 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const out = `${stdout}\n${stderr}`;
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: unknown };
        const why = e.killed ? `timed out after ${timeoutMs} ms` : typeof e.code === 'number' ? `exit status ${e.code}` : e.message;
        resolve({ error: `${path.basename(file)} --version failed: ${why}${out.trim() ? `: ${out.trim().split('\n')[0]}` : ''}` });
        return;
      }
      resolve({ version: parseVersion(out) });
    });
  });
}

export async function probeBinary(name: string): Promise<BinaryFact> {
  const p = which(name);
  if (!p) return { name };
  const v = await runVersion(p);
  return { name, path: p, ...(v.version !== undefined ? { version: v.version } : {}), ...(v.error !== undefined ? { versionError: v.error } : {}) };
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Cgroup layout from /proc/self/mountinfo and /proc/cgroups. */
export function cgroupFacts(): HostFacts['cgroup'] {
  const mountinfo = readText('/proc/self/mountinfo') ?? '';
  let unifiedPath: string | undefined;
  let v1Mounted = false;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const fstype = line.slice(sep + 3).split(' ')[0];
    const mountPoint = fields[4];
    if (fstype === 'cgroup2' && mountPoint && (unifiedPath === undefined || mountPoint === '/sys/fs/cgroup')) unifiedPath = mountPoint;
    if (fstype === 'cgroup') v1Mounted = true;
  }
  const v1Controllers: string[] = [];
  for (const line of (readText('/proc/cgroups') ?? '').split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue;
    const [name, hierarchy, , enabled] = line.split(/\s+/);
    if (name && hierarchy !== '0' && enabled === '1') v1Controllers.push(name);
  }
  const unifiedControllers = unifiedPath ? (readText(path.join(unifiedPath, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean) : [];
  const mode: CgroupMode = unifiedPath === '/sys/fs/cgroup' && !v1Mounted ? 'v2' : unifiedPath ? 'hybrid' : 'v1';
  return { mode, ...(unifiedPath ? { unifiedPath } : {}), unifiedControllers, v1Controllers: v1Mounted ? v1Controllers : [] };
}

export function systemdFacts(): HostFacts['systemd'] {
  const pid1Name = (readText('/proc/1/comm') ?? '').trim() || 'unknown';
  let booted = false;
  try {
    booted = fs.statSync('/run/systemd/system').isDirectory();
  } catch {
    booted = false;
  }
  return { pid1: pid1Name === 'systemd', pid1Name, booted };
}

export function kvmFacts(): HostFacts['kvm'] {
  if (!fs.existsSync('/dev/kvm')) return { present: false, readWrite: false };
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return { present: true, readWrite: true };
  } catch {
    return { present: true, readWrite: false };
  }
}

export function cpuVirtFlag(cpuinfo = readText('/proc/cpuinfo') ?? ''): 'vmx' | 'svm' | null {
  for (const line of cpuinfo.split('\n')) {
    if (!/^flags\s*:/.test(line)) continue;
    if (/\bvmx\b/.test(line)) return 'vmx';
    if (/\bsvm\b/.test(line)) return 'svm';
  }
  return null;
}

/** Read this host: the given binaries (PATH + `--version`, in parallel), cgroups, systemd, KVM. */
export async function gatherHostFacts(binaries: Iterable<string>): Promise<HostFacts> {
  const names = [...new Set(binaries)];
  const found = await Promise.all(names.map(probeBinary));
  return {
    binaries: Object.fromEntries(found.map((b) => [b.name, b])),
    cgroup: cgroupFacts(),
    systemd: systemdFacts(),
    kvm: kvmFacts(),
    cpuVirt: cpuVirtFlag(),
  };
}

// ---------------------------------------------------------------- verdicts

const NESTED_KVM = 'the CPU has no vmx/svm flag in /proc/cpuinfo (nested virtualisation without vmx/svm)';

function cgroupSummary(c: HostFacts['cgroup']): string {
  if (c.mode !== 'hybrid') return `cgroups ${c.mode}`;
  return `cgroups hybrid (v1 controllers + v2 at ${c.unifiedPath} with ${c.unifiedControllers.length ? c.unifiedControllers.join(',') : 'no controllers'})`;
}

function verdict(
  entry: Pick<HandlerEntry, 'type' | 'runtimeEntry'>,
  bin: BinaryFact,
  usable: boolean,
  reason: string,
  details: Probe['details'] = {},
): Probe {
  return {
    type: entry.type,
    runtimeEntry: entry.runtimeEntry,
    usable,
    binary: bin.name,
    path: bin.path ?? null,
    version: bin.version ?? null,
    reason,
    details,
  };
}

function factOf(facts: HostFacts, name: string): BinaryFact {
  return facts.binaries[name] ?? { name };
}

/** Common part: not found / `--version` failed. Returns a Probe when that already decides. */
function binaryProblem(entry: Pick<HandlerEntry, 'type' | 'runtimeEntry'>, bin: BinaryFact, notInstalled: string, details: Probe['details']): Probe | undefined {
  if (!bin.path) return verdict(entry, bin, false, notInstalled, details);
  if (bin.versionError) return verdict(entry, bin, false, `${bin.path} is not runnable: ${bin.versionError}`, details);
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Year of a runsc build from versions like "0.0~20221219.0" or "release-20230417.0". */
export function runscBuildYear(version: string | undefined): number | undefined {
  const m = /(?:~|release-|^)(20\d{2})(\d{4})/.exec(version ?? '');
  return m ? Number(m[1]) : undefined;
}

function assessRunc(this: HandlerEntry, facts: HostFacts, config?: HandlerConfig): Probe {
  const bin = factOf(facts, this.binariesFor(config)[0]!);
  const systemdUsable = facts.systemd.pid1 && facts.systemd.booted;
  const details: Probe['details'] = {
    cgroupMode: facts.cgroup.mode,
    systemdPid1: facts.systemd.pid1,
    systemdCgroup: systemdUsable,
  };
  const early = binaryProblem(this, bin, `not installed: ${bin.name} not found on PATH (Debian: apt-get install runc)`, details);
  if (early) return early;
  const systemd = systemdUsable
    ? 'systemd is PID 1: SystemdCgroup usable'
    : `systemd is not PID 1 (PID 1 is ${facts.systemd.pid1Name}): SystemdCgroup unusable, cgroupfs driver only`;
  if (config?.options.systemd_cgroup === true && !systemdUsable) {
    return verdict(
      this,
      bin,
      false,
      `systemd_cgroup = true but ${systemd.replace(': SystemdCgroup unusable, cgroupfs driver only', '')}: runc fails with "systemd not running on this host, cannot use systemd cgroups manager"; set systemd_cgroup = false`,
      details,
    );
  }
  return verdict(this, bin, true, `runc ${bin.version ?? '(version unknown)'}; ${cgroupSummary(facts.cgroup)}; ${systemd}`, details);
}

function assessGvisor(this: HandlerEntry, facts: HostFacts, config?: HandlerConfig): Probe {
  const bin = factOf(facts, this.binariesFor(config)[0]!);
  const platform = str(config?.options.platform) ?? 'ptrace';
  const details: Probe['details'] = {
    platform,
    kvmDevice: facts.kvm.present,
    cpuVirt: facts.cpuVirt,
  };
  const early = binaryProblem(this, bin, `not installed: ${bin.name} not found on PATH (Debian: apt-get install runsc)`, details);
  if (early) return early;
  const v = `runsc ${bin.version ?? '(version unknown)'}`;
  const kvmState = !facts.kvm.present
    ? 'kvm platform unusable: no /dev/kvm'
    : !facts.kvm.readWrite
      ? 'kvm platform unusable: /dev/kvm is not readable and writable'
      : !facts.cpuVirt
        ? `kvm platform hangs on this host: ${NESTED_KVM}`
        : `kvm platform possible (/dev/kvm, ${facts.cpuVirt})`;
  switch (platform) {
    case 'ptrace':
      return verdict(this, bin, true, `${v}; platform ptrace OK; ${kvmState}`, details);
    case 'systrap': {
      const year = runscBuildYear(bin.version);
      if (year !== undefined && year < 2023) {
        return verdict(this, bin, false, `${v} predates the systrap platform (runsc >= 2023): use platform = "ptrace"`, details);
      }
      return verdict(this, bin, true, `${v}; platform systrap OK`, details);
    }
    case 'kvm': {
      const ok = facts.kvm.present && facts.kvm.readWrite && facts.cpuVirt !== null;
      return verdict(this, bin, ok, ok ? `${v}; platform kvm: /dev/kvm and ${facts.cpuVirt} present` : `${v}; platform kvm: ${kvmState}; use platform = "ptrace"`, details);
    }
    default:
      return verdict(this, bin, false, `unknown gVisor platform "${platform}": use ptrace, systrap or kvm`, details);
  }
}

function assessYouki(this: HandlerEntry, facts: HostFacts, config?: HandlerConfig): Probe {
  const bin = factOf(facts, this.binariesFor(config)[0]!);
  const details: Probe['details'] = { cgroupMode: facts.cgroup.mode };
  const early = binaryProblem(this, bin, 'not installed: youki is not packaged for Debian 12; install from its releases', details);
  if (early) return early;
  return verdict(this, bin, true, `youki ${bin.version ?? '(version unknown)'}; ${cgroupSummary(facts.cgroup)}`, details);
}

function assessKata(this: HandlerEntry, facts: HostFacts, config?: HandlerConfig): Probe {
  const bin = factOf(facts, this.binariesFor(config)[0]!);
  const details: Probe['details'] = {
    kvmDevice: facts.kvm.present,
    kvmReadWrite: facts.kvm.readWrite,
    cpuVirt: facts.cpuVirt,
  };
  const problems: string[] = [];
  if (!bin.path) problems.push(`not installed: ${bin.name} not found on PATH (Kata Containers is not packaged for Debian 12; install from its releases)`);
  else if (bin.versionError) problems.push(`${bin.path} is not runnable: ${bin.versionError}`);
  if (!facts.kvm.present) problems.push('no /dev/kvm: Kata needs hardware virtualisation');
  else if (!facts.kvm.readWrite) problems.push('/dev/kvm is not readable and writable by this user');
  if (!facts.cpuVirt) problems.push(`${NESTED_KVM}: Kata VMs cannot run`);
  if (problems.length) return verdict(this, bin, false, problems.join('; '), details);
  return verdict(this, bin, true, `${bin.name} ${bin.version ?? '(version unknown)'}; /dev/kvm read-write; CPU has ${facts.cpuVirt}`, details);
}

function assessOci(this: HandlerEntry, facts: HostFacts, config?: HandlerConfig): Probe {
  const bin = factOf(facts, this.binariesFor(config)[0]!);
  const c = facts.cgroup;
  const details: Probe['details'] = { cgroupMode: c.mode };
  const early = binaryProblem(this, bin, `not installed: ${bin.name} not found on PATH`, details);
  if (early) return early;
  const label = path.basename(bin.name);
  const isCrun = /^crun\b/.test(label);
  if (isCrun && c.mode === 'hybrid' && c.unifiedControllers.length > 0 && c.v1Controllers.length > 0) {
    return verdict(
      this,
      bin,
      false,
      `crun fails on hybrid cgroup layout: v1 controllers are mounted and the v2 hierarchy at ${c.unifiedPath} has controllers (${c.unifiedControllers.join(',')}); crun${bin.version ? ` ${bin.version}` : ''} says "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"`,
      details,
    );
  }
  return verdict(this, bin, true, `${label} ${bin.version ?? '(version unknown)'}; ${cgroupSummary(c)}`, details);
}

// ---------------------------------------------------------------- entries

const HEADER = (type: string, what: string) =>
  `# tsshim handler config: ${type} (${what}).\n# Written by \`tsshim config handlers\`; format in src/composition/config.ts, docs/handlers/${type}.md.\n`;

const COMMON = `debug = false                       # raise the shim's log level
allow_annotation_override = false   # may the io.tsshim.handler annotation pick another handler?
`;

const crunUnsupported = RUNC_OPERATIONS.filter((op) => !crunProfile.supports.has(op));

function entry(e: Omit<HandlerEntry, 'probe' | 'binariesFor'> & { binaryFor: (config?: HandlerConfig) => string }): HandlerEntry {
  const { binaryFor, ...rest } = e;
  const self: HandlerEntry = {
    ...rest,
    binariesFor: (config) => [binaryFor(config)],
    async probe(config?: HandlerConfig) {
      return self.assess(await gatherHostFacts(self.binariesFor(config)), config);
    },
  };
  self.assess = e.assess.bind(self);
  return Object.freeze(self);
}

const runc = entry({
  type: 'runc',
  runtimeEntry: 'tsshim-runc',
  configFile: 'runc.toml',
  summary: 'runc, the reference OCI runtime (default handler)',
  binary: runcProfile.binary,
  binaryFor: (config) => config?.binary ?? runcProfile.binary,
  supports: [...runcProfile.supports],
  notes: runcProfile.notes ?? [],
  podAnnotations: [],
  privilegedWithoutHostDevices: false,
  defaultConfig: `${HEADER('runc', 'the reference OCI runtime')}
handler = "runc"
name = "tsshim-runc"
# binary = "${runcProfile.binary}"                 # name on PATH or absolute path
# root = "${runcProfile.defaultRoot}"   # state root; the containerd namespace is appended
${COMMON}
[options]
systemd_cgroup = false              # true needs systemd as PID 1
# criu_path = "/usr/sbin/criu"      # CRIU binary for checkpoint/restore
# extra_args = []                   # more runc global flags
`,
  assess: assessRunc,
});

const gvisor = entry({
  type: 'gvisor',
  runtimeEntry: 'tsshim-gvisor',
  configFile: 'gvisor.toml',
  summary: 'gVisor through runsc\'s runc-compatible CLI (application kernel sandbox)',
  binary: gvisorProfile.binary,
  binaryFor: (config) => config?.binary ?? gvisorProfile.binary,
  supports: [...gvisorProfile.supports].filter((op) => !gvisorProfile.shimUnsupported[op]),
  notes: gvisorProfile.notes ?? [],
  podAnnotations: ['dev.gvisor.*'],
  privilegedWithoutHostDevices: false,
  defaultConfig: `${HEADER('gvisor', 'gVisor through runsc')}
handler = "gvisor"
name = "tsshim-gvisor"
# binary = "${gvisorProfile.binary}"
# root = "${gvisorProfile.defaultRoot}"
${COMMON}
[options]
platform = "ptrace"   # ptrace | systrap (runsc >= 2023) | kvm (needs /dev/kvm and vmx/svm)
network = "none"      # none | sandbox (needs a CNI-prepared network namespace) | host
# debug_log_dir = "/var/log/runsc"   # per-command runsc debug logs

# [options.runsc_config]  # more runsc global flags: key = value becomes --key=value
# overlay2 = "root:memory"
`,
  assess: assessGvisor,
});

const youki = entry({
  type: 'youki',
  runtimeEntry: 'tsshim-youki',
  configFile: 'youki.toml',
  summary: 'youki, a runc-compatible OCI runtime in Rust',
  binary: youkiProfile.binary,
  binaryFor: (config) => config?.binary ?? youkiProfile.binary,
  supports: [...youkiProfile.supports],
  notes: youkiProfile.notes ?? [],
  podAnnotations: [],
  privilegedWithoutHostDevices: false,
  defaultConfig: `${HEADER('youki', 'runc-compatible runtime in Rust')}
handler = "youki"
name = "tsshim-youki"
# binary = "/usr/local/bin/youki"   # default: youki on PATH
# root = "${youkiProfile.defaultRoot}"
${COMMON}
[options]
systemd_cgroup = false
`,
  assess: assessYouki,
});

const kata = entry({
  type: 'kata',
  runtimeEntry: 'tsshim-kata',
  configFile: 'kata.toml',
  summary: 'Kata Containers: delegates the task API to containerd-shim-kata-v2 (a VM per pod)',
  binary: kataDescription.binary,
  binaryFor: (config) => str(config?.options.shim) ?? config?.binary ?? kataDescription.binary,
  supports: kataDescription.supports,
  notes: kataDescription.notes,
  podAnnotations: ['io.katacontainers.*'],
  privilegedWithoutHostDevices: true,
  podOverhead: {
    memory: '160Mi',
    cpu: '250m',
    comment: 'the pod VM: hypervisor, guest kernel and kata-agent, charged to every pod (kata-deploy used 160Mi/250m; measure yours)',
  },
  defaultConfig: `${HEADER('kata', 'delegates to containerd-shim-kata-v2')}
handler = "kata"
name = "tsshim-kata"
${COMMON}
[options]
shim = "${kataDescription.binary}"   # the delegate shim v2 binary (name on PATH or absolute path)
# config_path = "/opt/kata/share/defaults/kata-containers/configuration.toml"   # Kata's own config
`,
  assess: assessKata,
});

const oci = entry({
  type: 'oci',
  runtimeEntry: `tsshim-${crunProfile.name}`,
  configFile: 'oci.toml',
  summary: 'any runc-compatible OCI runtime by configuration (default: crun)',
  binary: crunProfile.binary,
  binaryFor: (config) => config?.binary ?? crunProfile.binary,
  supports: [...crunProfile.supports],
  notes: crunProfile.notes ?? [],
  podAnnotations: [],
  privilegedWithoutHostDevices: false,
  defaultConfig: `${HEADER('oci', 'any runc-compatible runtime; here crun')}
handler = "oci"
name = "tsshim-${crunProfile.name}"
binary = "${crunProfile.binary}"                     # required: name on PATH or absolute path
root = "${crunProfile.defaultRoot}"
${COMMON}
[options]
global_args = []                    # runtime global flags, e.g. ["--cgroup-manager=cgroupfs"]
unsupported = ${JSON.stringify(crunUnsupported)}   # operations the binary lacks
`,
  assess: assessOci,
});

/** Every handler type, in display order (runc first: the default). */
export const registry: readonly HandlerEntry[] = Object.freeze([runc, gvisor, youki, kata, oci]);

export const DEFAULT_HANDLER: HandlerType = 'runc';

/** Look an entry up by type ("oci"), runtime entry ("tsshim-crun") or entry suffix ("crun"). */
export function findHandler(name: string): HandlerEntry | undefined {
  return registry.find((e) => e.type === name || e.runtimeEntry === name || e.runtimeEntry === `tsshim-${name}`);
}

/** Probe every entry with one gathering of host facts; `configs` overrides per type. */
export async function probeAll(configs: Partial<Record<string, HandlerConfig>> = {}, entries: readonly HandlerEntry[] = registry): Promise<Probe[]> {
  const facts = await gatherHostFacts(entries.flatMap((e) => e.binariesFor(configs[e.type])));
  return entries.map((e) => e.assess(facts, configs[e.type]));
}
