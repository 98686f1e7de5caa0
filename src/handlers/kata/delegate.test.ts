// The delegate's start answer, read as containerd 2.x reads it (parseStartResponse): plain address,
// JSON version 2/3, protobuf BootstrapResult; and the BootstrapParams a 2.3+ delegate gets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bootstrap, runtimeOptions, packAny, SERVICE, TYPE_URL } from '../../shim-api/pb.js';
import type { HandlerContext } from '../../shim-api/handler.js';
import { bootstrapParams, parseStartAnswer } from './delegate.js';

const b = (s: string) => Buffer.from(s);

test('plain address: task v2 (also with trailing newline); abstract address', () => {
  assert.equal(parseStartAnswer(b('unix:///run/containerd/s/abc\n')), { socket: '/run/containerd/s/abc', service: SERVICE.Task, version: 2 });
  assert.equal(parseStartAnswer(b('containerd-shim-x')), { socket: '\0containerd-shim-x', service: SERVICE.Task, version: 2 });
});

test('JSON answers: version 2 -> task v2, version 3 -> task v3; grpc and version 4 refused', () => {
  assert.equal(parseStartAnswer(b('{"version":2,"address":"unix:///s/a","protocol":"ttrpc"}')), { socket: '/s/a', service: SERVICE.Task, version: 2 });
  assert.equal(parseStartAnswer(b('{"version":3,"address":"unix:///s/b","protocol":"ttrpc"}')), { socket: '/s/b', service: SERVICE.TaskV3, version: 3 });
  assert.throws(() => parseStartAnswer(b('{"version":3,"address":"unix:///s/b","protocol":"grpc"}')), /only ttrpc/);
  assert.throws(() => parseStartAnswer(b('{"version":4,"address":"unix:///s/b","protocol":"ttrpc"}')), /version 4/);
});

test('protobuf BootstrapResult (containerd 2.3+ shims): version 3 -> task v3', () => {
  const pb = bootstrap.BootstrapResult.encode(bootstrap.BootstrapResult.fromPartial({ version: 3, address: 'unix:///run/containerd/s/0123', protocol: 'ttrpc' })).finish();
  assert.equal(parseStartAnswer(pb), { socket: '/run/containerd/s/0123', service: SERVICE.TaskV3, version: 3 });
  assert.throws(() => parseStartAnswer(b('')), /no usable address/);
});

test('BootstrapParams: instance id and namespace as the command line says, options as an extension', () => {
  const ctx = { namespace: 'k8s.io', shim: { containerdAddress: '/run/c.sock', publishBinary: '/usr/bin/containerd', ttrpcAddress: '/run/c.sock.ttrpc', debug: true, address: '' } } as unknown as HandlerContext;
  const opts = packAny(TYPE_URL.RuntimeOptions, runtimeOptions.Options, runtimeOptions.Options.fromPartial({ configPath: '/etc/kata/configuration.toml' }));
  const p = bootstrap.BootstrapParams.decode(bootstrapParams(ctx, 'c1', opts));
  assert.is(p.instanceId, 'c1');
  assert.is(p.namespace, 'k8s.io');
  assert.is(p.containerdTtrpcAddress, '/run/c.sock.ttrpc');
  assert.is(p.containerdGrpcAddress, '/run/c.sock');
  assert.is(p.containerdBinary, '/usr/bin/containerd');
  assert.is(p.logLevel, bootstrap.LogLevel.LOG_LEVEL_DEBUG);
  assert.is(p.extensions.length, 1);
  assert.is(p.extensions[0]!.value?.typeUrl, TYPE_URL.RuntimeOptions);
  assert.is(runtimeOptions.Options.decode(p.extensions[0]!.value!.value).configPath, '/etc/kata/configuration.toml');
  assert.is(bootstrap.BootstrapParams.decode(bootstrapParams(ctx, 'c2')).extensions.length, 0);
});

test.run();
