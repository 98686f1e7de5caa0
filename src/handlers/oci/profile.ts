/** Any runc-compatible OCI runtime binary, described by configuration. */
import { defineProfile, type ProfileSpec, type RuntimeProfile } from '../oci-cli/profile.js';
import type { Operation } from '../../shim-api/operations.js';

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
