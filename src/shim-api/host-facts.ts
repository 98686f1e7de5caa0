/**
 * What `tsshim doctor` knows about a host, and the verdict a handler gives on it.
 * Plain data: src/composition/host.ts gathers the facts (PATH, `--version`, /proc, /sys,
 * /dev/kvm); each handler definition's assess() turns them into a Probe and is pure, so
 * verdicts for other hosts are tested with hand-written facts. The helpers at the end are
 * what most assess() functions share.
 */

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
  type: string;
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

// ---------------------------------------------------------------- helpers for assess()

export const NESTED_KVM = 'the CPU has no vmx/svm flag in /proc/cpuinfo (nested virtualisation without vmx/svm)';

/** "cgroups v2", or the hybrid layout with its v2 controllers. */
export function cgroupSummary(c: HostFacts['cgroup']): string {
  if (c.mode !== 'hybrid') return `cgroups ${c.mode}`;
  return `cgroups hybrid (v1 controllers + v2 at ${c.unifiedPath} with ${c.unifiedControllers.length ? c.unifiedControllers.join(',') : 'no controllers'})`;
}

/** The fact for a binary name (not looked up = not found). */
export function factOf(facts: HostFacts, name: string): BinaryFact {
  return facts.binaries[name] ?? { name };
}

export function verdict(
  handler: { type: string; runtimeEntry: string },
  bin: BinaryFact,
  usable: boolean,
  reason: string,
  details: Probe['details'] = {},
): Probe {
  return {
    type: handler.type,
    runtimeEntry: handler.runtimeEntry,
    usable,
    binary: bin.name,
    path: bin.path ?? null,
    version: bin.version ?? null,
    reason,
    details,
  };
}

/** Not found / `--version` failed: a Probe when that already decides, else undefined. */
export function binaryProblem(
  handler: { type: string; runtimeEntry: string },
  bin: BinaryFact,
  notInstalled: string,
  details: Probe['details'],
): Probe | undefined {
  if (!bin.path) return verdict(handler, bin, false, notInstalled, details);
  if (bin.versionError) return verdict(handler, bin, false, `${bin.path} is not runnable: ${bin.versionError}`, details);
  return undefined;
}
