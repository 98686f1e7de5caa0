/** crun as packaged in Debian 12 (1.8.1, built without CRIU). */
import { defineProfile } from '../oci-cli/profile.js';
import { allOperationsExcept } from '../../shim-api/operations.js';

export const crunProfile = defineProfile({
  name: 'crun',
  binary: 'crun',
  defaultRoot: '/run/containerd/crun',
  supports: allOperationsExcept('events', 'checkpoint', 'restore', 'features'),
  notes: [
    'no events: stats and OOM must come from the cgroup',
    '1.8.1 refuses hybrid cgroup hosts: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"',
    '--rootless is accepted and ignored',
  ],
});
