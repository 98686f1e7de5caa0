/**
 * parseMountOptions / compactLowerdirOption (pure) and real tmpfs, bind, overlay
 * mounts (needs root). Run: node dist/src/sys/mount.test.js
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { compactLowerdirOption, mountAll, parseMountOptions, unmountAll } from './mount.js';
import {
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SLAVE,
  umount2,
} from './libc.js';

// ---------------------------------------------------------------------------
// pure
// ---------------------------------------------------------------------------

test('parseMountOptions: flag words, clearing words, data words', () => {
  const p = parseMountOptions(['nosuid', 'nodev', 'noexec', 'relatime', 'size=64k', 'mode=755']);
  assert.is(p.flags, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
  assert.is(p.data, 'size=64k,mode=755');
  assert.equal(p.propagation, []);
  assert.is(p.remountRo, false);
  assert.is(p.loop, false);
  // later words win, like containerd: ro then rw clears MS_RDONLY; suid clears nosuid
  assert.is(parseMountOptions(['ro', 'rw']).flags, 0);
  assert.is(parseMountOptions(['nosuid', 'suid', 'exec']).flags, 0);
  assert.is(parseMountOptions(['defaults']).data, '');
});

test('parseMountOptions: overlay options stay data in order', () => {
  const p = parseMountOptions(['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/a:/b']);
  assert.is(p.flags, 0);
  assert.is(p.data, 'index=off,workdir=/w,upperdir=/u,lowerdir=/a:/b');
});

test('parseMountOptions: bind+ro needs a remount; rbind is BIND|REC', () => {
  const p = parseMountOptions(['rbind', 'ro']);
  assert.is(p.flags, MS_BIND | MS_REC | MS_RDONLY);
  assert.is(p.remountRo, true);
  assert.is(parseMountOptions(['bind', 'rw']).remountRo, false);
  assert.is(parseMountOptions(['ro']).remountRo, false);
  assert.is(parseMountOptions(['remount', 'ro']).flags, MS_REMOUNT | MS_RDONLY);
});

test('parseMountOptions: propagation words are separate, loop is flagged', () => {
  const p = parseMountOptions(['rbind', 'rprivate', 'slave', 'loop']);
  assert.equal(p.propagation, [MS_PRIVATE | MS_REC, MS_SLAVE]);
  assert.is(p.flags, MS_BIND | MS_REC);
  assert.is(p.loop, true);
  assert.is(p.data, '');
});

test('compactLowerdirOption: common parent, relative lowerdirs moved last', () => {
  const root = '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots';
  const r = compactLowerdirOption(['index=off', `lowerdir=${root}/12/fs:${root}/1/fs:${root}/13/fs`, 'workdir=/w']);
  assert.is(r.chdir, `${root}/`);
  assert.equal(r.options, ['index=off', 'workdir=/w', 'lowerdir=12/fs:1/fs:13/fs']);
  // common prefix ending in '/' keeps that directory (Go path.Dir semantics)
  const r2 = compactLowerdirOption([`lowerdir=${root}/1/fs:${root}/2/fs`]);
  assert.is(r2.chdir, `${root}/`);
  assert.equal(r2.options, ['lowerdir=1/fs:2/fs']);
  assert.is(compactLowerdirOption(['lowerdir=/a/b']).chdir, '');
  assert.is(compactLowerdirOption(['lowerdir=/a:/b']).chdir, '');
  assert.is(compactLowerdirOption(['upperdir=/u']).chdir, '');
});

// ---------------------------------------------------------------------------
// real mounts
// ---------------------------------------------------------------------------

function mountsAt(target: string): string[] {
  // mountinfo field 5 is the mount point; one line per stacked mount
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === target);
}

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'tsshim-mount-test-'));
}

test('mountAll tmpfs with flags and data; unmountAll removes it', () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  try {
    mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'mode=700'] }], rootfs);
    const lines = mountsAt(rootfs);
    assert.is(lines.length, 1);
    assert.match(lines[0]!, /\bnosuid\b/);
    assert.match(lines[0]!, /\bnodev\b/);
    assert.match(lines[0]!, / - tmpfs tmpfs .*size=1024k/);
    writeFileSync(path.join(rootfs, 'f'), 'x');
    unmountAll(rootfs);
    assert.is(mountsAt(rootfs).length, 0);
    unmountAll(rootfs); // not mounted: tolerated
    unmountAll(path.join(dir, 'missing')); // missing: tolerated
    unmountAll('');
  } finally {
    unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bind + ro is really read-only (remount), stacked mounts all go with unmountAll', () => {
  const dir = tmp();
  const src = path.join(dir, 'src');
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(src);
  mkdirSync(rootfs);
  writeFileSync(path.join(src, 'hello'), 'world');
  try {
    mountAll([{ type: 'bind', source: src, options: ['rbind', 'ro'] }], rootfs);
    assert.is(readFileSync(path.join(rootfs, 'hello'), 'utf8'), 'world');
    assert.throws(() => writeFileSync(path.join(rootfs, 'new'), 'x'), /EROFS/);
    // stack a tmpfs on top, then a second one: three mounts on one point
    mountAll(
      [
        { type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
        { type: 'tmpfs', source: 'tmpfs', options: ['size=2m'] },
      ],
      rootfs,
    );
    assert.is(mountsAt(rootfs).length, 3);
    unmountAll(rootfs);
    assert.is(mountsAt(rootfs).length, 0);
  } finally {
    unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mount target relative to rootfs; escaping targets refused', () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(path.join(rootfs, 'sub'), { recursive: true });
  try {
    mountAll([{ type: 'tmpfs', source: 'tmpfs', target: 'sub', options: ['size=1m'] }], rootfs);
    assert.is(mountsAt(path.join(rootfs, 'sub')).length, 1);
    unmountAll(path.join(rootfs, 'sub'));
    assert.throws(
      () => mountAll([{ type: 'tmpfs', source: 'tmpfs', target: '../../etc', options: [] }], rootfs),
      /escapes the rootfs/,
    );
  } finally {
    unmountAll(path.join(rootfs, 'sub'));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('failure mid-way: earlier mounts are undone and the error names the mount and errno', () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  try {
    let err: Error | undefined;
    try {
      mountAll(
        [
          { type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
          { type: 'bind', source: path.join(dir, 'does-not-exist'), options: ['rbind'] },
        ],
        rootfs,
      );
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err, 'mountAll must throw');
    assert.match(err!.message, 'does-not-exist');
    assert.match(err!.message, '2 of 2');
    assert.match(err!.message, 'ENOENT');
    assert.is((err as Error & { code?: string }).code, 'ENOENT');
    assert.is(mountsAt(rootfs).length, 0, 'the tmpfs mounted first was unmounted');
  } finally {
    unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('overlay with lowerdirs longer than a page - 512 bytes mounts via the common parent', () => {
  const dir = tmp();
  const snaps = path.join(dir, 'snapshots');
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  const lowers: string[] = [];
  for (let i = 1; i <= 40; i++) {
    const fs = path.join(snaps, String(i), 'fs', 'x'.repeat(80));
    mkdirSync(fs, { recursive: true });
    writeFileSync(path.join(fs, `layer-${i}`), String(i));
    lowers.push(fs);
  }
  for (const d of ['upper', 'work']) mkdirSync(path.join(dir, d));
  lowers.reverse(); // top layer first, as containerd orders them
  const options = ['index=off', `workdir=${dir}/work`, `upperdir=${dir}/upper`, `lowerdir=${lowers.join(':')}`];
  assert.ok(options.join(',').length > 4096, 'options exceed one page without compaction');
  const cwd = process.cwd();
  try {
    mountAll([{ type: 'overlay', source: 'overlay', options }], rootfs);
    assert.is(readFileSync(path.join(rootfs, 'layer-1'), 'utf8'), '1');
    assert.is(readFileSync(path.join(rootfs, 'layer-40'), 'utf8'), '40');
    assert.is(process.cwd(), cwd, 'cwd restored');
    unmountAll(rootfs);
    assert.is(mountsAt(rootfs).length, 0);
  } finally {
    try {
      umount2(rootfs, 2);
    } catch {
      // not mounted
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
