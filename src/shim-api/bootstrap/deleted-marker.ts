/**
 * After a task's Delete succeeded the daemon leaves `<bundle>/tsshim-deleted.json`;
 * the `delete` subcommand containerd runs next (1.6 runs it after every teardown)
 * then answers from it without loading any handler: nothing is left to clean up.
 */
import fs from 'node:fs';
import path from 'node:path';

export const DELETED_MARKER = 'tsshim-deleted.json';

export interface DeletedMarker {
  pid: number;
  exitStatus: number;
}

export function writeDeletedMarker(bundle: string, m: DeletedMarker): void {
  try {
    fs.writeFileSync(path.join(bundle, DELETED_MARKER), JSON.stringify(m), { mode: 0o600 });
  } catch {
    /* bundle already gone: the subcommand then takes the slow path */
  }
}

export function readDeletedMarker(bundle: string): DeletedMarker | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(bundle, DELETED_MARKER), 'utf8')) as DeletedMarker;
    return Number.isInteger(m.pid) && Number.isInteger(m.exitStatus) ? m : undefined;
  } catch {
    return undefined;
  }
}
