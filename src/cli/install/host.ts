/**
 * The host root `tsshim install` works on, and the two views of every path in it:
 *
 *   at(p)    where the installer reads and writes it: <host-root>/p (the DaemonSet mounts / at /host)
 *   seen(p)  what the host's containerd is told (in config files): p itself; with --prefix-paths
 *            (a containerd that runs beside the installer, as in the tests) <host-root>/p
 *
 * Host binaries (containerd, the node it copied) run as the host runs them: under chroot(2) into
 * the host root, or directly with --prefix-paths or a host root of /.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The command as run, for messages. */
  argv: string[];
}

export class HostRoot {
  readonly root: string;

  constructor(
    root: string,
    readonly prefixPaths: boolean,
  ) {
    if (!path.isAbsolute(root)) throw new Error(`--host-root must be an absolute path, got "${root}"`);
    this.root = path.resolve(root);
  }

  /** Where the installer reaches host path p. */
  at(p: string): string {
    return path.join(this.root, p);
  }

  /** Host path p as the host's containerd sees it. */
  seen(p: string): string {
    return this.prefixPaths ? path.join(this.root, p) : p;
  }

  /** A path from a host config file (as containerd sees it) -> where the installer reaches it. */
  fromSeen(p: string): string {
    return this.prefixPaths ? p : path.join(this.root, p);
  }

  /** True when something (a file, link, even a dangling one) is at host path p. */
  has(p: string): boolean {
    try {
      fs.lstatSync(this.at(p));
      return true;
    } catch {
      return false;
    }
  }

  /** Runs host binary p (a host path) with args, as the host would. */
  run(p: string, args: string[], timeoutMs = 60_000): RunResult {
    const chroot = !this.prefixPaths && this.root !== '/';
    const argv = chroot ? ['chroot', this.root, p, ...args] : [this.prefixPaths ? this.at(p) : p, ...args];
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
    return {
      status: r.status,
      stdout: r.stdout ?? '',
      stderr: (r.stderr ?? '') + (r.error ? `${r.error.message}` : ''),
      argv,
    };
  }

  /** Processes (pid, argv) whose command line names something under host path p. */
  processesUsing(p: string): Array<{ pid: number; argv: string }> {
    const needle = this.seen(p).replace(/\/?$/, '/');
    const out: Array<{ pid: number; argv: string }> = [];
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      let raw: string;
      try {
        raw = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (raw.includes(needle)) out.push({ pid: Number(name), argv: raw.replace(/\0+$/, '').split('\0').join(' ') });
    }
    return out;
  }
}
