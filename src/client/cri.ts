// Small typed client for the Kubernetes Container Runtime Interface (CRI runtime.v1) as containerd's
// CRI plugin serves it on containerd's own gRPC socket. Built on the same helpers as the containerd
// client (./containerd.ts): a grpc-js channel to the unix socket and promise wrappers over the
// ts-proto definitions generated from our runtime.v1 subset (proto/k8s/cri/runtime/v1/api.proto).
//
//   const cri = await connectCri('/run/x/c.sock');
//   const { runtimeApiVersion } = await cri.runtime.version({ version: 'v1' });
//   const { podSandboxId } = await cri.runtime.runPodSandbox({ config, runtimeHandler: 'tsshim-runc' });
//   cri.close();
//
// Requests are DeepPartial (missing fields get proto3 defaults); 64-bit integers are bigint (CRI
// timestamps are nanoseconds since the epoch, beyond 2^53). Errors reject with grpc-js
// ServiceError. The CRI plugin ignores the containerd-namespace metadata: it always works in the
// `k8s.io` namespace.

import { dialGrpc, promiseClient, type ConnectOptions, type PromiseClient } from './containerd.js';
import {
  ImageServiceClient,
  ImageServiceDefinition,
  RuntimeServiceClient,
  RuntimeServiceDefinition,
} from '../proto/k8s/cri/runtime/v1/api.js';

export * as criV1 from '../proto/k8s/cri/runtime/v1/api.js';

/** The containerd namespace the CRI plugin keeps its images, containers and tasks in. */
export const CRI_NAMESPACE = 'k8s.io';


export interface CriClient {
  /** The socket path or grpc-js target that was given to connectCri. */
  readonly address: string;
  /** runtime.v1.RuntimeService */
  readonly runtime: PromiseClient<typeof RuntimeServiceDefinition>;
  /** runtime.v1.ImageService */
  readonly image: PromiseClient<typeof ImageServiceDefinition>;
  /** The generated grpc-js clients (callback style) on the same channel. */
  readonly raw: {
    readonly runtime: RuntimeServiceClient;
    readonly image: ImageServiceClient;
  };
  /** Closes the shared channel; pending calls fail with CANCELLED/UNAVAILABLE. */
  close(): void;
}

/**
 * Connects to a CRI endpoint (`address` is a socket path or a grpc-js target; for containerd it is
 * containerd's gRPC socket) and waits until the connection is up. It does not check that the CRI
 * plugin is loaded: the first call then fails with UNIMPLEMENTED.
 */
export async function connectCri(address: string, options: ConnectOptions = {}): Promise<CriClient> {
  const { base, channel, target, creds, clientOpts } = await dialGrpc(address, 'connectCri', options);
  return {
    address,
    runtime: promiseClient(base, RuntimeServiceDefinition),
    image: promiseClient(base, ImageServiceDefinition),
    raw: {
      runtime: new RuntimeServiceClient(target, creds, clientOpts),
      image: new ImageServiceClient(target, creds, clientOpts),
    },
    close() {
      channel.close();
    },
  };
}
