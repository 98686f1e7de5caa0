/** youki: runc-compatible, with the differences its profile declares. */
import { HANDLER_API_VERSION } from '../../shim-api/definition.js';
import { defineOciHandler } from '../oci-cli/definition.js';
import { youkiProfile } from './profile.js';

export const youkiDefinition = defineOciHandler({
  apiVersion: HANDLER_API_VERSION,
  type: 'youki',
  summary: 'youki, a runc-compatible OCI runtime in Rust',
  profile: youkiProfile,
  notInstalled: () => 'not installed: youki is not packaged for Debian 12; install from its releases',
  config: {
    description: 'runc-compatible runtime in Rust',
    settings: `# binary = "/usr/local/bin/youki"   # default: youki on PATH\n# root = "${youkiProfile.defaultRoot}"\n`,
    options: 'systemd_cgroup = false\n',
  },
});
