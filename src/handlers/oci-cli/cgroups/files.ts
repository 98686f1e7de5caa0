/**
 * cgroup file parsing with containerd/cgroups' number semantics: parseUint (negative -> 0),
 * "max" as 2^64-1 where v2 says so, "key value" files.
 */
import fs from 'node:fs';
import path from 'node:path';

/** math.MaxUint64, what containerd/cgroups v2 reports for "max" */
export const MAX_U64 = 18446744073709551615n;
export const MAX_U32 = 4294967295;

export function read(dir: string | undefined, file: string): string | undefined {
  if (!dir) return undefined;
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
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

export const exists = (dir: string | undefined): dir is string => dir !== undefined && fs.existsSync(dir);
export const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
