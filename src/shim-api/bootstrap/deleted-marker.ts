/**
 * After a task's Delete succeeded the daemon leaves `<bundle>/tsshim-deleted.pb`: the encoded
 * DeleteResponse of that Delete. The `delete` subcommand containerd runs next (1.6 runs it after
 * every teardown and waits for it) answers with these bytes, touching nothing: the launcher
 * (bin/containerd-shim-tsshim-v2, ADR 0008) even without booting Node.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** Also named in bin/containerd-shim-tsshim-v2. */
export const DELETED_MARKER = 'tsshim-deleted.pb';

export async function writeDeletedMarker(bundle: string, response: Uint8Array): Promise<void> {
  const file = path.join(bundle, DELETED_MARKER);
  try {
    // Written whole then renamed: a concurrent `delete` reads either nothing or all of it.
    await fsp.writeFile(file + '.tmp', response, { mode: 0o600 });
    await fsp.rename(file + '.tmp', file);
  } catch {
    /* bundle already gone: the subcommand then takes the slow path */
  }
}

/** The `delete` subcommand's read (a one-shot process: nothing else waits on its event loop). */
export function readDeletedMarker(bundle: string): Uint8Array | undefined {
  try {
    return fs.readFileSync(path.join(bundle, DELETED_MARKER));
  } catch {
    return undefined;
  }
}
