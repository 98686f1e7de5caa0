// Builds the busybox test image as an OCI image archive, without any registry.
//
// rootfs: /bin/busybox + one symlink per applet in /bin, /etc/passwd, /etc/group, /tmp (1777),
// /root, and empty /proc /sys /dev mount points. One gzip layer (made with tar), an OCI image
// config, manifest, index.json with the image name annotations and oci-layout, tarred.
// Cached under /var/cache/tsshim-test keyed by the busybox binary's sha256.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runChecked } from './proc.js';

export const TEST_IMAGE = 'docker.io/tsshim/busybox:test';
export const TEST_IMAGE_CACHE = '/var/cache/tsshim-test/busybox-oci.tar';
/** Bump when the archive layout changes so cached archives are rebuilt. */
const FORMAT_VERSION = 'v1';

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/local/bin/busybox'];

export function ociArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const a = map[arch];
  if (!a) throw new Error(`no OCI architecture name for node arch ${arch}`);
  return a;
}

/** True when the ELF file has no PT_INTERP program header (i.e. it is statically linked). */
export function isStaticElf(bytes: Buffer): boolean {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (bytes[4] !== 2) throw new Error('only 64-bit ELF is supported');
  const le = bytes[5] === 1;
  const u16 = (o: number) => (le ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o));
  const u32 = (o: number) => (le ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o));
  const phoff = Number(le ? bytes.readBigUInt64LE(0x20) : bytes.readBigUInt64BE(0x20));
  const phentsize = u16(0x36);
  const phnum = u16(0x38);
  for (let i = 0; i < phnum; i++) {
    if (u32(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

export function findStaticBusybox(): { path: string; bytes: Buffer } {
  for (const p of BUSYBOX_CANDIDATES) {
    if (!existsSync(p)) continue;
    const bytes = readFileSync(p);
    if (isStaticElf(bytes)) return { path: p, bytes };
  }
  throw new Error(`no statically linked busybox in ${BUSYBOX_CANDIDATES.join(', ')}: install busybox-static (bash scripts/setup.sh)`);
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Blob {
  digest: string;
  size: number;
}

function writeBlob(ociDir: string, content: Buffer): Blob {
  const hex = sha256(content);
  writeFileSync(join(ociDir, 'blobs', 'sha256', hex), content);
  return { digest: `sha256:${hex}`, size: content.length };
}

/**
 * Returns the path of an OCI archive of the busybox test image, building it when the cache is
 * missing or was built from a different busybox binary.
 */
export async function buildTestImageArchive(opts: { cacheFile?: string; imageName?: string } = {}): Promise<string> {
  const cacheFile = opts.cacheFile ?? TEST_IMAGE_CACHE;
  const imageName = opts.imageName ?? TEST_IMAGE;
  const busybox = findStaticBusybox();
  const key = `${sha256(busybox.bytes)} ${FORMAT_VERSION} ${imageName} ${ociArch()}\n`;
  const keyFile = cacheFile + '.key';
  if (existsSync(cacheFile) && existsSync(keyFile) && readFileSync(keyFile, 'utf8') === key) return cacheFile;

  const work = mkdtempSync(join(tmpdir(), 'tsshim-image-'));
  try {
    // rootfs
    const rootfs = join(work, 'rootfs');
    for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev']) mkdirSync(join(rootfs, d), { recursive: true });
    chmodSync(join(rootfs, 'tmp'), 0o1777);
    chmodSync(join(rootfs, 'root'), 0o700);
    writeFileSync(join(rootfs, 'bin', 'busybox'), busybox.bytes, { mode: 0o755 });
    const list = (await runChecked(busybox.path, ['--list'])).split('\n').map((s) => s.trim());
    for (const applet of list) {
      if (!applet || applet === 'busybox' || applet.includes('/')) continue;
      symlinkSync('busybox', join(rootfs, 'bin', applet));
    }
    writeFileSync(
      join(rootfs, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');

    // layer: tar (deterministic order and metadata), then gzip
    const layerTar = join(work, 'layer.tar');
    await runChecked('tar', [
      '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner',
      '-C', rootfs, '-cf', layerTar, '.',
    ]);
    const tarBytes = readFileSync(layerTar);
    const gz = gzipSync(tarBytes, { level: 9 });

    const oci = join(work, 'oci');
    mkdirSync(join(oci, 'blobs', 'sha256'), { recursive: true });
    const layer = writeBlob(oci, gz);
    const arch = ociArch();
    const config = writeBlob(
      oci,
      Buffer.from(
        JSON.stringify({
          architecture: arch,
          os: 'linux',
          config: {
            Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
            Cmd: ['sh'],
          },
          rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(tarBytes)}`] },
          history: [{ created_by: `tsshim test image from ${busybox.path}` }],
        }),
      ),
    );
    const manifest = writeBlob(
      oci,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
        }),
      ),
    );
    const tag = imageName.slice(imageName.lastIndexOf(':') + 1);
    writeFileSync(
      join(oci, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform: { architecture: arch, os: 'linux' },
            annotations: {
              'io.containerd.image.name': imageName,
              'org.opencontainers.image.ref.name': tag,
            },
          },
        ],
      }),
    );
    writeFileSync(join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

    mkdirSync(dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.${randomBytes(4).toString('hex')}.tmp`;
    await runChecked('tar', [
      '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner',
      '-C', oci, '-cf', tmp, 'oci-layout', 'index.json', 'blobs',
    ]);
    renameSync(tmp, cacheFile);
    writeFileSync(keyFile, key);
    return cacheFile;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
