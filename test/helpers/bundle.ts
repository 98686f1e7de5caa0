// A runnable OCI bundle without containerd: busybox-static rootfs + `runc spec`.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findStaticBusybox } from './image.js';

export interface BundleOptions {
  args: string[];
  terminal?: boolean;
  annotations?: Record<string, string>;
  /** share the host network namespace (runsc with --network=host, or no netns setup) */
  hostNetwork?: boolean;
}

export function makeBundle(dir: string, o: BundleOptions): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['tmp', 'proc', 'dev', 'sys', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(findStaticBusybox().path, join(rootfs, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep', 'cat', 'true', 'echo', 'ls', 'id', 'stty', 'head', 'sha256sum', 'dd', 'kill', 'ps']) {
    symlinkSync('busybox', join(rootfs, 'bin', applet));
  }
  execFileSync('runc', ['spec', '--bundle', dir]);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
    process: { args: string[]; terminal: boolean };
    root: { path: string; readonly: boolean };
    annotations?: Record<string, string>;
    linux: { namespaces: Array<{ type: string }> };
  };
  spec.process.args = o.args;
  spec.process.terminal = o.terminal ?? false;
  spec.root = { path: 'rootfs', readonly: false };
  if (o.annotations) spec.annotations = o.annotations;
  if (o.hostNetwork) spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}
