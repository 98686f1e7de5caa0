// src/client/containerd.ts against a real, private containerd (own root/state/socket under
// /tmp/tsproto-cd, CRI disabled). Needs root and the containerd binary on PATH.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as grpc from '@grpc/grpc-js';
import { connectContainerd, unary, grpcTarget, NAMESPACE_METADATA_KEY, type ContainerdClient } from '../../src/client/containerd.js';
import { events as shimEvents, TYPE_URL, packAny, unpackAny } from '../../src/shim-api/pb.js';

const DIR = '/tmp/tsproto-cd';
const SOCK = `${DIR}/c.sock`;
const NS_A = 'tsproto-a';
const NS_B = 'tsproto-b';

let daemon: ChildProcess | undefined;
let cd: ContainerdClient | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function killDaemon(): void {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
}
process.on('exit', killDaemon);

test.before(async () => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  writeFileSync(
    `${DIR}/config.toml`,
    [
      'version = 2',
      `disabled_plugins = ["io.containerd.grpc.v1.cri"]`,
      '[grpc]',
      `  address = "${SOCK}"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${DIR}/opt"`,
      '',
    ].join('\n'),
  );
  const log = openSync(`${DIR}/containerd.log`, 'a');
  daemon = spawn(
    'containerd',
    ['--config', `${DIR}/config.toml`, '--root', `${DIR}/root`, '--state', `${DIR}/state`, '--address', SOCK],
    { stdio: ['ignore', log, log] },
  );
  const deadline = Date.now() + 15_000;
  while (!existsSync(SOCK)) {
    if (daemon.exitCode !== null) throw new Error(`containerd exited ${daemon.exitCode}:\n${readFileSync(`${DIR}/containerd.log`, 'utf8')}`);
    if (Date.now() > deadline) throw new Error('containerd socket did not appear');
    await sleep(50);
  }
  cd = await connectContainerd(SOCK, NS_A, { connectTimeoutMs: 10_000 });
});

test.after(async () => {
  cd?.close();
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((r) => daemon!.once('exit', r));
    daemon.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    killDaemon();
  }
  rmSync(DIR, { recursive: true, force: true });
});

test('grpcTarget maps socket paths to unix targets', () => {
  assert.is(grpcTarget('/run/containerd/containerd.sock'), 'unix:///run/containerd/containerd.sock');
  assert.is(grpcTarget('rel/c.sock'), 'unix:rel/c.sock');
  assert.is(grpcTarget('unix:///x.sock'), 'unix:///x.sock');
});

test('Version.Version reports the running daemon version', async () => {
  // `containerd --version` -> "containerd github.com/containerd/containerd 1.6.20~ds1 <revision>"
  const cli = execFileSync('containerd', ['--version'], { encoding: 'utf8' }).trim().split(/\s+/);
  const v = await cd!.version.version({});
  assert.is(v.version, cli[2]);
  assert.is(v.revision, cli[3]);
  // Same call through the generated callback client and the unary() helper.
  const raw = await unary(cd!.raw.version, cd!.raw.version.version)({});
  assert.equal(raw, v);
});

test('Namespaces.Create and Namespaces.List', async () => {
  const created = await cd!.namespaces.create({ namespace: { name: NS_A, labels: { 'tsproto/test': 'yes' } } });
  assert.is(created.namespace?.name, NS_A);
  const { namespaces } = await cd!.namespaces.list({});
  const mine = namespaces.find((n) => n.name === NS_A);
  assert.ok(mine, `namespace listed: ${JSON.stringify(namespaces)}`);
  assert.equal(mine!.labels, { 'tsproto/test': 'yes' });
  // Creating it again is AlreadyExists (gRPC 6), surfaced as a ServiceError.
  const err = await cd!.namespaces.create({ namespace: { name: NS_A } }).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  assert.ok(err, 'second create rejected');
  assert.is(err!.code, grpc.status.ALREADY_EXISTS);
});

test('containerd-namespace metadata scopes every call', async () => {
  const id = `tsproto-ctr-${process.pid}`;
  await cd!.containers.create({
    container: {
      id,
      runtime: { name: 'io.containerd.runc.v2' },
      spec: { typeUrl: TYPE_URL.OciSpec, value: new TextEncoder().encode('{"ociVersion":"1.0.2"}') },
      labels: { a: 'b' },
    },
  });
  try {
    const inA = await cd!.containers.list({});
    assert.equal(inA.containers.map((c) => c.id), [id]);
    const got = await cd!.containers.get({ id });
    assert.is(got.container?.runtime?.name, 'io.containerd.runc.v2');
    assert.is(got.container?.spec?.typeUrl, TYPE_URL.OciSpec);
    assert.equal(got.container?.labels, { a: 'b' });
    assert.ok((got.container?.createdAt?.seconds ?? 0) > 1_600_000_000, 'created_at set');

    const inB = await cd!.containers.list({}, { namespace: NS_B });
    assert.equal(inB.containers, []);
    const md = new grpc.Metadata();
    md.set(NAMESPACE_METADATA_KEY, NS_B);
    const viaMetadata = await cd!.containers.list({}, { metadata: md });
    assert.equal(viaMetadata.containers, []);

    // An empty namespace is refused by containerd: proof the header is what scopes the call.
    const err = await cd!.containers.list({}, { namespace: '' }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    assert.ok(err, 'list without namespace rejected');
    assert.is(err!.code, grpc.status.FAILED_PRECONDITION);
    assert.match(err!.details, /namespace/);
  } finally {
    await cd!.containers.delete({ id });
  }
  assert.equal((await cd!.containers.list({})).containers, []);
});

test('Tasks.List, Images.List and Snapshots.View answer on an empty namespace', async () => {
  assert.equal((await cd!.tasks.list({})).tasks, []);
  assert.equal((await cd!.images.list({})).images, []);
  const err = await cd!.snapshots.mounts({ snapshotter: 'overlayfs', key: 'does-not-exist' }).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  assert.ok(err);
  assert.is(err!.code, grpc.status.NOT_FOUND);
});

test('Events.Subscribe streams what Events.Publish sends (shim-side TaskOOM codec)', async () => {
  const topic = '/tsproto/ping';
  const stream = cd!.events.subscribe({ filters: [`topic=="${topic}"`] });
  const first = new Promise<import('../../src/client/containerd.js').eventsV1.Envelope>((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
  });
  first.catch(() => undefined);
  const event = packAny(TYPE_URL.TaskOOM, shimEvents.TaskOOM, { containerId: 'oom-1' });
  // The subscription is registered asynchronously on the server: publish until one arrives.
  let got: Awaited<typeof first> | undefined;
  const deadline = Date.now() + 10_000;
  while (!got && Date.now() < deadline) {
    await cd!.events.publish({ topic, event });
    let timer: NodeJS.Timeout | undefined;
    got = await Promise.race([first, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 200)))]);
    clearTimeout(timer);
  }
  stream.cancel();
  assert.ok(got, 'event received');
  assert.is(got!.topic, topic);
  assert.is(got!.namespace, NS_A);
  assert.ok((got!.timestamp?.seconds ?? 0) > 1_600_000_000);
  assert.is(got!.event?.typeUrl, 'containerd.events.TaskOOM');
  assert.equal(unpackAny(got!.event, TYPE_URL.TaskOOM, shimEvents.TaskOOM), { containerId: 'oom-1' });
});

test('connectContainerd fails cleanly when nothing listens', async () => {
  const err = await connectContainerd(`${DIR}/nothing.sock`, 'x', { connectTimeoutMs: 300 }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err);
  assert.match(err!.message, /cannot reach/);
});

test.run();
