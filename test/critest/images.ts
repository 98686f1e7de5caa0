// The images critest uses, built locally (no registry is reachable here), under the names critest
// expects (cri-tools pkg/validate, pkg/framework). LOCAL BUILDS, not the upstream images: every one
// is one busybox-static base layer plus one small layer. The base is like the upstream busybox
// image: applets are hard links to /bin/busybox (critest masks /bin/ls; a masked symlink would mask
// busybox itself), /etc/passwd with root and nobody, and shell-script `pgrep` and `ipcs`, which
// Debian's busybox-static lacks and critest execs (read from /proc). The images:
//
//   registry.k8s.io/e2e-test-images/busybox:1.29-2            the base as is (root, nobody)
//   registry.k8s.io/pause:3.10                                 /pause (pause.c), the pods' sandbox image
//   registry.k8s.io/e2e-test-images/nginx:1.14-2              webd as /usr/sbin/nginx on :80, pid file /var/run/nginx.pid
//   registry.k8s.io/e2e-test-images/httpd:2.4.39-4            webd as /usr/local/apache2/bin/httpd on :80
//   gcr.io/k8s-staging-cri-tools/hostnet-nginx-<arch>:latest  webd as /usr/sbin/nginx on :12003
//   registry.k8s.io/e2e-test-images/nonewprivs:1.3            setuid-root /usr/local/bin/nnp ("Effective uid: N")
//   gcr.io/k8s-staging-cri-tools/test-image-predefined-group  USER 1000 (default-user), group 50000 in /etc/group
//
// webd (webd.c), nnp (nnp.c) and pause (pause.c) are compiled statically with Debian's gcc; webd serves through
// busybox httpd. Images that critest only ever pulls (image-manager tests) are not built: those
// tests are skipped by name (see run.ts).
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { findStaticBusybox, ociArch } from '../helpers/image.js';
import { REPO_ROOT, runChecked } from '../helpers/proc.js';

export const CRITEST_IMAGES_CACHE = '/var/cache/tsshim-test/critest-images-oci.tar';
const FORMAT_VERSION = 'v2';

const PGREP = `#!/bin/sh
# pgrep PATTERN (tsshim critest image; Debian's busybox-static has no pgrep): pids whose name matches
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
found=1
for d in /proc/[0-9]*; do
  comm=$(cat "$d/comm" 2>/dev/null) || continue
  if echo "$comm" | grep -q -- "$1"; then echo "\${d#/proc/}"; found=0; fi
done
exit $found
`;

const IPCS = `#!/bin/sh
# ipcs [-m] (tsshim critest image; Debian's busybox-static has no ipcs): the System V shared memory
# segments of this IPC namespace, from /proc/sysvipc/shm
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch"
tail -n +2 /proc/sysvipc/shm 2>/dev/null | while read -r key shmid perms size cpid lpid nattch uid rest; do
  printf '%-10s %-10s %-10s %-10s %-10s %s\\n' "$key" "$shmid" "$uid" "$perms" "$size" "$nattch"
done
`;

interface ImageSpec {
  name: string;
  /** Files of the extra layer: path -> content, mode (a Buffer, or a compiled program name). */
  files: Record<string, { content: Buffer | string; mode?: number }>;
  dirs?: string[];
  config: Record<string, unknown>;
}

const WELCOME = '<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1><p>tsshim critest image (local build: busybox httpd)</p></body></html>\n';

/** The sandbox image critest's pods run (containerd's pinned sandbox image in run.ts). */
export const CRITEST_PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

function imageSpecs(webd: Buffer, nnp: Buffer, pause: Buffer): ImageSpec[] {
  const arch = ociArch();
  const web = (bin: string, port: number, docroot: string, pidfile: string, title: string) => ({
    Entrypoint: [bin, String(port), docroot, pidfile, title],
    ExposedPorts: { [`${port}/tcp`]: {} },
  });
  return [
    { name: 'registry.k8s.io/e2e-test-images/busybox:1.29-2', files: {}, config: { Cmd: ['sh'] } },
    { name: CRITEST_PAUSE_IMAGE, files: { pause: { content: pause, mode: 0o755 } }, config: { Entrypoint: ['/pause'], Cmd: [] } },
    {
      name: 'registry.k8s.io/e2e-test-images/nginx:1.14-2',
      files: { 'usr/sbin/nginx': { content: webd, mode: 0o755 }, 'usr/share/nginx/html/index.html': { content: WELCOME } },
      dirs: ['var/run'],
      config: web('/usr/sbin/nginx', 80, '/usr/share/nginx/html', '/var/run/nginx.pid', 'nginx: master process nginx -g daemon off;'),
    },
    {
      name: 'registry.k8s.io/e2e-test-images/httpd:2.4.39-4',
      files: { 'usr/local/apache2/bin/httpd': { content: webd, mode: 0o755 }, 'usr/local/apache2/htdocs/index.html': { content: '<html><body><h1>It works!</h1></body></html>\n' } },
      dirs: ['var/run'],
      config: web('/usr/local/apache2/bin/httpd', 80, '/usr/local/apache2/htdocs', '-', '-'),
    },
    {
      name: `gcr.io/k8s-staging-cri-tools/hostnet-nginx-${arch}:latest`,
      files: { 'usr/sbin/nginx': { content: webd, mode: 0o755 }, 'usr/share/nginx/html/index.html': { content: WELCOME } },
      dirs: ['var/run'],
      config: web('/usr/sbin/nginx', 12003, '/usr/share/nginx/html', '/var/run/nginx.pid', 'nginx: master process nginx -g daemon off;'),
    },
    {
      name: 'registry.k8s.io/e2e-test-images/nonewprivs:1.3',
      files: { 'usr/local/bin/nnp': { content: nnp, mode: 0o4755 } },
      config: { Cmd: ['/usr/local/bin/nnp'] },
    },
    {
      name: 'gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest',
      files: {
        'etc/passwd': { content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\ndefault-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n' },
        'etc/group': { content: 'root:x:0:\nnogroup:x:65534:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' },
      },
      dirs: ['home/default-user'],
      config: { Cmd: ['sh'], User: '1000' },
    },
  ];
}

/** Every image name the archive holds. */
export function critestImageNames(): string[] {
  return imageSpecs(Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)).map((s) => s.name);
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function compile(src: string, out: string): Promise<Buffer> {
  await runChecked('gcc', ['-static', '-O2', '-s', '-o', out, src], { timeoutMs: 120_000 });
  return readFileSync(out);
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  [k: string]: unknown;
}

/** The base rootfs: busybox with hard-linked applets, passwd/group, pgrep and ipcs scripts. */
async function baseRootfs(root: string, busybox: { path: string; bytes: Buffer }): Promise<void> {
  for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'var/run']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'root'), 0o700);
  writeFileSync(join(root, 'bin', 'busybox'), busybox.bytes, { mode: 0o755 });
  const applets = (await runChecked(busybox.path, ['--list'])).split('\n').map((a) => a.trim());
  for (const a of applets) if (a && a !== 'busybox' && !a.includes('/')) linkSync(join(root, 'bin', 'busybox'), join(root, 'bin', a));
  writeFileSync(join(root, 'bin', 'pgrep'), PGREP, { mode: 0o755 });
  writeFileSync(join(root, 'bin', 'ipcs'), IPCS, { mode: 0o755 });
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/** Builds (cached) one OCI archive with all critest images; returns its path. */
export async function buildCritestImages(opts: { cacheFile?: string } = {}): Promise<string> {
  const cacheFile = opts.cacheFile ?? CRITEST_IMAGES_CACHE;
  const busybox = findStaticBusybox();
  const sources = ['webd.c', 'nnp.c', 'pause.c'].map((f) => join(REPO_ROOT, 'test', 'critest', f));
  const gccVersion = (await runChecked('gcc', ['-dumpfullversion'])).trim();
  const key = [FORMAT_VERSION, sha256(busybox.bytes), sha256(PGREP + IPCS), ...sources.map((s) => sha256(readFileSync(s))), gccVersion, ociArch()].join(' ') + '\n';
  const keyFile = cacheFile + '.key';
  if (existsSync(cacheFile) && existsSync(keyFile) && readFileSync(keyFile, 'utf8') === key) return cacheFile;

  const work = mkdtempSync(join(tmpdir(), 'tsshim-critest-img-'));
  try {
    const webd = await compile(sources[0]!, join(work, 'webd'));
    const nnp = await compile(sources[1]!, join(work, 'nnp'));
    const pause = await compile(sources[2]!, join(work, 'pause'));
    const oci = join(work, 'oci');
    mkdirSync(join(oci, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const writeBlob = (content: Buffer) => {
      const hex = sha256(content);
      writeFileSync(join(oci, 'blobs', 'sha256', hex), content);
      return { digest: `sha256:${hex}`, size: content.length };
    };
    const tarDir = async (dir: string): Promise<Buffer> => {
      const tarFile = join(work, 'layer.tar');
      await runChecked('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, '-cf', tarFile, '.']);
      return readFileSync(tarFile);
    };
    const baseDir = join(work, 'base');
    await baseRootfs(baseDir, busybox);
    const baseTar = await tarDir(baseDir);
    const baseManifest = { layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...writeBlob(gzipSync(baseTar, { level: 9 })) }] };
    const baseConfig = {
      architecture: ociArch(),
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] } as Record<string, unknown>,
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(baseTar)}`] },
      history: [{ created_by: `tsshim critest base: ${busybox.path} (hard-linked applets), passwd, pgrep and ipcs scripts` }] as unknown[],
    };

    const manifests: Descriptor[] = [];
    for (const spec of imageSpecs(webd, nnp, pause)) {
      const layers = [...baseManifest.layers];
      const diffIds = [...baseConfig.rootfs.diff_ids];
      const history = [...(baseConfig.history ?? [])];
      if (Object.keys(spec.files).length > 0 || spec.dirs?.length) {
        const root = join(work, 'layer-' + sha256(spec.name).slice(0, 8));
        for (const d of spec.dirs ?? []) mkdirSync(join(root, d), { recursive: true });
        for (const [p, f] of Object.entries(spec.files)) {
          mkdirSync(dirname(join(root, p)), { recursive: true });
          writeFileSync(join(root, p), f.content);
          chmodSync(join(root, p), f.mode ?? 0o644);
        }
        const tarBytes = await tarDir(root);
        layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...writeBlob(gzipSync(tarBytes, { level: 9 })) });
        diffIds.push(`sha256:${sha256(tarBytes)}`);
        history.push({ created_by: `tsshim critest image ${spec.name} (local build; files: ${Object.keys(spec.files).join(', ') || '-'})` });
      }
      const config = writeBlob(
        Buffer.from(JSON.stringify({ ...baseConfig, config: { ...baseConfig.config, ...spec.config }, rootfs: { type: 'layers', diff_ids: diffIds }, history })),
      );
      const manifest = writeBlob(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
            layers,
          }),
        ),
      );
      manifests.push({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifest,
        platform: { architecture: ociArch(), os: 'linux' },
        annotations: { 'io.containerd.image.name': spec.name, 'org.opencontainers.image.ref.name': spec.name.slice(spec.name.lastIndexOf(':') + 1) },
      });
    }
    writeFileSync(join(oci, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));

    mkdirSync(dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.${randomBytes(4).toString('hex')}.tmp`;
    await runChecked('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', oci, '-cf', tmp, 'oci-layout', 'index.json', 'blobs']);
    renameSync(tmp, cacheFile);
    writeFileSync(keyFile, key);
    return cacheFile;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
