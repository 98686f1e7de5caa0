/**
 * `tsshim install` and `tsshim uninstall` (issue 13.3, docs/adr/0022-cluster-installer.md).
 *
 * install, into a host root (the DaemonSet's /host):
 *   /opt/tsshim/releases/<version>-<hash>/   the package (bin, dist, production node_modules) and the
 *                                            Node binary that runs it (bin/node; --node host: none)
 *   /opt/tsshim/current -> releases/<id>     switched atomically; running shims keep their release
 *   /usr/local/bin/containerd-shim-tsshim-v2 -> ../../../opt/tsshim/current/bin/containerd-shim-tsshim-v2
 *   /usr/local/bin/tsshim                    a sh wrapper running the CLI with that Node
 *   /etc/tsshim/<type>.toml                  handler configs (an operator's own file is kept)
 *   /etc/containerd/conf.d/tsshim.toml       the drop-in: runtime entries (containerd.ts)
 *   /etc/containerd/config.toml              one edit: the drop-in in `imports`, unless already covered
 *   /var/lib/tsshim/install/                 manifest + backups (manifest.ts)
 * then checks what the host will run (the copied node, the installed CLI, `containerd config dump`),
 * and restarts containerd with --restart-cmd when its config changed (containerd has no reload).
 *
 * uninstall walks the manifest backwards: originals back byte for byte (with mode, owner, times),
 * everything created removed. Both are idempotent.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { renderHandlerConfig } from '../../composition/handler-config.js';
import type { HandlerDefinition } from '../../shim-api/definition.js';
import { SHIM_BINARY } from '../../shim-api/runtime-type.js';
import {
  CRI_V2,
  DEFAULT_CONTAINERD_CONFIG,
  DEFAULT_DROP_IN,
  detectContainerd,
  importsCover,
  loadConfigChain,
  renderDropIn,
  renderNewMainConfig,
  replacesPluginTables,
  verifyDump,
} from './containerd.js';
import { HostRoot } from './host.js';
import { Ledger, STATE_DIR, linkAtomic, loadManifest, readIfFile, sha256, writeAtomic, type Entry } from './manifest.js';
import { PACKAGE_ROOT, packageVersion, stagePackage } from './package-tree.js';
import { addImport, importsOf, removeImport } from './toml-edit.js';

export const INSTALL_DIR = '/opt/tsshim';
export const RELEASES = `${INSTALL_DIR}/releases`;
export const CURRENT = `${INSTALL_DIR}/current`;
export const CONFIG_DIR = '/etc/tsshim';
export const BIN_DIR = '/usr/local/bin';

export interface InstallOptions {
  hostRoot: string;
  /** Host path of containerd's main config (default /etc/containerd/config.toml). */
  containerdConfig?: string;
  /** Run with `sh -c` after containerd's config changed, e.g. "systemctl restart containerd". */
  restartCmd?: string;
  handlers: readonly HandlerDefinition[];
  /** 1.6 | 1.7 | 2, when the host's containerd cannot be asked. */
  containerdVersion?: string;
  /** Host path of the drop-in (default /etc/containerd/conf.d/tsshim.toml). */
  dropIn?: string;
  /** Paths written into configs carry the host root (a containerd running beside the installer). */
  prefixPaths?: boolean;
  /** copy: the running Node goes along as bin/node (default); host: the host's node on PATH runs it. */
  node?: 'copy' | 'host';
  /** Replace an operator's own handler config files too (they are backed up). */
  force?: boolean;
  /** Package to install (default: the one this code runs from). */
  packageRoot?: string;
  out: (line: string) => void;
}

class InstallError extends Error {}

/** Host path of the main config, following a final symlink inside the host root. */
function resolveMain(host: HostRoot, p: string): string {
  let cur = p;
  for (let hops = 0; hops < 8; hops++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(host.at(cur));
    } catch {
      return cur; // absent: created
    }
    if (!st.isSymbolicLink()) {
      if (!st.isFile()) throw new InstallError(`${host.at(cur)} is not a file`);
      return cur;
    }
    const t = fs.readlinkSync(host.at(cur));
    cur = path.isAbsolute(t) ? (host.prefixPaths && t.startsWith(host.root + '/') ? t.slice(host.root.length) : t) : path.join(path.dirname(cur), t);
  }
  throw new InstallError(`${p}: too many symbolic links`);
}

type Policy = 'keep-operator' | 'replace';

class Installer {
  readonly ledger: Ledger;
  private readonly host: HostRoot;
  private readonly out: (line: string) => void;

  constructor(
    host: HostRoot,
    ledger: Ledger,
    private readonly force: boolean,
    out: (line: string) => void,
  ) {
    this.host = host;
    this.ledger = ledger;
    this.out = out;
  }

  /** Writes a file at host path p; returns what happened. */
  putFile(p: string, content: string, mode: number, policy: Policy): 'created' | 'updated' | 'unchanged' | 'kept' {
    const at = this.host.at(p);
    const want = Buffer.from(content);
    const cur = readIfFile(at);
    const exists = this.host.has(p);
    if (exists && !cur && !fs.lstatSync(at).isSymbolicLink()) throw new InstallError(`${at} exists and is not a file: not replacing it`);
    const entry = this.ledger.find('file', p);
    if (entry) {
      if (cur?.equals(want)) return 'unchanged';
      if (cur && sha256(cur) !== entry.sha256 && policy === 'keep-operator' && !this.force) {
        this.out(`kept ${p}: changed since tsshim installed it (--force replaces it)`);
        return 'kept';
      }
      this.ledger.record({ ...entry, sha256: sha256(want) });
      writeAtomic(at, want, mode);
      return 'updated';
    }
    if (exists) {
      if (cur?.equals(want)) return 'unchanged'; // the operator's own, identical: stays theirs
      if (policy === 'keep-operator' && !this.force) {
        this.out(`kept ${p}: not written by tsshim (--force replaces it, keeping a backup)`);
        return 'kept';
      }
      const backup = this.ledger.backup(p);
      this.ledger.record({ kind: 'file', path: p, sha256: sha256(want), backup });
      writeAtomic(at, want, mode);
      this.out(`replaced ${p} (original kept for uninstall)`);
      return 'updated';
    }
    this.ledger.ensureDir(path.dirname(p));
    this.ledger.record({ kind: 'file', path: p, sha256: sha256(want) });
    writeAtomic(at, want, mode);
    return 'created';
  }

  /** A symlink at host path p to target (relative targets stay valid in every view). */
  putLink(p: string, target: string): 'created' | 'updated' | 'unchanged' {
    const at = this.host.at(p);
    const entry = this.ledger.find('link', p);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(at);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() && fs.readlinkSync(at) === target) {
      if (entry && entry.target !== target) this.ledger.record({ ...entry, target });
      return 'unchanged';
    }
    if (st?.isDirectory()) throw new InstallError(`${at} is a directory: not replacing it`);
    const backup = entry ? entry.backup : st ? this.ledger.backup(p) : undefined;
    if (!st) this.ledger.ensureDir(path.dirname(p));
    this.ledger.record({ kind: 'link', path: p, target, ...(backup ? { backup } : {}) });
    linkAtomic(at, target);
    if (backup && !entry) this.out(`replaced ${p} (original kept for uninstall)`);
    return entry ? 'updated' : 'created';
  }

  /** The release directory for this package (copied once; identical content reuses it). */
  stageRelease(root: string, node: string | undefined, version: string): string {
    const probe = stagePackage('', { root, node, hashOnly: true });
    const id = `${version}-${probe.hash.slice(0, 12)}`;
    const rel = `${RELEASES}/${id}`;
    if (this.host.has(rel)) {
      if (!this.ledger.find('tree', rel)) throw new InstallError(`${this.host.at(rel)} exists but is not in the install manifest: remove it, or tsshim uninstall first`);
      return id;
    }
    this.ledger.ensureDir(RELEASES);
    const staging = `${RELEASES}/.staging-${id}`;
    fs.rmSync(this.host.at(staging), { recursive: true, force: true });
    this.ledger.record({ kind: 'tree', path: staging });
    const r = stagePackage(this.host.at(staging), { root, node });
    if (r.hash !== probe.hash) throw new InstallError(`the package under ${root} changed while it was being copied`);
    fs.renameSync(this.host.at(staging), this.host.at(rel));
    this.ledger.forget(staging);
    this.ledger.record({ kind: 'tree', path: rel });
    this.out(`copied tsshim ${version} to ${rel} (${r.files} files, ${(r.bytes / 1048576).toFixed(1)} MiB${node ? `, Node from ${node}` : ''})`);
    return id;
  }

  /** Release trees other than `keep` that no process runs from are removed. */
  pruneReleases(keep: string): void {
    for (const e of [...this.ledger.manifest.entries]) {
      if (e.kind !== 'tree' || e.path === `${RELEASES}/${keep}`) continue;
      const users = this.host.processesUsing(e.path);
      if (users.length) {
        this.out(`kept ${e.path}: in use by pid ${users.map((u) => u.pid).join(', ')}`);
        continue;
      }
      fs.rmSync(this.host.at(e.path), { recursive: true, force: true });
      this.ledger.forget(e.path);
      this.out(`removed ${e.path} (an earlier release no process runs from)`);
    }
  }
}

function runRestart(cmd: string, out: (line: string) => void): boolean {
  out(`restarting containerd: sh -c ${JSON.stringify(cmd)}`);
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  if (r.status === 0) return true;
  out(`the restart command failed (${r.error ? r.error.message : r.signal ? `signal ${r.signal}` : `exit ${r.status}`})`);
  return false;
}

function hostCliWrapper(host: HostRoot): string {
  const bin = host.seen(`${CURRENT}/bin`);
  return [
    '#!/bin/sh',
    '# tsshim, installed by `tsshim install`: the CLI with the Node it came with (else node on PATH).',
    `d=${bin}`,
    '[ -x "$d/node" ] && exec "$d/node" "$d/tsshim" "$@"',
    'exec node "$d/tsshim" "$@"',
    '',
  ].join('\n');
}

export function install(o: InstallOptions): number {
  const host = new HostRoot(o.hostRoot, o.prefixPaths === true);
  if (!fs.statSync(host.root, { throwIfNoEntry: false })?.isDirectory()) throw new InstallError(`--host-root ${host.root} is not a directory`);
  const previous = loadManifest(host);
  if (previous && previous.prefixPaths !== host.prefixPaths) {
    throw new InstallError(`the installation under ${host.root} was made ${previous.prefixPaths ? 'with' : 'without'} --prefix-paths: use the same, or tsshim uninstall first`);
  }
  const ledger = new Ledger(host, previous);
  const inst = new Installer(host, ledger, o.force === true, o.out);
  try {
    return doInstall(o, host, inst, previous !== undefined);
  } catch (err) {
    if (!previous && ledger.manifest.entries.length) {
      o.out(`install failed: ${(err as Error).message}`);
      o.out('undoing what this install did');
      undo(host, ledger, o.out);
      throw new InstallError('nothing was installed');
    }
    throw err;
  }
}

function doInstall(o: InstallOptions, host: HostRoot, inst: Installer, reinstall: boolean): number {
  const { ledger } = inst;
  const out = o.out;
  const mainPath = o.containerdConfig ?? ledger.manifest.containerd?.config ?? DEFAULT_CONTAINERD_CONFIG;
  if (!path.isAbsolute(mainPath)) throw new InstallError(`--containerd-config must be an absolute path on the host, got "${mainPath}"`);
  const mainReal = resolveMain(host, mainPath);
  const mainText = readIfFile(host.at(mainReal))?.toString('utf8');
  const cd = detectContainerd(host, mainText, o.containerdVersion);
  out(`containerd ${cd.version === '2' ? '2.x' : cd.version} (${cd.source}); config ${mainReal}${mainText === undefined ? ' (none yet: created)' : ''}`);

  const dropIn = o.dropIn ?? ledger.manifest.containerd?.dropIn ?? DEFAULT_DROP_IN;
  if (!path.isAbsolute(dropIn)) throw new InstallError(`--drop-in must be an absolute path on the host, got "${dropIn}"`);
  const dropInSeen = host.seen(dropIn);
  const mainSeen = host.seen(mainReal);

  // The main config as it will be: unchanged when its imports already take the drop-in in.
  let plannedMain: { text: string; addedLine: boolean } | undefined;
  if (mainText === undefined) plannedMain = { text: renderNewMainConfig(cd.version, dropInSeen), addedLine: true };
  else if (!importsCover(host, mainSeen, importsOf(mainText), dropInSeen)) plannedMain = addImport(mainText, dropInSeen);
  const chain = loadConfigChain(host, mainSeen, plannedMain?.text ?? mainText, dropInSeen, CRI_V2);
  if (replacesPluginTables(cd.version) && chain.criAfterDropIn.length) {
    throw new InstallError(
      `${chain.criAfterDropIn.join(', ')} ${chain.criAfterDropIn.length > 1 ? 'are' : 'is'} imported after ${dropIn} and bring${chain.criAfterDropIn.length > 1 ? '' : 's'} a CRI table, which on containerd ${cd.version} replaces the drop-in's (and tsshim's runtimes with it): move that table into the main config, or pass --drop-in at a later place`,
    );
  }

  // 1. the package, the Node binary, the links
  const root = o.packageRoot ?? PACKAGE_ROOT;
  const version = packageVersion(root);
  const id = inst.stageRelease(root, o.node === 'host' ? undefined : process.execPath, version);
  if (o.node !== 'host') {
    const r = host.run(`${RELEASES}/${id}/bin/node`, ['--version'], 30_000);
    const major = /^v(\d+)\./.exec(r.stdout.trim())?.[1];
    if (r.status !== 0 || !major || Number(major) < 20) {
      throw new InstallError(
        `the Node binary copied from ${process.execPath} does not run on the host (${r.argv.join(' ')}: ${(r.stderr || r.stdout).trim() || `exit ${r.status}`}): ` +
          'it needs the host\'s glibc and libstdc++; install Node >= 20 on the host and pass --node host',
      );
    }
  }
  inst.putLink(CURRENT, `releases/${id}`);
  const shimLink = `${BIN_DIR}/${SHIM_BINARY}`;
  inst.putLink(shimLink, path.relative(BIN_DIR, `${CURRENT}/bin/${SHIM_BINARY}`));
  inst.putFile(`${BIN_DIR}/tsshim`, hostCliWrapper(host), 0o755, 'replace');

  // 2. handler configs
  const written: string[] = [];
  for (const e of o.handlers) {
    const p = `${CONFIG_DIR}/${e.configFile}`;
    const r = inst.putFile(p, renderHandlerConfig(e), 0o644, 'keep-operator');
    if (r === 'created' || r === 'updated') written.push(p);
  }
  if (written.length) out(`wrote ${written.join(', ')}`);
  // handlers an earlier install wrote and this one no longer names (--handlers): their files go, unless edited since
  const wanted = new Set(o.handlers.map((e) => `${CONFIG_DIR}/${e.configFile}`));
  for (const e of [...ledger.manifest.entries]) {
    if (e.kind !== 'file' || path.dirname(e.path) !== CONFIG_DIR || wanted.has(e.path) || e.backup) continue;
    const cur = readIfFile(host.at(e.path));
    if (cur && sha256(cur) !== e.sha256) continue;
    fs.rmSync(host.at(e.path), { force: true });
    ledger.forget(e.path);
    out(`removed ${e.path} (its handler is no longer installed)`);
  }

  // 3. the drop-in, then the one edit of the main config
  const runtimePath = host.seen(`${CURRENT}/bin/${SHIM_BINARY}`);
  const configDir = host.seen(CONFIG_DIR);
  const dropInText = renderDropIn({ version: cd.version, handlers: o.handlers, configDir, runtimePath, operatorCri: chain.cri, sources: chain.files });
  const dropInResult = inst.putFile(dropIn, dropInText, 0o644, 'replace');
  if (dropInResult !== 'unchanged') out(`${dropInResult === 'created' ? 'wrote' : 'rewrote'} ${dropIn} (runtime entries ${o.handlers.map((h) => h.runtimeEntry).join(', ')})`);
  let mainChanged = false;
  if (plannedMain) {
    const entry = ledger.find('file', mainReal);
    const at = host.at(mainReal);
    if (mainText === undefined) {
      ledger.ensureDir(path.dirname(mainReal));
      ledger.record({ kind: 'file', path: mainReal, sha256: sha256(plannedMain.text), edit: { import: dropInSeen, addedLine: true } });
      writeAtomic(at, plannedMain.text, 0o644);
      out(`created ${mainReal} importing ${dropInSeen}`);
    } else {
      const st = fs.statSync(at);
      const stale = entry?.backup?.file;
      const backup = ledger.backup(mainReal);
      ledger.record({ kind: 'file', path: mainReal, sha256: sha256(plannedMain.text), backup, edit: { import: dropInSeen, addedLine: plannedMain.addedLine } });
      if (stale) fs.rmSync(host.at(`${STATE_DIR}/${stale}`), { force: true });
      writeAtomic(at, plannedMain.text, st.mode & 0o7777, { uid: st.uid, gid: st.gid });
      out(`edited ${mainReal}: ${plannedMain.addedLine ? 'added' : 'extended'} imports with ${dropInSeen} (the only change; original kept for uninstall)`);
    }
    mainChanged = true;
  } else {
    out(`${mainReal} already imports ${dropInSeen}: left as it is`);
  }
  ledger.setMeta({ containerd: { version: cd.version, config: mainReal, dropIn, source: cd.source }, release: id });
  inst.pruneReleases(id);

  // 4. what the host will run
  const cli = host.run(`${BIN_DIR}/tsshim`, ['--version'], 60_000);
  if (cli.status !== 0 || cli.stdout.trim() !== `tsshim ${version}`) {
    throw new InstallError(`the installed CLI does not run on the host (${cli.argv.join(' ')}: ${(cli.stderr || cli.stdout).trim() || `exit ${cli.status}`})`);
  }
  if (cd.binary) {
    const dump = host.run(cd.binary, ['--config', mainSeen, 'config', 'dump'], 60_000);
    const problems = dump.status === 0 ? verifyDump(dump.stdout, { version: cd.version, handlers: o.handlers, configDir, runtimePath }) : [`${dump.argv.join(' ')} failed: ${dump.stderr.trim().split('\n').slice(-3).join(' ')}`];
    if (problems.length) throw new InstallError(`containerd would not load tsshim's entries as written: ${problems.join('; ')}`);
    out(`checked: ${cd.binary} config dump shows ${o.handlers.length} tsshim runtime entries`);
  } else {
    out('not checked with `containerd config dump` (no containerd binary under the host root)');
  }

  // 5. containerd reads its config only at start
  const containerdChanged = mainChanged || dropInResult === 'created' || dropInResult === 'updated';
  if (!containerdChanged) {
    out(`containerd's config is unchanged${reinstall ? ' (re-install)' : ''}: no restart needed`);
    return 0;
  }
  if (!o.restartCmd) {
    out('restart containerd to load the new runtime entries (it has no config reload), e.g. systemctl restart containerd; or pass --restart-cmd');
    return 0;
  }
  return runRestart(o.restartCmd, out) ? 0 : 1;
}

/** Walks the manifest backwards, undoing each entry; removes the state directory last. Returns whether containerd's config changed. */
function undo(host: HostRoot, ledger: Ledger, out: (line: string) => void): boolean {
  const m = ledger.manifest;
  const stateDirs = new Set<string>();
  for (let p = STATE_DIR; p !== '/'; p = path.dirname(p)) stateDirs.add(p);
  let containerdChanged = false;
  const touchesContainerd = (p: string) => p === m.containerd?.config || p === m.containerd?.dropIn || m.entries.some((e) => e.kind === 'file' && e.path === p && e.edit);
  const keptStateDirs: Entry[] = [];
  for (const e of [...m.entries].reverse()) {
    const at = host.at(e.path);
    if (e.kind === 'dir' && (stateDirs.has(e.path) || e.path.startsWith(`${STATE_DIR}/`))) {
      keptStateDirs.push(e);
      continue;
    }
    switch (e.kind) {
      case 'file': {
        const cur = readIfFile(at);
        if (e.edit && e.backup && cur && sha256(cur) !== e.sha256) {
          const text = removeImport(cur.toString('utf8'), e.edit.import, { addedLine: e.edit.addedLine });
          if (text !== cur.toString('utf8')) {
            const st = fs.statSync(at);
            writeAtomic(at, text, st.mode & 0o7777, { uid: st.uid, gid: st.gid });
            out(`${e.path} changed since install: removed only its imports entry ${e.edit.import}`);
          }
        } else if (e.backup) {
          ledger.restore(e.path, e.backup);
          out(`restored ${e.path}`);
        } else {
          if (cur && sha256(cur) !== e.sha256) out(`removed ${e.path} (changed since install)`);
          fs.rmSync(at, { force: true });
        }
        if (touchesContainerd(e.path)) containerdChanged = true;
        break;
      }
      case 'link':
        if (e.backup) {
          ledger.restore(e.path, e.backup);
          out(`restored ${e.path}`);
        } else if (fs.lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) fs.rmSync(at);
        break;
      case 'tree':
        fs.rmSync(at, { recursive: true, force: true });
        break;
      case 'dir':
        try {
          fs.rmdirSync(at);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOTEMPTY' || code === 'EEXIST') out(`kept ${e.path}: not empty`);
          else if (code !== 'ENOENT') throw err;
        }
        break;
    }
    ledger.forget(e.path);
  }
  ledger.removeState();
  for (const e of keptStateDirs) {
    try {
      fs.rmdirSync(host.at(e.path));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') out(`kept ${e.path}: not empty`);
      else if (code !== 'ENOENT') throw err;
    }
  }
  return containerdChanged;
}

export interface UninstallOptions {
  hostRoot: string;
  restartCmd?: string;
  /** Uninstall even while shims run from the installed release. */
  force?: boolean;
  out: (line: string) => void;
}

export function uninstall(o: UninstallOptions): number {
  const probe = new HostRoot(o.hostRoot, false);
  const m = loadManifest(probe);
  if (!m) {
    o.out(`nothing installed under ${probe.root} (no ${STATE_DIR}/manifest.json)`);
    return 0;
  }
  const host = new HostRoot(o.hostRoot, m.prefixPaths);
  const users = [...host.processesUsing(RELEASES), ...host.processesUsing(CURRENT)];
  if (users.length && !o.force) {
    throw new InstallError(
      `${users.length} process${users.length > 1 ? 'es' : ''} still run from ${host.seen(RELEASES)} (${users.slice(0, 5).map((u) => `pid ${u.pid}: ${u.argv.slice(0, 120)}`).join('; ')}): ` +
        'remove the pods of the tsshim RuntimeClasses from this node first (or --force)',
    );
  }
  const ledger = new Ledger(host, m);
  const changed = undo(host, ledger, o.out);
  o.out(`uninstalled: every file tsshim install changed is back, everything it created is gone`);
  if (!changed) return 0;
  if (!o.restartCmd) {
    o.out('restart containerd to drop the runtime entries (it has no config reload), or pass --restart-cmd');
    return 0;
  }
  return runRestart(o.restartCmd, o.out) ? 0 : 1;
}

export { InstallError };
