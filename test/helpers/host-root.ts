// A scratch host root for the installer tests: the operator's own files, a snapshot of every path
// under it (type, mode, owner, bytes, link target, file mtime), and the differences between two.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface PathState {
  type: 'file' | 'dir' | 'link' | 'other';
  mode: number;
  uid: number;
  gid: number;
  sha256?: string;
  target?: string;
  mtimeMs?: number;
}

export type Snapshot = Map<string, PathState>;

/** Every path under root (relative, '/'-led), contents of `opaque` directories left out (their own entry kept). */
export function snapshot(root: string, opaque: readonly string[] = []): Snapshot {
  const out: Snapshot = new Map();
  const walk = (rel: string) => {
    const st = fs.lstatSync(path.join(root, rel));
    const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (st.isSymbolicLink()) out.set(rel, { type: 'link', ...base, target: fs.readlinkSync(path.join(root, rel)) });
    else if (st.isFile()) out.set(rel, { type: 'file', ...base, sha256: createHash('sha256').update(fs.readFileSync(path.join(root, rel))).digest('hex'), mtimeMs: Math.round(st.mtimeMs) });
    else if (st.isDirectory()) {
      if (opaque.includes(rel)) {
        out.set(rel, { type: 'dir', mode: -1, uid: -1, gid: -1 }); // its owner (containerd) sets mode and contents
        return;
      }
      out.set(rel, { type: 'dir', ...base });
      for (const n of fs.readdirSync(path.join(root, rel)).sort()) walk(rel === '/' ? `/${n}` : `${rel}/${n}`);
    } else out.set(rel, { type: 'other', ...base });
  };
  walk('/');
  return out;
}

/** Human-readable differences (empty: identical). */
export function diffSnapshots(before: Snapshot, after: Snapshot): string[] {
  const d: string[] = [];
  for (const [p, a] of before) {
    const b = after.get(p);
    if (!b) d.push(`missing: ${p}`);
    else if (JSON.stringify(a) !== JSON.stringify(b)) d.push(`changed: ${p}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`);
  }
  for (const p of after.keys()) if (!before.has(p)) d.push(`extra: ${p}`);
  return d;
}

/** Writes a file of the operator's with a whole-second mtime (restorable exactly by utimes). */
export function operatorFile(root: string, rel: string, text: string, mode = 0o644): string {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text, { mode });
  fs.chmodSync(p, mode);
  fs.utimesSync(p, 1_700_000_000, 1_700_000_000);
  return p;
}
