/**
 * Host probing, in one place: backend binaries (PATH + `--version`), the cgroup layout
 * (v1 / v2 / hybrid), PID 1 and systemd, /dev/kvm and the CPU's virtualisation flag.
 * `tsshim doctor` (through each handler definition's pure assess()) and the conformance
 * report read the host through this module only. Operator tooling, never on a request
 * path: the small synchronous reads here are deliberate.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BinaryFact, CgroupMode, HostFacts } from '../shim-api/host-facts.js';
import { parseMountinfo } from '../sys/mountinfo.js';

export type { BinaryFact, CgroupMode, HostFacts } from '../shim-api/host-facts.js';

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
  for (const { fstype, mountPoint } of parseMountinfo(mountinfo)) {
    if (fstype === 'cgroup2' && (unifiedPath === undefined || mountPoint === '/sys/fs/cgroup')) unifiedPath = mountPoint;
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
