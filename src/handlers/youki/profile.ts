/** youki: runc-compatible CLI in Rust. */
import { defineProfile } from '../oci-cli/profile.js';
import { allOperationsExcept } from '../../shim-api/operations.js';

export const youkiProfile = defineProfile({
  name: 'youki',
  binary: 'youki',
  defaultRoot: '/run/containerd/youki',
  supports: allOperationsExcept('restore'),
  // clap derives the subcommand from the enum variant `Checkpointt`.
  checkpointSubcommand: 'checkpointt',
  flags: {
    // youki's --empty-ns is a boolean, not runc's repeated namespace list.
    'checkpoint --empty-ns': 'reject',
  },
  notes: [
    'no restore; checkpoint is spelled `checkpointt`',
    'state JSON uses camelCase and omits pid when there is none',
    'events prints youki\'s own pretty-printed Stats without the runc envelope, and no OOM events',
    'log.json lines are tracing JSON: {"timestamp","level":"ERROR","message"}',
  ],
});
