/** Any runc-compatible OCI runtime binary, described by configuration. */
import { allOperationsExcept, defineProfile, type Operation, type ProfileSpec, type RuntimeProfile } from '../oci-cli/profile.js';

export interface GenericProfileOptions extends Omit<ProfileSpec, 'defaultRoot' | 'supports'> {
  name: string;
  binary: string;
  globalArgs?: readonly string[];
  /** Operations the binary has; default: all of runc's. */
  supports?: Iterable<Operation>;
  /** State root; default /run/containerd/<name>. */
  root?: string;
}

export function genericProfile(o: GenericProfileOptions): RuntimeProfile {
  const { root, ...rest } = o;
  return defineProfile({ ...rest, defaultRoot: root ?? `/run/containerd/${o.name}` });
}

/** crun as packaged in Debian 12 (1.8.1, built without CRIU). */
export const crunProfile: RuntimeProfile = genericProfile({
  name: 'crun',
  binary: 'crun',
  supports: allOperationsExcept('events', 'checkpoint', 'restore', 'features'),
  notes: [
    'no events: stats and OOM must come from the cgroup',
    '1.8.1 refuses hybrid cgroup hosts: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"',
    '--rootless is accepted and ignored',
  ],
});
