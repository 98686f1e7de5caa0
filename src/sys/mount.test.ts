/**
 * parseMountOptions / compactLowerdirOption (pure) and real tmpfs, bind, overlay
 * mounts (needs root). Run: node dist/src/sys/mount.test.js
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { compactLowerdirOption, mountAll, parseMountOptions, secureJoin, unmountAll } from './mount.js';
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

test('mountAll tmpfs with flags and data; unmountAll removes it', async () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  try {
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'mode=700'] }], rootfs);
    const lines = mountsAt(rootfs);
    assert.is(lines.length, 1);
    assert.match(lines[0]!, /\bnosuid\b/);
    assert.match(lines[0]!, /\bnodev\b/);
    assert.match(lines[0]!, / - tmpfs tmpfs .*size=1024k/);
    writeFileSync(path.join(rootfs, 'f'), 'x');
    await unmountAll(rootfs);
    assert.is(mountsAt(rootfs).length, 0);
    await unmountAll(rootfs); // not mounted: tolerated
    await unmountAll(path.join(dir, 'missing')); // missing: tolerated
    await unmountAll('');
  } finally {
    await unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bind + ro is really read-only (remount), stacked mounts all go with unmountAll', async () => {
  const dir = tmp();
  const src = path.join(dir, 'src');
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(src);
  mkdirSync(rootfs);
  writeFileSync(path.join(src, 'hello'), 'world');
  try {
    await mountAll([{ type: 'bind', source: src, options: ['rbind', 'ro'] }], rootfs);
    assert.is(readFileSync(path.join(rootfs, 'hello'), 'utf8'), 'world');
    assert.throws(() => writeFileSync(path.join(rootfs, 'new'), 'x'), /EROFS/);
    // stack a tmpfs on top, then a second one: three mounts on one point
    await mountAll(
      [
        { type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
        { type: 'tmpfs', source: 'tmpfs', options: ['size=2m'] },
      ],
      rootfs,
    );
    assert.is(mountsAt(rootfs).length, 3);
    await unmountAll(rootfs);
    assert.is(mountsAt(rootfs).length, 0);
  } finally {
    await unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mount target relative to rootfs; `..` cannot climb out of it', async () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(path.join(rootfs, 'sub'), { recursive: true });
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  try {
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', target: 'sub', options: ['size=1m'] }], rootfs);
    assert.is(mountsAt(path.join(rootfs, 'sub')).length, 1);
    await unmountAll(path.join(rootfs, 'sub'));
    // containerd's fs.RootPath: `..` at the root stays at the root
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', target: '../../etc', options: ['size=1m'] }], rootfs);
    assert.is(mountsAt(path.join(rootfs, 'etc')).length, 1, 'landed on rootfs/etc');
    assert.is(mountsAt(path.join(dir, 'etc')).length + mountsAt('/etc').length, 0, 'nothing mounted outside the rootfs');
  } finally {
    await unmountAll(path.join(rootfs, 'sub'));
    await unmountAll(path.join(rootfs, 'etc'));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('secureJoin: symlinks resolve inside the root (absolute, relative, `..`, chains, missing tails, loops)', async () => {
  const root = tmp();
  try {
    mkdirSync(path.join(root, 'a/b'), { recursive: true });
    symlinkSync('/etc', path.join(root, 'abs')); // absolute: rootfs/etc
    symlinkSync('../../../../..', path.join(root, 'a/up')); // climbs: clamped at root
    symlinkSync('b', path.join(root, 'a/rel'));
    symlinkSync('/a/rel', path.join(root, 'chain'));
    symlinkSync('loop2', path.join(root, 'loop1'));
    symlinkSync('loop1', path.join(root, 'loop2'));
    assert.is(await secureJoin(root, 'abs'), path.join(root, 'etc'));
    assert.is(await secureJoin(root, 'abs/passwd'), path.join(root, 'etc/passwd'));
    assert.is(await secureJoin(root, 'a/up'), root);
    assert.is(await secureJoin(root, 'a/up/etc'), path.join(root, 'etc'));
    assert.is(await secureJoin(root, 'a/rel/x'), path.join(root, 'a/b/x'));
    assert.is(await secureJoin(root, '/chain/../b'), path.join(root, 'a/b'));
    assert.is(await secureJoin(root, '../../x/./y/'), path.join(root, 'x/y'));
    assert.is(await secureJoin(root, ''), root);
    assert.is(await secureJoin(root, '/'), root);
    let loopErr: unknown;
    await secureJoin(root, 'loop1/x').catch((e: unknown) => (loopErr = e));
    assert.is((loopErr as { code?: string })?.code, 'ELOOP');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a layer holding a symlink to a host path: the mount lands inside the rootfs, the host path is untouched', async () => {
  const dir = tmp();
  const host = path.join(dir, 'host-secret'); // the host path the image points at
  mkdirSync(host);
  writeFileSync(path.join(host, 'marker'), 'host');
  const lower = path.join(dir, 'lower');
  mkdirSync(path.join(lower, host.slice(1)), { recursive: true }); // the same path inside the image
  symlinkSync(host, path.join(lower, 'evil-abs')); // absolute link to the host path
  symlinkSync(`../../../../../../../../..${host}`, path.join(lower, 'evil-rel')); // relative link climbing out
  for (const d of ['upper', 'work', 'rootfs']) mkdirSync(path.join(dir, d));
  const rootfs = path.join(dir, 'rootfs');
  const overlay = { type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${dir}/upper`, `workdir=${dir}/work`] };
  const inside = path.join(rootfs, host.slice(1));
  try {
    for (const target of ['evil-abs', 'evil-rel', `evil-abs/../${path.basename(host)}`, `/evil-rel/${'../'.repeat(12)}${host.slice(1)}`]) {
      await mountAll([overlay, { type: 'tmpfs', source: 'tmpfs', target, options: ['size=1m'] }], rootfs);
      assert.is(mountsAt(host).length, 0, `${target}: nothing mounted on the host path`);
      assert.is(mountsAt(inside).length, 1, `${target}: the tmpfs is on the image's own ${host}`);
      assert.is(readFileSync(path.join(host, 'marker'), 'utf8'), 'host');
      await unmountAll(inside);
      await unmountAll(rootfs);
    }
  } finally {
    await unmountAll(host);
    await unmountAll(inside);
    await unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mount errors name type, source and target, never option values', async () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  try {
    let err: Error | undefined;
    await mountAll([{ type: 'bind', source: path.join(dir, 'missing'), options: ['rbind', 'password=hunter2-secret', 'secret=s3cr3t'] }], rootfs).catch((e) => (err = e as Error));
    assert.ok(err);
    assert.match(err!.message, 'bind');
    assert.match(err!.message, 'missing');
    assert.match(err!.message, rootfs);
    const all = `${err!.message} ${String((err!.cause as Error | undefined)?.message)} ${JSON.stringify(err)}`;
    assert.not.match(all, 'hunter2-secret');
    assert.not.match(all, 's3cr3t');
    // the same on the syscall's own error (an unknown filesystem type fails in the kernel)
    let err2: Error | undefined;
    await mountAll([{ type: 'no-such-fs-type', source: 'x', options: ['password=hunter2-secret'] }], rootfs).catch((e) => (err2 = e as Error));
    assert.ok(err2);
    assert.not.match(`${err2!.message} ${String((err2!.cause as Error | undefined)?.message)}`, 'hunter2-secret');
  } finally {
    await unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unmountAll retries EBUSY on a timer: the event loop keeps running meanwhile', async () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  let ticks = 0;
  const tick = setInterval(() => ticks++, 5);
  try {
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }], rootfs);
    // a process whose cwd is the mount point keeps it busy until it exits
    const busy = spawn('sleep', ['0.4'], { cwd: rootfs, stdio: 'ignore' });
    await new Promise((r) => busy.once('spawn', r));
    const before = ticks;
    let holderGone = false;
    busy.once('exit', () => (holderGone = true));
    await unmountAll(rootfs);
    assert.ok(holderGone, 'unmount succeeded only after the holder left');
    assert.ok(ticks - before >= 3, `timers ran while the unmount waited (${ticks - before} ticks)`);
    assert.is(mountsAt(rootfs).length, 0);
  } finally {
    clearInterval(tick);
    await unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('failure mid-way: earlier mounts are undone and the error names the mount and errno', async () => {
  const dir = tmp();
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  try {
    let err: Error | undefined;
    try {
      await mountAll(
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
    await unmountAll(rootfs);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('overlay with lowerdirs longer than a page - 512 bytes mounts via the common parent', async () => {
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
    await mountAll([{ type: 'overlay', source: 'overlay', options }], rootfs);
    assert.is(readFileSync(path.join(rootfs, 'layer-1'), 'utf8'), '1');
    assert.is(readFileSync(path.join(rootfs, 'layer-40'), 'utf8'), '40');
    assert.is(process.cwd(), cwd, 'cwd restored');
    await unmountAll(rootfs);
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
