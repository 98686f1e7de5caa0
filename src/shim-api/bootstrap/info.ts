/**
 * `-info`: a serialized containerd.types.RuntimeInfo on stdout, as containerd-shim-runc-v2 answers
 * it. containerd 2.x runs `<shim> -info` with the runtime options Any (the runtime entry's
 * `[options]`, for tsshim a runtimeoptions.v1.Options with ConfigPath) on stdin, without a bundle,
 * a namespace or an id; its CRI reads `features` once per runtime handler (recursive read-only
 * mounts from `rro` in mountOptions, user namespaces from namespaces + idmap mounts).
 *
 * The handler is chosen from the options exactly as Create chooses it (selectConfig), and
 * `features` is that handler's backend's own document (`runc features` for runc, youki's for
 * youki, the delegate's `-info` for kata); absent when the backend cannot say.
 */
import { version } from '../../version.js';
import { RUNTIME_TYPE } from '../runtime-type.js';
import { Any, introspection } from '../pb.js';

/** Runtime options are a few hundred bytes; anything near this is not options. */
export const MAX_INFO_INPUT = 1 << 20;

/** stdin as bytes (nothing when it is a terminal: run by hand, there are no options). */
async function readStdin(): Promise<Uint8Array> {
  if (process.stdin.isTTY) return new Uint8Array(0);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > MAX_INFO_INPUT) throw new Error(`-info: more than ${MAX_INFO_INPUT} bytes of runtime options on stdin`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The options Any on stdin (undefined for none), as runc-v2's ReadRuntimeOptions reads it. */
export function decodeInfoInput(bytes: Uint8Array): Any | undefined {
  if (bytes.length === 0) return undefined;
  let any: Any;
  try {
    any = Any.decode(bytes);
  } catch (err) {
    throw new Error(`-info: failed to read runtime options on stdin: ${(err as Error).message}`);
  }
  return any.typeUrl === '' && any.value.length === 0 ? undefined : any;
}

/** The RuntimeInfo bytes for these runtime options (default: read from stdin). */
export async function runtimeInfo(input?: Uint8Array): Promise<Uint8Array> {
  const options = decodeInfoInput(input ?? (await readStdin()));
  const { createLogger } = await import('../../log.js');
  const { compose } = await import('../../composition/root.js');
  // stderr: containerd shows it only when -info fails.
  const log = createLogger({ level: 'warn', base: { runtime: RUNTIME_TYPE, cmd: 'info' } });
  const { resolver } = compose({ namespace: '', log });
  if (!resolver.runtimeFeatures) throw new Error('-info: this resolver cannot describe handlers');
  const r = await resolver.runtimeFeatures(options);
  return introspection.RuntimeInfo.encode(
    introspection.RuntimeInfo.fromPartial({
      name: RUNTIME_TYPE,
      version: { version: version(), revision: '' },
      ...(options ? { options } : {}),
      ...(r.features ? { features: r.features } : {}),
      annotations: { 'io.tsshim.info.handler-type': r.handler.type, 'io.tsshim.info.handler-name': r.handler.name },
    }),
  ).finish();
}
