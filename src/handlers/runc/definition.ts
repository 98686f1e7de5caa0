/** runc: the reference backend, and tsshim's default handler. */
import { HANDLER_API_VERSION } from '../../shim-api/definition.js';
import { defineOciHandler } from '../oci-cli/definition.js';
import { cgroupSummary } from '../../shim-api/host-facts.js';
import { runcProfile } from './profile.js';

export const runcDefinition = defineOciHandler({
  apiVersion: HANDLER_API_VERSION,
  type: 'runc',
  summary: 'runc, the reference OCI runtime (default handler)',
  profile: runcProfile,
  install: 'Debian: apt-get install runc',
  config: {
    description: 'the reference OCI runtime',
    settings: `# binary = "${runcProfile.binary}"                 # name on PATH or absolute path
# root = "${runcProfile.defaultRoot}"   # state root; the containerd namespace is appended
`,
    options: `systemd_cgroup = false              # true needs systemd as PID 1
# criu_path = "/usr/sbin/criu"      # CRIU binary for checkpoint/restore
# extra_args = []                   # more runc global flags
# timeout_ms = 60000                # bound on each runc command but wait (a hung runc: DeadlineExceeded)
`,
  },
  details: (facts) => ({
    cgroupMode: facts.cgroup.mode,
    systemdPid1: facts.systemd.pid1,
    systemdCgroup: facts.systemd.pid1 && facts.systemd.booted,
  }),
  check(facts, bin, config) {
    const systemdUsable = facts.systemd.pid1 && facts.systemd.booted;
    if (config?.options.systemd_cgroup === true && !systemdUsable) {
      return {
        usable: false,
        reason: `systemd_cgroup = true but systemd is not PID 1 (PID 1 is ${facts.systemd.pid1Name}): runc fails with "systemd not running on this host, cannot use systemd cgroups manager"; set systemd_cgroup = false`,
      };
    }
    const systemd = systemdUsable
      ? 'systemd is PID 1: SystemdCgroup usable'
      : `systemd is not PID 1 (PID 1 is ${facts.systemd.pid1Name}): SystemdCgroup unusable, cgroupfs driver only`;
    return { usable: true, reason: `runc ${bin.version ?? '(version unknown)'}; ${cgroupSummary(facts.cgroup)}; ${systemd}` };
  },
});
