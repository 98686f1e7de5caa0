/**
 * cgroup file parsing with containerd/cgroups' number semantics: parseUint (negative -> 0),
 * "max" as 2^64-1 where v2 says so, "key value" files.
 */
import fs from 'node:fs';
import path from 'node:path';

/** math.MaxUint64, what containerd/cgroups v2 reports for "max" */
export const MAX_U64 = 18446744073709551615n;
export const MAX_U32 = 4294967295;

/** Where the parsers' reads go: the live filesystem, or a snapshot taken without blocking. */
export interface CgroupFiles {
  read(file: string): string | undefined;
  exists(file: string): boolean;
  list(dir: string): string[] | undefined;
}

const live: CgroupFiles = {
  read(file) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
  exists: (file) => fs.existsSync(file),
  list(dir) {
    try {
      return fs.readdirSync(dir);
    } catch {
      return undefined;
    }
  },
};

let current: CgroupFiles = live;

/** Run the (synchronous) parsers over `files` instead of the live filesystem. */
export function withFiles<T>(files: CgroupFiles, fn: () => T): T {
  const prev = current;
  current = files;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** Files the Stats parsers may read (never cgroup.procs or slabinfo, which can be large). */
const WANTED = /^(memory\.(stat|oom_control|events|current|max|swap\.(current|max)|(memsw\.|kmem\.(tcp\.)?)?(usage_in_bytes|max_usage_in_bytes|failcnt|limit_in_bytes)|usage_in_bytes|max_usage_in_bytes|failcnt|limit_in_bytes)|pids\.(current|max)|cpu\.stat|cpuacct\.(stat|usage|usage_percpu)|blkio\..*|hugetlb\..*|io\.stat|rdma\.(current|max)|cgroup\.controllers)$/;

/**
 * A snapshot of `dirs` (the files the parsers read) and of `files`, read with async I/O so a
 * Stats request never blocks the event loop; then `withFiles(snapshot, ...)` parses it.
 */
export async function snapshot(dirs: string[], files: string[] = []): Promise<CgroupFiles> {
  const content = new Map<string, string>();
  const listing = new Map<string, string[]>();
  const readInto = async (file: string) => {
    const text = await fs.promises.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) content.set(file, text);
  };
  await Promise.all([
    ...files.map(readInto),
    ...[...new Set(dirs)].map(async (dir) => {
      const names = await fs.promises.readdir(dir).catch(() => undefined);
      if (!names) return;
      listing.set(dir, names);
      await Promise.all(names.filter((n) => WANTED.test(n)).map((n) => readInto(path.join(dir, n))));
    }),
  ]);
  return {
    read: (file) => content.get(file),
    exists: (file) => content.has(file) || listing.has(file) || listing.get(path.dirname(file))?.includes(path.basename(file)) === true,
    list: (dir) => listing.get(dir),
  };
}

export function read(dir: string | undefined, file: string): string | undefined {
  return dir ? current.read(path.join(dir, file)) : undefined;
}

export function list(dir: string): string[] | undefined {
  return current.list(dir);
}

/** Go's cgroups parseUint: unsigned decimal; negative -> 0; anything else -> undefined. */
export function parseU64(s: string): bigint | undefined {
  if (/^\+?\d+$/.test(s)) {
    const v = BigInt(s);
    return v <= MAX_U64 ? v : undefined;
  }
  if (/^-\d+$/.test(s)) return 0n;
  return undefined;
}

/** readUint: the whole file as one number; undefined when missing or not a number. */
export function readU64(dir: string | undefined, file: string): bigint | undefined {
  const t = read(dir, file);
  return t === undefined ? undefined : parseU64(t.trim());
}

/** v2 getStatFileContentUint64: missing or unparsable -> 0, "max" -> 2^64-1. */
export function readU64OrMax(dir: string, file: string): bigint {
  const t = read(dir, file)?.trim();
  if (t === undefined) return 0n;
  if (t === 'max') return MAX_U64;
  return parseU64(t) ?? 0n;
}

/** "key value" lines -> map (lines that are not two fields with a number are skipped); undefined when missing. */
export function readKV(dir: string | undefined, file: string): Map<string, bigint> | undefined {
  const t = read(dir, file);
  if (t === undefined) return undefined;
  const out = new Map<string, bigint>();
  for (const line of t.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 2) continue;
    const v = parseU64(f[1]!);
    if (v !== undefined) out.set(f[0]!, v);
  }
  return out;
}

export const exists = (dir: string | undefined): dir is string => dir !== undefined && current.exists(dir);
export const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
