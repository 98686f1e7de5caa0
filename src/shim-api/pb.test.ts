// Wire-level checks of the generated protobuf code. Expected byte strings were produced by protoc's
// own (C++) encoder from the same .proto files: `protoc -I proto --encode=<Message> <file> < text`,
// so they are an independent reference for field numbers, wire types and 64-bit varints.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Any,
  Timestamp,
  TYPE_URL,
  ZERO_TIME,
  anyOf,
  packAny,
  unpackAny,
  timestampFromDate,
  dateFromTimestamp,
  isZeroTime,
  task,
  events,
  runcOptions,
  runtimeOptions,
  cgroupsV1,
  cgroupsV2,
  eventsService,
  TaskDefinition,
  SERVICE,
} from './pb.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

// protoc --encode=containerd.runc.v1.Options: binary_name "crun", root "/run/crun", systemd_cgroup true
const RUNC_OPTS_HEX = '32046372756e3a092f72756e2f6372756e4801';

test('runc Options encodes like protoc', () => {
  const o = runcOptions.Options.fromPartial({ binaryName: 'crun', root: '/run/crun', systemdCgroup: true });
  assert.is(hex(runcOptions.Options.encode(o).finish()), RUNC_OPTS_HEX);
});

test('CreateTaskRequest with mounts and an options Any: exact bytes and round trip', () => {
  const req = task.CreateTaskRequest.fromPartial({
    id: 'ctr1',
    bundle: '/run/containerd/io.containerd.runtime.v2.task/default/ctr1',
    rootfs: [
      {
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', 'lowerdir=/l1:/l2', 'upperdir=/u', 'workdir=/w'],
      },
    ],
    stdout: '/run/fifo/ctr1-stdout',
    options: anyOf(TYPE_URL.RuncOptions, unhex(RUNC_OPTS_HEX)),
  });
  const bytes = task.CreateTaskRequest.encode(req).finish();
  assert.is(
    hex(bytes),
    '0a0463747231123a2f72756e2f636f6e7461696e6572642f696f2e636f6e7461696e6572642e72756e74696d652e76322e7461736b2f64656661756c742f637472311a480a076f7665726c617912076f7665726c61792209696e6465783d6f666622106c6f7765726469723d2f6c313a2f6c32220b75707065726469723d2f75220a776f726b6469723d2f7732152f72756e2f6669666f2f637472312d7374646f757452310a1a636f6e7461696e6572642e72756e632e76312e4f7074696f6e73121332046372756e3a092f72756e2f6372756e4801',
  );
  const back = task.CreateTaskRequest.decode(bytes);
  assert.equal(back, req);
  assert.is(back.rootfs.length, 1);
  assert.equal(back.rootfs[0]!.options, ['index=off', 'lowerdir=/l1:/l2', 'upperdir=/u', 'workdir=/w']);
  assert.is(back.terminal, false);
  assert.is(back.stdin, '');
  // Any stays {typeUrl, value: Uint8Array} with the bare type URL.
  assert.ok(back.options);
  assert.is(back.options!.typeUrl, 'containerd.runc.v1.Options');
  assert.instance(back.options!.value, Uint8Array);
  const opts = unpackAny(back.options, TYPE_URL.RuncOptions, runcOptions.Options);
  assert.ok(opts);
  assert.is(opts!.binaryName, 'crun');
  assert.is(opts!.root, '/run/crun');
  assert.is(opts!.systemdCgroup, true);
  assert.is(opts!.noPivotRoot, false);
  assert.is(unpackAny(back.options, TYPE_URL.RuntimeOptions, runtimeOptions.Options), undefined);
  assert.is(unpackAny(undefined, TYPE_URL.RuncOptions, runcOptions.Options), undefined);
});

test('CreateTaskRequest without options leaves options undefined', () => {
  const back = task.CreateTaskRequest.decode(task.CreateTaskRequest.encode(task.CreateTaskRequest.fromPartial({ id: 'x' })).finish());
  assert.is(back.options, undefined);
  assert.equal(back.rootfs, []);
});

test('TaskExit with exited_at: exact bytes and round trip inside an Envelope', () => {
  const ev = events.TaskExit.fromPartial({
    containerId: 'c1',
    id: 'e1',
    pid: 4242,
    exitStatus: 137,
    exitedAt: { seconds: 1700000000, nanos: 512345678 },
  });
  const bytes = events.TaskExit.encode(ev).finish();
  assert.is(hex(bytes), '0a026331120265311892212089012a0c0880e2cfaa0610ce8ca7f401');
  assert.equal(events.TaskExit.decode(bytes), ev);

  const env = eventsService.Envelope.fromPartial({
    timestamp: { seconds: 1700000001, nanos: 1 },
    namespace: 'default',
    topic: '/tasks/exit',
    event: packAny(TYPE_URL.TaskExit, events.TaskExit, ev),
  });
  const fwd = eventsService.ForwardRequest.decode(eventsService.ForwardRequest.encode({ envelope: env }).finish());
  assert.is(fwd.envelope!.topic, '/tasks/exit');
  assert.is(fwd.envelope!.event!.typeUrl, 'containerd.events.TaskExit');
  assert.equal(unpackAny(fwd.envelope!.event, TYPE_URL.TaskExit, events.TaskExit), ev);
});

test('DeleteResponse bytes match the runc-v2 prefix 08 87 66 10 89 01 1a 0c', () => {
  const resp = task.DeleteResponse.fromPartial({
    pid: 13063,
    exitStatus: 137,
    exitedAt: { seconds: 1700000000, nanos: 512345678 },
  });
  const bytes = task.DeleteResponse.encode(resp).finish();
  assert.is(hex(bytes.subarray(0, 8)), '088766108901' + '1a0c');
  assert.is(hex(bytes), '0887661089011a0c0880e2cfaa0610ce8ca7f401');
  assert.is(bytes.length, 8 + 12);
  assert.equal(task.DeleteResponse.decode(bytes), resp);
});

test("Go's zero time (seconds -62135596800) round-trips as a 10-byte varint", () => {
  const bytes = Timestamp.encode(ZERO_TIME).finish();
  assert.is(hex(bytes), '088092b8c398feffffff01');
  const back = Timestamp.decode(bytes);
  assert.is(back.seconds, -62135596800);
  assert.is(back.nanos, 0);
  assert.ok(isZeroTime(back));

  // Inside a message, as containerd 1.6 sends exited_at of a running process.
  const w = task.WaitResponse.encode({ exitStatus: 0, exitedAt: { ...ZERO_TIME } }).finish();
  assert.is(hex(w), '120b088092b8c398feffffff01');
  const wb = task.WaitResponse.decode(w);
  assert.equal(wb.exitedAt, { seconds: -62135596800, nanos: 0 });
  // Omitted exited_at decodes as undefined, which also means "not set".
  assert.is(task.WaitResponse.decode(new Uint8Array(0)).exitedAt, undefined);
  assert.ok(isZeroTime(undefined));
  assert.not.ok(isZeroTime({ seconds: 0, nanos: 0 }));
  assert.is(dateFromTimestamp(ZERO_TIME).toISOString(), '0001-01-01T00:00:00.000Z');
});

test('timestampFromDate / dateFromTimestamp', () => {
  assert.equal(timestampFromDate(new Date('2023-11-14T22:13:20.512Z')), { seconds: 1700000000, nanos: 512000000 });
  assert.equal(timestampFromDate(new Date('0001-01-01T00:00:00Z')), ZERO_TIME);
  assert.equal(timestampFromDate(new Date(-1)), { seconds: -1, nanos: 999000000 });
  assert.is(dateFromTimestamp({ seconds: 1700000000, nanos: 512999999 }).toISOString(), '2023-11-14T22:13:20.512Z');
  assert.throws(() => timestampFromDate(new Date(NaN)), /invalid Date/);
});

test('runtimeoptions.v1.Options decodes {type_url, config_path}', () => {
  // protoc --encode=runtimeoptions.v1.Options: type_url "example.v1.Options", config_path "/etc/tsprobe.toml"
  const any = anyOf(
    TYPE_URL.RuntimeOptions,
    unhex('0a126578616d706c652e76312e4f7074696f6e7312112f6574632f747370726f62652e746f6d6c'),
  );
  const o = unpackAny(any, 'runtimeoptions.v1.Options', runtimeOptions.Options);
  assert.ok(o);
  assert.is(o!.typeUrl, 'example.v1.Options');
  assert.is(o!.configPath, '/etc/tsprobe.toml');
  assert.is(o!.configBody.length, 0);
  const withBody = runtimeOptions.Options.decode(
    runtimeOptions.Options.encode({ typeUrl: '', configPath: '', configBody: new TextEncoder().encode('a = 1\n') }).finish(),
  );
  assert.is(new TextDecoder().decode(withBody.configBody), 'a = 1\n');
});

test('Any decodes from raw bytes as {typeUrl, value: Uint8Array}', () => {
  // field 1 "containerd.runc.v1.ProcessDetails", field 2 = ProcessDetails{exec_id: "e1"}
  const raw = Any.encode({ typeUrl: TYPE_URL.RuncProcessDetails, value: runcOptions.ProcessDetails.encode({ execId: 'e1' }).finish() }).finish();
  const a = Any.decode(raw);
  assert.is(a.typeUrl, 'containerd.runc.v1.ProcessDetails');
  assert.instance(a.value, Uint8Array);
  assert.is(hex(a.value), '0a026531');
});

test('cgroups metrics carry uint64 values beyond 2^53 as bigint', () => {
  const v1 = cgroupsV1.Metrics.fromPartial({ memory: { usage: { usage: 1048576n, limit: 9223372036854771712n } } });
  const b1 = cgroupsV1.Metrics.encode(v1).finish();
  assert.is(hex(b1), '22118a020e0880e0ffffffffffff7f10808040');
  assert.is(cgroupsV1.Metrics.decode(b1).memory!.usage!.limit, 9223372036854771712n);

  const v2 = cgroupsV2.Metrics.fromPartial({ memory: { usage: 1048576n, usageLimit: 18446744073709551615n } });
  const b2 = cgroupsV2.Metrics.encode(v2).finish();
  assert.is(hex(b2), '221180028080408802ffffffffffffffffff01');
  assert.is(cgroupsV2.Metrics.decode(b2).memory!.usageLimit, 18446744073709551615n);
});

test('type URLs and service names match the generated packages', () => {
  const pkgOf = (u: string) => u.slice(0, u.lastIndexOf('.'));
  assert.is(pkgOf(TYPE_URL.TaskExit), events.protobufPackage);
  assert.is(pkgOf(TYPE_URL.RuncOptions), runcOptions.protobufPackage);
  assert.is(pkgOf(TYPE_URL.RuntimeOptions), runtimeOptions.protobufPackage);
  assert.is(pkgOf(TYPE_URL.CgroupsV1Metrics), cgroupsV1.protobufPackage);
  assert.is(pkgOf(TYPE_URL.CgroupsV2Metrics), cgroupsV2.protobufPackage);
  assert.is(cgroupsV1.protobufPackage, 'io.containerd.cgroups.v1');
  assert.is(cgroupsV2.protobufPackage, 'io.containerd.cgroups.v2');
  for (const [k, u] of Object.entries(TYPE_URL)) {
    if (k.startsWith('Oci')) continue;
    const name = u.slice(u.lastIndexOf('.') + 1);
    const mod = { [events.protobufPackage]: events, [runcOptions.protobufPackage]: runcOptions, [runtimeOptions.protobufPackage]: runtimeOptions, [cgroupsV1.protobufPackage]: cgroupsV1, [cgroupsV2.protobufPackage]: cgroupsV2 }[pkgOf(u)];
    assert.ok(mod && name in mod, `${u} has a generated message`);
  }
  assert.is(TaskDefinition.fullName, SERVICE.Task);
  assert.is(eventsService.EventsDefinition.fullName, SERVICE.Events);
});

test('Task generic definition lists all 17 methods with codecs', () => {
  const names = Object.values(TaskDefinition.methods).map((m) => m.name).sort();
  assert.equal(names, [
    'Checkpoint', 'CloseIO', 'Connect', 'Create', 'Delete', 'Exec', 'Kill', 'Pause', 'Pids',
    'ResizePty', 'Resume', 'Shutdown', 'Start', 'State', 'Stats', 'Update', 'Wait',
  ]);
  const m = TaskDefinition.methods.delete;
  const req = m.requestType.decode(m.requestType.encode({ id: 'a', execId: 'b' }).finish());
  assert.equal(req, { id: 'a', execId: 'b' });
  assert.is(m.responseType, task.DeleteResponse);
  assert.is(TaskDefinition.methods.kill.responseType.encode({}).finish().length, 0);
});

test.run();
