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
  shimUnsupported: {
    // Seen in the conformance matrix (checkpoint-criu-failure) with youki 0.7.0: `youki checkpointt`
    // answered "failed operation due to incompatible container status: `Paused`".
    checkpoint:
      'youki 0.7 checkpoints only a running container (libcontainer refuses any other status), ' +
      'and containerd pauses a task before it asks the shim to checkpoint it, so youki refuses every checkpoint through containerd; ' +
      '`youki checkpointt` of a running container works from the CLI',
  },
  // libcontainer 0.7.0 rootfs.rs mount_to_rootfs: only shared/private/slave/unbindable, always with
  // MS_REC ("failed to prepare rootfs: UnknownRootfsPropagation(\"rshared\")" otherwise); containerd's
  // CRI writes rshared (Bidirectional) and rslave (HostToContainer). Same flags under youki's name.
  rootfsPropagationAliases: { rshared: 'shared', rslave: 'slave', rprivate: 'private', runbindable: 'unbindable' },
  flags: {
    // youki's --empty-ns is a boolean, not runc's repeated namespace list.
    'checkpoint --empty-ns': 'reject',
  },
  notes: [
    'no restore; checkpoint is spelled `checkpointt` and refuses a paused container, so not through containerd (which pauses first)',
    'state JSON uses camelCase and omits pid when there is none',
    'events prints youki\'s own pretty-printed Stats without the runc envelope, and no OOM events',
    'log.json lines are tracing JSON: {"timestamp","level":"ERROR","message"}',
    'rootfsPropagation must be an OCI name (shared/slave/private/unbindable): tsshim rewrites containerd\'s rshared/rslave in config.json before create (youki always applies MS_REC)',
    'youki 0.7 exec does not apply the container\'s seccomp profile to exec\'d processes (libcontainer tenant_builder keeps only namespaces, cgroups path, personality and time offsets of linux); runc does',
  ],
});
