// Which kernel a container sees, from what it prints for `uname -r` and `dmesg`.
//
//   gvisor       dmesg is gVisor's synthetic log ("Starting gVisor...")
//   host-kernel  uname -r equals the host's release
//   vm           neither, and a kernel release was printed: another kernel (a Kata VM's guest kernel)
//   unknown      no kernel release printed (no output, a failed probe): nothing seen, never a VM
import { release } from 'node:os';

export type SeenKernel = 'host-kernel' | 'gvisor' | 'vm';

/** The command to run inside the container; its output goes to classifyKernel. */
export const KERNEL_PROBE = ['sh', '-c', 'echo "uname=$(uname -r)"; dmesg 2>&1 | head -n 5'];

/** What classifyKernel saw: a declarable kernel, or `unknown` when the output names no kernel. */
export type Seen = SeenKernel | 'unknown';

export function classifyKernel(output: string, hostRelease: string = release()): { kernel: Seen; uname: string; dmesg: string } {
  const lines = output.split('\n');
  const uname = (lines.find((l) => l.startsWith('uname=')) ?? 'uname=').slice('uname='.length).trim();
  const dmesg = lines.filter((l) => !l.startsWith('uname=')).join('\n').trim();
  if (/\bgVisor\b/.test(dmesg)) return { kernel: 'gvisor', uname, dmesg };
  if (uname === '') return { kernel: 'unknown', uname, dmesg };
  if (uname === hostRelease) return { kernel: 'host-kernel', uname, dmesg };
  return { kernel: 'vm', uname, dmesg };
}
