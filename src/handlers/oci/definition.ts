/**
 * Any runc-compatible binary by configuration (its default config file shows crun):
 *   handler = "oci"; name = "myrt"; binary = "/usr/bin/myrt"
 *   [options] global_args = ["--cgroup-manager=cgroupfs"]; unsupported = ["checkpoint", "restore"]
 */
import { HANDLER_API_VERSION } from '../../shim-api/definition.js';
import type { HandlerConfig } from '../../shim-api/handler.js';
import { invalidArgument } from '../../shim-api/errors.js';
import { RUNC_OPERATIONS, isOperation } from '../../shim-api/operations.js';
import { defineOciHandler, runnable } from '../oci-cli/definition.js';
import { crunCgroupCheck } from '../crun/definition.js';
import { crunProfile } from '../crun/profile.js';
import { genericProfile } from './profile.js';

export function profileFromConfig(config: HandlerConfig) {
  if (!config.binary) throw invalidArgument(`oci handler "${config.name}": "binary" is required`);
  const unsupported = (config.options.unsupported ?? []) as unknown[];
  for (const op of unsupported) {
    if (!isOperation(op)) throw invalidArgument(`oci handler "${config.name}": unknown operation ${JSON.stringify(op)} in "unsupported"`);
  }
  return genericProfile({
    name: config.name,
    binary: config.binary,
    globalArgs: ((config.options.global_args ?? []) as unknown[]).map(String),
    supports: RUNC_OPERATIONS.filter((op) => !unsupported.includes(op)),
    root: config.root,
  });
}

const crunUnsupported = RUNC_OPERATIONS.filter((op) => !crunProfile.supports.has(op));

export const ociDefinition = defineOciHandler({
  apiVersion: HANDLER_API_VERSION,
  type: 'oci',
  summary: 'any runc-compatible OCI runtime by configuration (default: crun)',
  profile: crunProfile,
  profileFor: profileFromConfig,
  config: {
    description: 'any runc-compatible runtime; here crun',
    settings: `binary = "${crunProfile.binary}"                     # required: name on PATH or absolute path
root = "${crunProfile.defaultRoot}"
`,
    options: `global_args = []                    # runtime global flags, e.g. ["--cgroup-manager=cgroupfs"]
unsupported = ${JSON.stringify(crunUnsupported)}   # operations the binary lacks
`,
  },
  // The example binary is crun: its cgroup limits apply whatever the handler type.
  check: (facts, bin) => (/^crun\b/.test(bin.name.replace(/^.*\//, '')) ? crunCgroupCheck(facts, bin) : runnable(facts, bin)),
});
