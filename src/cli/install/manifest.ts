/**
 * What `tsshim install` did to a host root, kept at <host-root>/var/lib/tsshim/install/: a
 * manifest.json of every directory, file, link and release tree it created or changed (host
 * paths), and under backups/ the exact bytes and metadata of every original it replaced or
 * edited. It is written after each step, so an interrupted install is still undone in full by
 * `tsshim uninstall`, which walks it backwards, drops each entry as it undoes it, and finally
 * removes the state directory itself.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { HostRoot } from './host.js';

export const STATE_DIR = '/var/lib/tsshim/install';
export const MANIFEST = `${STATE_DIR}/manifest.json`;
const BACKUPS = `${STATE_DIR}/backups`;

/** The original a file or link replaced: where its bytes are kept, and its metadata. */
export interface Backup {
  /** Under STATE_DIR/backups; absent for a link. */
  file?: string;
  type: 'file' | 'link';
  /** A link's target. */
  target?: string;
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
}

export type Entry =
  /** A directory install created (removed when empty at uninstall). */
  | { kind: 'dir'; path: string }
  /** A file install wrote: created (no backup) or replaced/edited (backup). */
  | { kind: 'file'; path: string; sha256: string; backup?: Backup; edit?: { import: string; addedLine: boolean } }
  /** A symbolic link install made. */
  | { kind: 'link'; path: string; target: string; backup?: Backup }
  /** A release directory (a whole tree install created). */
  | { kind: 'tree'; path: string };

export interface Manifest {
  format: 1;
  /** Paths written into host configs carry the host root (--prefix-paths). */
  prefixPaths: boolean;
  containerd?: { version: string; config: string; dropIn: string; source: string };
  release?: string;
  entries: Entry[];
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Bytes of a file at fs path p, or undefined when there is none. */
export function readIfFile(p: string): Buffer | undefined {
  try {
    return fs.lstatSync(p).isFile() ? fs.readFileSync(p) : undefined;
  } catch {
    return undefined;
  }
}

/** The manifest of a host root, or undefined when nothing is installed there. */
export function loadManifest(host: HostRoot): Manifest | undefined {
  const raw = readIfFile(host.at(MANIFEST));
  if (!raw) return undefined;
  const m = JSON.parse(raw.toString('utf8')) as Manifest;
  if (m.format !== 1) throw new Error(`${host.at(MANIFEST)}: unknown manifest format ${String(m.format)}`);
  return m;
}

/** Writes data at fs path p through a temporary file in the same directory and a rename. */
export function writeAtomic(p: string, data: Buffer | string, mode: number, owner?: { uid: number; gid: number }): void {
  const tmp = path.join(path.dirname(p), `.${path.basename(p)}.tsshim-${randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.chmodSync(tmp, mode);
    if (owner) fs.chownSync(tmp, owner.uid, owner.gid);
    fs.renameSync(tmp, p);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** A symlink at fs path p pointing at target, replacing whatever is there, atomically. */
export function linkAtomic(p: string, target: string): void {
  const tmp = path.join(path.dirname(p), `.${path.basename(p)}.tsshim-${randomBytes(4).toString('hex')}`);
  fs.symlinkSync(target, tmp);
  try {
    fs.renameSync(tmp, p);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** The install's record, persisted after every change. */
export class Ledger {
  readonly manifest: Manifest;
  private changed = false;

  constructor(
    readonly host: HostRoot,
    existing: Manifest | undefined,
  ) {
    this.manifest = existing ?? { format: 1, prefixPaths: host.prefixPaths, entries: [] };
  }

  /** Whether anything on the host changed since this ledger was opened. */
  get dirty(): boolean {
    return this.changed;
  }

  find<K extends Entry['kind']>(kind: K, p: string): Extract<Entry, { kind: K }> | undefined {
    return this.manifest.entries.find((e) => e.kind === kind && e.path === p) as Extract<Entry, { kind: K }> | undefined;
  }

  /** Adds or replaces the entry for its path and persists the manifest. */
  record(e: Entry): void {
    const i = this.manifest.entries.findIndex((x) => x.path === e.path);
    if (i >= 0) this.manifest.entries[i] = e;
    else this.manifest.entries.push(e);
    this.changed = true;
    this.save();
  }

  forget(p: string): void {
    this.manifest.entries = this.manifest.entries.filter((e) => e.path !== p);
    this.save();
  }

  /** Persists the manifest (creating the state directory, itself recorded, on first use). */
  save(): void {
    const dir = this.host.at(STATE_DIR);
    if (!fs.existsSync(dir)) this.ensureDirNoSave(STATE_DIR);
    const text = JSON.stringify(this.manifest, null, 2) + '\n';
    if (readIfFile(this.host.at(MANIFEST))?.toString('utf8') === text) return;
    writeAtomic(this.host.at(MANIFEST), text, 0o600);
  }

  setMeta(meta: Pick<Manifest, 'containerd' | 'release'>): void {
    const before = JSON.stringify([this.manifest.containerd, this.manifest.release]);
    Object.assign(this.manifest, meta);
    if (JSON.stringify([this.manifest.containerd, this.manifest.release]) !== before) this.save();
  }

  private ensureDirNoSave(p: string): void {
    const parts = p.split('/').filter(Boolean);
    let cur = '';
    for (const part of parts) {
      cur += '/' + part;
      const at = this.host.at(cur);
      if (fs.existsSync(at)) continue;
      fs.mkdirSync(at, { mode: 0o755 });
      fs.chmodSync(at, 0o755);
      this.manifest.entries.push({ kind: 'dir', path: cur });
      this.changed = true;
    }
  }

  /** mkdir -p of host path p; every directory it creates is recorded. */
  ensureDir(p: string): void {
    const n = this.manifest.entries.length;
    this.ensureDirNoSave(p);
    if (this.manifest.entries.length !== n) this.save();
  }

  /** Keeps the original at host path p (file or link) under backups/. */
  backup(p: string): Backup {
    const at = this.host.at(p);
    const st = fs.lstatSync(at);
    const meta = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs };
    if (st.isSymbolicLink()) return { type: 'link', target: fs.readlinkSync(at), ...meta };
    if (!st.isFile()) throw new Error(`${at} is neither a file nor a link: not replacing it`);
    this.ensureDir(BACKUPS);
    const file = `${BACKUPS.slice(STATE_DIR.length + 1)}/${randomBytes(4).toString('hex')}-${path.basename(p)}`;
    fs.copyFileSync(at, this.host.at(`${STATE_DIR}/${file}`));
    return { type: 'file', file, ...meta };
  }

  /** Puts a backup back at host path p: bytes, mode, owner and times (or the link). */
  restore(p: string, b: Backup): void {
    const at = this.host.at(p);
    if (b.type === 'link') {
      linkAtomic(at, b.target!);
      return;
    }
    const data = fs.readFileSync(this.host.at(`${STATE_DIR}/${b.file!}`));
    writeAtomic(at, data, b.mode, { uid: b.uid, gid: b.gid });
    fs.utimesSync(at, b.atimeMs / 1000, b.mtimeMs / 1000);
  }

  /** Removes the state directory (manifest and backups). */
  removeState(): void {
    fs.rmSync(this.host.at(STATE_DIR), { recursive: true, force: true });
  }
}
