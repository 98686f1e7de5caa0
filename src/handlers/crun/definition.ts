/** crun: a runc-compatible runtime in C. The worked example of docs/handlers/write-a-handler.md. */
import { HANDLER_API_VERSION } from '../../shim-api/definition.js';
import type { BinaryFact, HostFacts } from '../../shim-api/host-facts.js';
import { defineOciHandler, runnable, type Check } from '../oci-cli/definition.js';
import { crunProfile } from './profile.js';

/** crun (1.8) refuses a hybrid layout whose v2 hierarchy has controllers. */
export function crunCgroupCheck(facts: HostFacts, bin: BinaryFact): Check {
  const c = facts.cgroup;
  if (c.mode !== 'hybrid' || !c.unifiedControllers.length || !c.v1Controllers.length) return runnable(facts, bin);
  return {
    usable: false,
    reason: `crun fails on hybrid cgroup layout: v1 controllers are mounted and the v2 hierarchy at ${c.unifiedPath} has controllers (${c.unifiedControllers.join(',')}); crun${bin.version ? ` ${bin.version}` : ''} says "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"`,
  };
}

export const crunDefinition = defineOciHandler({
  apiVersion: HANDLER_API_VERSION,
  type: 'crun',
  summary: 'crun, a fast runc-compatible OCI runtime in C',
  profile: crunProfile,
  install: 'Debian: apt-get install crun',
  config: { description: 'runc-compatible runtime in C', options: 'systemd_cgroup = false\n# extra_args = []                   # more crun global flags\n' },
  check: crunCgroupCheck,
});
