// The CRI client against a real grpc-js server on a unix socket (the server is a stand-in for
// containerd's CRI plugin; the client, its method paths and the generated codecs are what is tested),
// and wire spot checks that the generated runtime.v1 code uses upstream's field numbers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCri, criV1 } from './cri.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('wire: field numbers are upstream runtime.v1 ones', () => {
  // RunPodSandboxRequest.runtime_handler = 2 (string)
  assert.is(hex(criV1.RunPodSandboxRequest.encode(criV1.RunPodSandboxRequest.fromPartial({ runtimeHandler: 'x' })).finish()), '120178');
  // ImageSpec.runtime_handler = 19 -> tag (19 << 3 | 2) = 154 = varint 9a 01
  assert.is(hex(criV1.ImageSpec.encode(criV1.ImageSpec.fromPartial({ runtimeHandler: 'h' })).finish()), '9a010168');
  // ContainerStatus.exit_code = 7 (int32) 137
  assert.is(hex(criV1.ContainerStatus.encode(criV1.ContainerStatus.fromPartial({ exitCode: 137 })).finish()), '388901');
  // ExecSyncRequest.timeout = 3 (int64)
  assert.is(hex(criV1.ExecSyncRequest.encode(criV1.ExecSyncRequest.fromPartial({ timeout: 2n })).finish()), '1802');
  // NamespaceOption.network = 1, NODE = 2
  assert.is(hex(criV1.NamespaceOption.encode(criV1.NamespaceOption.fromPartial({ network: criV1.NamespaceMode.NODE })).finish()), '0802');
  // LinuxSandboxSecurityContext.run_as_group = 8 (Int64Value{value = 5})
  assert.is(hex(criV1.LinuxSandboxSecurityContext.encode(criV1.LinuxSandboxSecurityContext.fromPartial({ runAsGroup: { value: 5n } })).finish()), '42020805');
  // PodSandboxConfig.linux = 8, log_directory = 3
  assert.is(hex(criV1.PodSandboxConfig.encode(criV1.PodSandboxConfig.fromPartial({ logDirectory: 'd', linux: {} })).finish()), '1a01644200');
});

test('wire: nanosecond timestamps beyond 2^53 survive as bigint', () => {
  const ns = 1_795_881_516_543_123_457n;
  const bytes = criV1.ContainerStatus.encode(criV1.ContainerStatus.fromPartial({ createdAt: ns, startedAt: ns + 1n })).finish();
  const back = criV1.ContainerStatus.decode(bytes);
  assert.is(back.createdAt, ns);
  assert.is(back.startedAt, ns + 1n);
});

test('connectCri: calls reach runtime.v1.RuntimeService / ImageService, errors keep their gRPC code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-cri-client-'));
  const sock = join(dir, 'cri.sock');
  const server = new grpc.Server();
  const seen: string[] = [];
  const unimplemented = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'not in this stand-in' });
  const runtimeImpl: Record<string, unknown> = {};
  for (const k of Object.keys(criV1.RuntimeServiceService)) runtimeImpl[k] = unimplemented;
  runtimeImpl.version = (call: grpc.ServerUnaryCall<criV1.VersionRequest, criV1.VersionResponse>, cb: grpc.sendUnaryData<criV1.VersionResponse>) => {
    seen.push(`version ${call.request.version}`);
    cb(null, { version: '0.1.0', runtimeName: 'stand-in', runtimeVersion: '1.2.3', runtimeApiVersion: 'v1' });
  };
  runtimeImpl.execSync = (call: grpc.ServerUnaryCall<criV1.ExecSyncRequest, criV1.ExecSyncResponse>, cb: grpc.sendUnaryData<criV1.ExecSyncResponse>) => {
    seen.push(`exec ${call.request.containerId} ${call.request.cmd.join(' ')} ${call.request.timeout}`);
    cb(null, { stdout: Buffer.from('out\n'), stderr: new Uint8Array(), exitCode: 3 });
  };
  runtimeImpl.containerStatus = (call: grpc.ServerUnaryCall<criV1.ContainerStatusRequest, unknown>, cb: grpc.sendUnaryData<unknown>) =>
    cb({ code: grpc.status.NOT_FOUND, details: `no container ${call.request.containerId}` });
  server.addService(criV1.RuntimeServiceService, runtimeImpl as grpc.UntypedServiceImplementation);
  server.addService(criV1.ImageServiceService, {
    listImages: (_call: unknown, cb: grpc.sendUnaryData<criV1.ListImagesResponse>) =>
      cb(null, { images: [criV1.Image.fromPartial({ id: 'sha256:ab', repoTags: ['x:1'], size: 2n ** 60n })] }),
    imageStatus: (_call: unknown, cb: grpc.sendUnaryData<criV1.ImageStatusResponse>) => cb(null, { image: undefined, info: {} }),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  const cri = await connectCri(sock, { connectTimeoutMs: 5000 });
  try {
    const v = await cri.runtime.version({ version: 'v1' });
    assert.equal(v, { version: '0.1.0', runtimeName: 'stand-in', runtimeVersion: '1.2.3', runtimeApiVersion: 'v1' });
    const ex = await cri.runtime.execSync({ containerId: 'c1', cmd: ['sh', '-c', 'exit 3'], timeout: 7n });
    assert.is(Buffer.from(ex.stdout).toString(), 'out\n');
    assert.is(ex.exitCode, 3);
    assert.equal(seen, ['version v1', 'exec c1 sh -c exit 3 7']);
    const imgs = await cri.image.listImages({});
    assert.is(imgs.images[0]!.size, 2n ** 60n);
    const st = await cri.image.imageStatus({ image: { image: 'absent' } });
    assert.is(st.image, undefined);
    try {
      await cri.runtime.containerStatus({ containerId: 'nope' });
      assert.unreachable('containerStatus should reject');
    } catch (e) {
      assert.is((e as grpc.ServiceError).code, grpc.status.NOT_FOUND);
      assert.match((e as grpc.ServiceError).details, 'no container nope');
    }
    try {
      await cri.runtime.status({});
      assert.unreachable('status should reject');
    } catch (e) {
      assert.is((e as grpc.ServiceError).code, grpc.status.UNIMPLEMENTED);
    }
  } finally {
    cri.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connectCri: unreachable socket rejects after the connect timeout', async () => {
  const t0 = Date.now();
  try {
    await connectCri('/nonexistent/tsshim/cri.sock', { connectTimeoutMs: 300 });
    assert.unreachable('should reject');
  } catch (e) {
    assert.match((e as Error).message, /connectCri: cannot reach \/nonexistent\/tsshim\/cri\.sock within 300 ms/);
  }
  assert.ok(Date.now() - t0 < 5000);
});

test.run();
