/** runc: the reference OCI runtime; every operation, CRIU checkpoint/restore. */
import { defineProfile } from '../oci-cli/profile.js';

export const runcProfile = defineProfile({
  name: 'runc',
  binary: 'runc',
  defaultRoot: '/run/containerd/runc',
  criuFlag: '--criu',
  notes: [
    'checkpoint/restore go through CRIU (--criu selects the binary); CRIU 3.17.1 cannot initialise on kernel 6.18 here',
    '--systemd-cgroup needs a running systemd',
    'state never reports "creating"; a zombie init shows as "stopped"',
  ],
});
