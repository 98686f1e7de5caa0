// CRI (Kubernetes Container Runtime Interface) support for the private containerd of the test harness:
//
//   const cd = await startContainerd({ name: 'cri', extraConfig: criConfig({ 'tsshim-runc': { runtimeType: 'io.containerd.tsshim.v2', configPath } }) });
//   await importCriImages(cd);             // busybox test image + pause image, namespace k8s.io
//   const cri = await connectCri(cd.address);
//
// There is no registry: the sandbox ("pause") image is derived locally from the busybox test image,
// with Cmd ["sleep", "2147483647"] so the sandbox container stays up. Pods are meant to use the
// host network namespace (NamespaceOption.network = NODE), so no CNI plugin or config is needed;
// the CRI plugin still wants CNI directories, which point at empty ones (it reports
// NetworkReady=false "cni config load failed", which host-network pods do not care about).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify as stringifyToml } from 'smol-toml';
import { TEST_IMAGE, importTestImage, type PrivateContainerd } from './containerd.js';
import { buildTestImageArchive } from './image.js';
import { runChecked } from './proc.js';
import { RUNTIME_TYPE } from '../../src/shim-api/runtime-type.js';
import type { NamespaceOption } from '../../src/proto/k8s/cri/runtime/v1/api.js';

/** containerd's CRI plugin id. */
export const CRI_PLUGIN_ID = 'io.containerd.grpc.v1.cri';
/** The containerd namespace the CRI plugin works in. */
export const CRI_NAMESPACE = 'k8s.io';
/** The sandbox image: the busybox test image with Cmd ["sleep", "2147483647"]. */
export const PAUSE_IMAGE = 'docker.io/tsshim/pause:test';
export const PAUSE_IMAGE_CACHE = '/var/cache/tsshim-test/pause-oci.tar';
/** Empty CNI bin/conf directories shared by all CRI-enabled test instances (created on demand). */
export const DEFAULT_CNI_DIR = '/run/tsshim-test/cri-cni-empty';
/** Runtime type of the reference shim (containerd-shim-runc-v2). */
export const RUNC_RUNTIME_TYPE = 'io.containerd.runc.v2';
/** Runtime type that makes containerd start containerd-shim-tsshim-v2. */
export const TSSHIM_RUNTIME_TYPE = RUNTIME_TYPE;

/** Bump when the pause archive layout changes so cached archives are rebuilt. */
const PAUSE_FORMAT_VERSION = 'v1';
const PAUSE_CMD = ['sleep', '2147483647'];

export interface CriRuntimeEntry {
  /** containerd runtime_type, e.g. io.containerd.runc.v2 or io.containerd.tsshim.v2. */
  runtimeType: string;
  /** Written as `[...runtimes.<name>.options] ConfigPath = ...` (runtimeoptions.v1.Options for non-runc types). */
  configPath?: string;
  /** `runtime_path`: the shim binary by absolute path instead of the one named after runtimeType on PATH. */
  runtimePath?: string;
  /** More `[...runtimes.<name>.options]` keys (for runc.v2: BinaryName, SystemdCgroup, ...). */
  options?: Record<string, unknown>;
  /** Pod annotation patterns passed through to the OCI spec (`pod_annotations`). */
  podAnnotations?: string[];
}

export interface CriConfigOptions {
  /** Sandbox image; default PAUSE_IMAGE. */
  sandboxImage?: string;
  /** Directory holding the empty CNI `bin` and `conf` directories; default DEFAULT_CNI_DIR. */
  cniDir?: string;
}

/**
 * containerd 1.6 (`version = 2`) TOML for `[plugins."io.containerd.grpc.v1.cri"]`, to be passed as
 * startContainerd({ extraConfig }) (mentioning the plugin enables it). The runtime entry `runc`
 * (io.containerd.runc.v2, the default runtime) is always present; `runtimes` adds entries and may
 * replace `runc`. Creates the empty CNI directories.
 */
export function criConfig(runtimes: Record<string, CriRuntimeEntry>, opts: CriConfigOptions = {}): string {
  const cniDir = opts.cniDir ?? DEFAULT_CNI_DIR;
  const cniBin = join(cniDir, 'bin');
  const cniConf = join(cniDir, 'conf');
  mkdirSync(cniBin, { recursive: true });
  mkdirSync(cniConf, { recursive: true });

  const entries: Record<string, CriRuntimeEntry> = { runc: { runtimeType: RUNC_RUNTIME_TYPE }, ...runtimes };
  const tomlRuntimes: Record<string, unknown> = {};
  for (const [name, e] of Object.entries(entries)) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`criConfig: runtime handler name ${JSON.stringify(name)} is not a plain name`);
    if (!e.runtimeType) throw new Error(`criConfig: runtime ${name} has no runtimeType`);
    const options: Record<string, unknown> = { ...(e.options ?? {}) };
    if (e.configPath !== undefined) options.ConfigPath = e.configPath;
    const entry: Record<string, unknown> = { runtime_type: e.runtimeType };
    if (e.runtimePath !== undefined) entry.runtime_path = e.runtimePath;
    if (e.podAnnotations && e.podAnnotations.length > 0) entry.pod_annotations = [...e.podAnnotations];
    if (Object.keys(options).length > 0) entry.options = options;
    tomlRuntimes[name] = entry;
  }

  const doc = {
    version: 2,
    plugins: {
      [CRI_PLUGIN_ID]: {
        sandbox_image: opts.sandboxImage ?? PAUSE_IMAGE,
        disable_cgroup: false,
        // CRI gives sandboxes oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which the test
        // machine (itself a container) lacks: clamp to the caller's own value instead.
        restrict_oom_score_adj: restrictOomScoreAdj(),
        // Streaming server (Exec/Attach/PortForward URLs) on a random loopback port, so instances do not collide.
        stream_server_address: '127.0.0.1',
        stream_server_port: '0',
        cni: { bin_dir: cniBin, conf_dir: cniConf },
        containerd: {
          snapshotter: 'overlayfs',
          default_runtime_name: 'runc',
          runtimes: tomlRuntimes,
        },
      },
    },
  };
  return stringifyToml(doc) + '\n';
}

/** True when this process may not lower oom_score_adj (no CAP_SYS_RESOURCE in its effective set). */
export function restrictOomScoreAdj(): boolean {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    if (!line) return true;
    const CAP_SYS_RESOURCE = 24n;
    return ((BigInt('0x' + line.split(/\s+/)[1]) >> CAP_SYS_RESOURCE) & 1n) === 0n;
  } catch {
    return true;
  }
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  [k: string]: unknown;
}

/**
 * Returns the path of an OCI archive of PAUSE_IMAGE, built (and cached) from the busybox test
 * image archive: same layer, image config with Cmd ["sleep", "2147483647"] and no Entrypoint.
 */
export async function buildPauseImageArchive(opts: { cacheFile?: string } = {}): Promise<string> {
  const cacheFile = opts.cacheFile ?? PAUSE_IMAGE_CACHE;
  const busyboxArchive = await buildTestImageArchive();
  const key = `${sha256(readFileSync(busyboxArchive))} ${PAUSE_FORMAT_VERSION} ${PAUSE_IMAGE} ${PAUSE_CMD.join(' ')}\n`;
  const keyFile = cacheFile + '.key';
  if (existsSync(cacheFile) && existsSync(keyFile) && readFileSync(keyFile, 'utf8') === key) return cacheFile;

  const work = mkdtempSync(join(tmpdir(), 'tsshim-pause-'));
  try {
    await runChecked('tar', ['-xf', busyboxArchive, '-C', work]);
    const blobPath = (digest: string) => join(work, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
    const writeBlob = (content: Buffer): { digest: string; size: number } => {
      const hex = sha256(content);
      writeFileSync(join(work, 'blobs', 'sha256', hex), content);
      return { digest: `sha256:${hex}`, size: content.length };
    };

    const index = JSON.parse(readFileSync(join(work, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    if (index.manifests.length !== 1) throw new Error(`busybox test archive has ${index.manifests.length} manifests, expected 1`);
    const oldManifestDesc = index.manifests[0]!;
    const manifest = JSON.parse(readFileSync(blobPath(oldManifestDesc.digest), 'utf8')) as { config: Descriptor; [k: string]: unknown };
    const config = JSON.parse(readFileSync(blobPath(manifest.config.digest), 'utf8')) as {
      config?: Record<string, unknown>;
      history?: Array<Record<string, unknown>>;
      [k: string]: unknown;
    };
    const imageConfig: Record<string, unknown> = { ...(config.config ?? {}), Cmd: PAUSE_CMD };
    delete imageConfig.Entrypoint;
    const newConfig = writeBlob(
      Buffer.from(JSON.stringify({ ...config, config: imageConfig, history: [...(config.history ?? []), { created_by: `CMD ${JSON.stringify(PAUSE_CMD)}`, empty_layer: true }] })),
    );
    const newManifest = writeBlob(Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, ...newConfig } })));
    unlinkSync(blobPath(manifest.config.digest));
    unlinkSync(blobPath(oldManifestDesc.digest));
    const tag = PAUSE_IMAGE.slice(PAUSE_IMAGE.lastIndexOf(':') + 1);
    writeFileSync(
      join(work, 'index.json'),
      JSON.stringify({
        ...index,
        manifests: [
          {
            ...oldManifestDesc,
            ...newManifest,
            annotations: { 'io.containerd.image.name': PAUSE_IMAGE, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );

    mkdirSync(dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.${randomBytes(4).toString('hex')}.tmp`;
    await runChecked('tar', [
      '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner',
      '-C', work, '-cf', tmp, 'oci-layout', 'index.json', 'blobs',
    ]);
    renameSync(tmp, cacheFile);
    writeFileSync(keyFile, key);
    return cacheFile;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Imports (and unpacks) the busybox test image and the pause image into namespace k8s.io. */
export async function importCriImages(cd: PrivateContainerd): Promise<{ image: string; pauseImage: string }> {
  const image = await importTestImage(cd, { namespace: CRI_NAMESPACE });
  const archive = await buildPauseImageArchive();
  const r = await cd.ctr(['images', 'import', archive], { timeoutMs: 180_000, namespace: CRI_NAMESPACE });
  if (r.exitCode !== 0) throw new Error(`ctr images import ${archive} exited ${r.exitCode}: ${r.stderr.trim()}`);
  const ls = await cd.ctr(['images', 'ls', '-q'], { namespace: CRI_NAMESPACE });
  if (!ls.stdout.split('\n').includes(PAUSE_IMAGE)) {
    throw new Error(`after import, ${PAUSE_IMAGE} is not listed; ctr images ls -q said:\n${ls.stdout}\nimport said:\n${r.stdout}${r.stderr}`);
  }
  return { image, pauseImage: PAUSE_IMAGE };
}

export { TEST_IMAGE };

/** The CRI "app" container the pod tests run: the test image printing "hi", then sleeping. */
export function appContainerConfig(opts: { logPath: string; namespaceOptions: Partial<NamespaceOption>; labels?: Record<string, string>; annotations?: Record<string, string> }) {
  return {
    metadata: { name: 'app', attempt: 0 },
    image: { image: TEST_IMAGE },
    command: ['sh', '-c', 'echo hi; sleep 300'],
    logPath: opts.logPath,
    ...(opts.labels ? { labels: opts.labels } : {}),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
    linux: { securityContext: { namespaceOptions: opts.namespaceOptions } },
  };
}

/**
 * Exit status of CRI StopContainer (timeout 2 s) of `sh -c 'echo hi; sleep 300'`, PID 1 of its
 * pid namespace without a SIGTERM handler: Linux ignores the SIGTERM (SIGNAL_UNKILLABLE), so the
 * grace period ends in SIGKILL, 137. gVisor's Sentry does not protect its init that way: the init
 * dies of the SIGTERM, 143 (measured with runsc alone, no shim: `runsc run` of that bundle, then
 * `runsc kill <id> TERM`, exits 143; `runc kill <id> TERM` leaves it running).
 */
export const CRI_STOP_EXIT_STATUS = { linux: 137, gvisor: 143 } as const;
export const GVISOR_INIT_SIGTERM_REASON =
  "gVisor's Sentry lets a handler-less PID 1 die of SIGTERM (Linux ignores it): StopContainer ends with 143, not the SIGKILL's 137; runsc alone does the same";
