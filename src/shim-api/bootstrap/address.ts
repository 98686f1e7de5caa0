/** Where a shim listens: one socket per (containerd, namespace, group), as runc-v2 computes it. */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { RUNTIME_TYPE } from '../runtime-type.js';

export const SOCKET_DIR = '/run/containerd/s';

/** Grouping as runc-v2: explicit group annotation, else the CRI sandbox id, else the task id. */
export function groupOf(id: string, annotations: Record<string, string>): string {
  return annotations['io.containerd.runc.v2.group'] || annotations['io.kubernetes.cri.sandbox-id'] || id;
}

/**
 * runc-v2 hashes `<containerd address>/<namespace>/<group>`; we salt it with our
 * runtime name so a tsshim task and a runc-v2 task of the same id never share a socket.
 */
export function socketPath(containerdAddress: string, namespace: string, group: string): string {
  const h = createHash('sha256').update(`${RUNTIME_TYPE}:${containerdAddress}/${namespace}/${group}`).digest('hex');
  return `${SOCKET_DIR}/${h}`;
}

/** Does a shim answer on this socket? (false: no file, or nobody listening: a dead shim's file) */
export function isServing(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const toAddress = (path: string) => `unix://${path}`;
export const fromAddress = (address: string) => address.replace(/^unix:\/\//, '');
