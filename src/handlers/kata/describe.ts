/**
 * What the kata handler can do, as data for operator tools (registry, doctor, docs).
 * Kata has no OCI runtime CLI and hence no RuntimeProfile: the handler forwards the
 * whole task API to a shim v2 binary, so the operations are those the delegate serves.
 */
import { allOperationsExcept, type Operation } from '../oci-cli/profile.js';

export const kataDescription: {
  readonly binary: string;
  readonly supports: readonly Operation[];
  readonly notes: readonly string[];
} = Object.freeze({
  binary: 'containerd-shim-kata-v2',
  // Kata's Go shim answers Checkpoint with NotImplemented.
  supports: Object.freeze(allOperationsExcept('checkpoint')),
  notes: Object.freeze([
    'every task API call is forwarded over ttrpc to the delegate shim (containerd-shim-kata-v2), which publishes its own events to containerd',
    'no checkpoint/restore (Kata answers NotImplemented)',
    'needs /dev/kvm and a CPU with vmx/svm: one lightweight VM per pod',
    'Kubernetes pods need RuntimeClass overhead for the VM (kata-deploy used 160Mi / 250m)',
    'Kata\'s own configuration.toml is passed to the delegate as runtime options ConfigPath ([options] config_path)',
  ]),
});
