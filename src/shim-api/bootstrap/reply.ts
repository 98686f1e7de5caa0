/**
 * The launcher's answer channel (bin/containerd-shim-tsshim-v2, ADR 0008/0013): under the launcher,
 * `start` answers on fd 3, never on stdout/stderr, so nothing Node or a dependency prints
 * (warnings, NODE_OPTIONS noise) can end up in the address containerd reads. Taken first thing
 * (a close-on-exec copy; fd 3 itself is closed so no child inherits it).
 */
import fs from 'node:fs';
import { closeFd, dupFd } from '../../sys/libc.js';

let fd: number | undefined;

/** Launcher mode: move fd 3 to a private close-on-exec fd. No-op when fd 3 is not open. */
export function takeReplyChannel(): void {
  if (fd !== undefined) return;
  try {
    fd = dupFd(3);
    closeFd(3);
  } catch {
    fd = undefined; // not started by the launcher after all
  }
}

export const hasReplyChannel = (): boolean => fd !== undefined;

/** Write to the answer channel (false when there is none). */
export function reply(text: string): boolean {
  if (fd === undefined) return false;
  try {
    fs.writeSync(fd, text);
  } catch {
    /* the launcher is gone: nobody to answer */
  }
  return true;
}

/** Close the answer channel: the launcher sees EOF and answers containerd. */
export function closeReplyChannel(): void {
  if (fd === undefined) return;
  const f = fd;
  fd = undefined;
  try {
    closeFd(f);
  } catch {
    /* already closed */
  }
}
