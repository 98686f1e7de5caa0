/**
 * `-info`: a serialized containerd.types.RuntimeInfo on stdout
 * {name 1, version 2 {version 1, revision 2}}. Written by hand: three strings.
 */
import { version } from '../../version.js';
import { RUNTIME_TYPE } from '../runtime-type.js';

function field(no: number, bytes: Uint8Array): Buffer {
  const len: number[] = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([(no << 3) | 2, ...len]), bytes]);
}

export async function runtimeInfo(): Promise<Uint8Array> {
  const rv = Buffer.concat([field(1, Buffer.from(version())), field(2, Buffer.from(''))]);
  return Buffer.concat([field(1, Buffer.from(RUNTIME_TYPE)), field(2, rv)]);
}
