// Which containerd the tests run on: Debian's 1.6 (default), or 1.7 / 2.x built from source into
// /opt/tsshim/peers (scripts/setup.sh). The ONE place that reads TSSHIM_CONTAINERD:
//
//   TSSHIM_CONTAINERD=2 npm test -- core      # every private containerd of the run is 2.x
//   startContainerd({ containerd: '1.7' })    # one instance on a given version (the versions test)
//
// Each version runs against its own io.containerd.runc.v2 (its containerd-shim-runc-v2 comes first
// on that containerd's PATH, right after <repo>/bin) and its own ctr. When TSSHIM_CONTAINERD selects
// a peer build, its bin directory is also put first on this process's PATH, so that code which runs
// `ctr` or `containerd-shim-runc-v2` by name (conformance, parity helpers, host facts) uses the same
// version as the daemon.
//
// Config: 1.6 and 1.7 read `version = 2`; 2.x reads `version = 3`, where the CRI plugin is split
// into io.containerd.grpc.v1.cri (server), io.containerd.cri.v1.runtime and io.containerd.cri.v1.images.
// Test code writes version-2 tables; migrateConfigToV3() moves them the way containerd 2's own
// migration does (plugins/cri/{cri,runtime/plugin,images/plugin}.go configMigration), so the
// config a 2.x instance is given is a real version-3 file.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseContainerdVersion, type ContainerdVersion } from '../../src/cli/generate.js';
import { containerdBinaries, type ContainerdBinaries } from './containerd-binaries.js';

export type { ContainerdVersion };

export const CONTAINERD_VERSIONS: readonly ContainerdVersion[] = ['1.6', '1.7', '2'];
export const PEERS_DIR = '/opt/tsshim/peers';

export interface ContainerdRelease {
  readonly version: ContainerdVersion;
  /** Directory holding containerd, ctr and containerd-shim-runc-v2 of this version. */
  readonly binDir: string;
  /** Peer build directory (with its VERSION stamp), or undefined for Debian's packaged 1.6. */
  readonly peerDir?: string;
  /** containerd config `version` this release reads. */
  readonly configVersion: 2 | 3;
  readonly containerd: string;
  readonly ctr: string;
  readonly shimRunc: string;
}

function release(version: ContainerdVersion): ContainerdRelease {
  const peerDir = version === '1.6' ? undefined : join(PEERS_DIR, version === '2' ? 'containerd-2' : 'containerd-1.7');
  const binDir = peerDir ? join(peerDir, 'bin') : '/usr/bin';
  return {
    version,
    binDir,
    peerDir,
    configVersion: version === '2' ? 3 : 2,
    containerd: join(binDir, 'containerd'),
    ctr: join(binDir, 'ctr'),
    shimRunc: join(binDir, 'containerd-shim-runc-v2'),
  };
}

export function containerdRelease(version: ContainerdVersion): ContainerdRelease {
  return release(version);
}

/**
 * Why this version cannot run here, or undefined when it can. A peer build counts only once its
 * VERSION stamp exists (setup writes it last, so a half-built directory is never used).
 */
export function containerdUnavailable(version: ContainerdVersion): string | undefined {
  const r = release(version);
  if (r.peerDir && !existsSync(join(r.peerDir, 'VERSION'))) {
    return `containerd ${version} is not built: no ${join(r.peerDir, 'VERSION')} (run scripts/setup.sh)`;
  }
  for (const b of [r.containerd, r.ctr, r.shimRunc]) if (!existsSync(b)) return `containerd ${version}: ${b} is missing`;
  return undefined;
}

/** The version stamp of a peer build (first line), or undefined. */
export function peerVersionStamp(version: ContainerdVersion): string | undefined {
  const r = release(version);
  if (!r.peerDir) return undefined;
  try {
    return readFileSync(join(r.peerDir, 'VERSION'), 'utf8').split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

let selected: ContainerdVersion | undefined;

/** TSSHIM_CONTAINERD (1.6 | 1.7 | 2; default 1.6). An unknown value or an unbuilt peer is an error, never a silent fallback. */
export function selectedContainerd(): ContainerdVersion {
  if (selected) return selected;
  const raw = process.env.TSSHIM_CONTAINERD?.trim();
  if (!raw) return (selected = '1.6');
  const v = parseContainerdVersion(raw);
  if (!v) throw new Error(`TSSHIM_CONTAINERD=${JSON.stringify(raw)}: must be 1.6, 1.7 or 2`);
  const why = containerdUnavailable(v);
  if (why) throw new Error(`TSSHIM_CONTAINERD=${raw}: ${why}`);
  return (selected = v);
}

/**
 * containerd/ctr (and, through the private containerd's PATH, containerd-shim-runc-v2) of a version.
 * No version: TSSHIM_CONTAINERD's, and for the default 1.6 the host's binaries from PATH, as before.
 * An explicit 1.6 names Debian's /usr/bin binaries (the runc shim then comes from PATH).
 */
export function binariesFor(version?: ContainerdVersion): ContainerdBinaries {
  const v = version ?? selectedContainerd();
  const r = release(v);
  if (r.peerDir) return containerdBinaries(r.binDir);
  return version ? { containerd: r.containerd, ctr: r.ctr } : containerdBinaries();
}

/** Puts the selected peer's bin dir first on this process's PATH (idempotent; nothing for 1.6). */
export function applySelectedContainerdPath(): void {
  const r = release(selectedContainerd());
  if (!r.peerDir) return;
  const dirs = (process.env.PATH ?? '').split(':').filter((d) => d && d !== r.binDir);
  process.env.PATH = [r.binDir, ...dirs].join(':');
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

const GRPC_CRI = 'io.containerd.grpc.v1.cri';
const CRI_RUNTIME = 'io.containerd.cri.v1.runtime';
const CRI_IMAGES = 'io.containerd.cri.v1.images';
const SERVER_KEYS = ['disable_tcp_service', 'stream_server_address', 'stream_server_port', 'stream_idle_timeout', 'enable_tls_streaming', 'x509_key_pair_streaming'];
const IMAGE_KEYS = ['registry', 'image_decryption', 'max_concurrent_downloads', 'image_pull_progress_timeout', 'image_pull_with_sync_fs', 'stats_collect_period'];
const IMAGE_CONTAINERD_KEYS = ['snapshotter', 'disable_snapshot_annotations', 'discard_unpacked_layers'];

/**
 * A version-2 config document as containerd 2.x's version-3 layout (a port of containerd v2.3's
 * configMigration for the three CRI plugins; other plugins keep their ids). Pure; returns a copy.
 */
export function migrateConfigToV3(doc: Table): Table {
  const out: Table = { ...doc, version: 3 };
  const plugins: Table = isTable(doc.plugins) ? { ...doc.plugins } : {};
  const src = plugins[GRPC_CRI];
  if (isTable(src)) {
    const server: Table = {};
    const runtime: Table = isTable(plugins[CRI_RUNTIME]) ? { ...(plugins[CRI_RUNTIME] as Table) } : {};
    const images: Table = isTable(plugins[CRI_IMAGES]) ? { ...(plugins[CRI_IMAGES] as Table) } : {};
    for (const [k, v] of Object.entries(src)) {
      if (SERVER_KEYS.includes(k)) server[k] = v;
      else if (IMAGE_KEYS.includes(k)) images[k] = v;
      else if (k === 'sandbox_image') images.pinned_images = { ...(isTable(images.pinned_images) ? images.pinned_images : {}), sandbox: v };
      else if (k === 'cni' && isTable(v)) {
        const cni: Table = { ...(isTable(runtime.cni) ? runtime.cni : {}) };
        for (const [ck, cv] of Object.entries(v)) {
          if (ck === 'bin_dir') cni.bin_dirs ??= [cv];
          else cni[ck] ??= cv;
        }
        runtime.cni = cni;
      } else if (k === 'containerd' && isTable(v)) {
        const c: Table = { ...(isTable(runtime.containerd) ? runtime.containerd : {}) };
        for (const [ck, cv] of Object.entries(v)) {
          if (IMAGE_CONTAINERD_KEYS.includes(ck)) images[ck] = cv;
          else if (ck === 'runtimes' && isTable(cv)) {
            const runtimes: Table = {};
            for (const [name, entry] of Object.entries(cv)) {
              if (!isTable(entry)) continue;
              const e: Table = { ...entry };
              if ('sandbox_mode' in e && !('sandboxer' in e)) {
                e.sandboxer = e.sandbox_mode;
                delete e.sandbox_mode;
              }
              runtimes[name] = e;
            }
            c.runtimes = runtimes;
          } else c[ck] ??= cv;
        }
        runtime.containerd = c;
      } else runtime[k] ??= v;
    }
    plugins[GRPC_CRI] = server;
    plugins[CRI_RUNTIME] = runtime;
    plugins[CRI_IMAGES] = images;
  }
  out.plugins = plugins;
  return out;
}

/** containerd 2.x's CRI is several plugins: disabling CRI there means disabling all of them. */
export function criPluginIds(version: ContainerdVersion): string[] {
  return version === '2'
    ? [GRPC_CRI, CRI_RUNTIME, CRI_IMAGES, 'io.containerd.podsandbox.controller.v1.podsandbox']
    : [GRPC_CRI];
}

/**
 * containerd 2.x's ctr prints the server's deprecation notices (on this host: "The support for
 * cgroup v1 is deprecated ...") to its stderr on every `ctr run`. They are about the host, not the
 * task: PrivateContainerd.ctr() removes exactly these lines so a container's stderr compares equal
 * on every version. Nothing else is touched.
 */
export function stripCtrDeprecationNotices(stderr: string): string {
  return stderr.replace(/^time="[^"\n]*" level=warning msg="DEPRECATION: [^\n]*\n?/gm, '');
}

/**
 * The shim binary the kata handler's STAND-IN delegate runs under a given containerd (no Kata here:
 * containerd-shim-runc-v2 stands in for containerd-shim-kata-v2, and says so wherever it is used).
 * Always that containerd's own containerd-shim-runc-v2: by name on 1.6/1.7 (their PATH has it
 * first), the 2.x peer build by path on 2.x. 2.x's is built against containerd >= 2.3's pkg/shim: it
 * refuses the legacy start (it wants BootstrapParams on stdin), answers a protobuf BootstrapResult
 * with version 3 and serves containerd.task.v3.Task; the kata handler's delegate client speaks that
 * protocol too (src/handlers/kata/delegate.ts, docs/containerd-versions.md).
 */
export function kataStandInDelegate(version: ContainerdVersion = selectedContainerd()): string {
  return version === '2' ? containerdRelease('2').shimRunc : 'containerd-shim-runc-v2';
}
