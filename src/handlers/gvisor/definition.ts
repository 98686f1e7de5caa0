/** gVisor through runsc's OCI CLI (ptrace/systrap/kvm platform, network none/sandbox/host). */
import { HANDLER_API_VERSION } from '../../shim-api/definition.js';
import type { HandlerConfig } from '../../shim-api/handler.js';
import { invalidArgument } from '../../shim-api/errors.js';
import { NESTED_KVM, type HostFacts } from '../../shim-api/host-facts.js';
import { defineOciHandler } from '../oci-cli/definition.js';
import { existsSync } from 'node:fs';
import { DEBIAN_RUNSC, GVISOR_PEER_RUNSC, gvisorProfileWith, type GvisorOptions, type RunscBuild } from './profile.js';

/**
 * The default runsc (ADR 0017): the pinned build at GVISOR_PEER_RUNSC when setup made it, else
 * `runsc` on PATH (Debian's). Decided once when the handler module loads (one stat, not on a
 * request path).
 */
export const DEFAULT_RUNSC: RunscBuild = existsSync(GVISOR_PEER_RUNSC) ? { binary: GVISOR_PEER_RUNSC, update: true, checkpointResumes: true, ociFeatures: true } : DEBIAN_RUNSC;

/** The runsc build a config names: its `binary`, else the default. Only the pinned build is known to have `update`. */
export function runscBuildFor(config?: HandlerConfig): RunscBuild {
  const b = config?.binary;
  if (b === undefined || b === '') return DEFAULT_RUNSC;
  return b === GVISOR_PEER_RUNSC ? { binary: b, update: true, checkpointResumes: true, ociFeatures: true } : { binary: b, update: false, checkpointResumes: false, ociFeatures: false };
}

/**
 * Platform when the config names none: ptrace, with either build. systrap runs on this kind of VM
 * with the pinned runsc, but through tsshim its OOM kill ends as exit 1 with no /tasks/oom where
 * ptrace (and runc-v2) give 137 and the event (ADR 0017); `platform = "systrap"` still selects it.
 */
export function defaultPlatform(_build: RunscBuild): GvisorOptions['platform'] {
  return 'ptrace';
}

/** `[options]` of a gvisor handler config -> runsc flags. */
export function gvisorOptions(config: HandlerConfig): GvisorOptions {
  const o = config.options;
  const build = runscBuildFor(config);
  const platform = (o.platform ?? defaultPlatform(build)) as GvisorOptions['platform'];
  const network = (o.network ?? 'none') as GvisorOptions['network'];
  const extra = (o.runsc_config ?? {}) as Record<string, string | number | boolean>;
  try {
    const opts: GvisorOptions = { platform, network, debugLogDir: typeof o.debug_log_dir === 'string' ? o.debug_log_dir : undefined, extra };
    gvisorProfileWith(opts, build); // validate now, with a message that names the config
    return opts;
  } catch (err) {
    throw invalidArgument(`gvisor handler "${config.name}": ${(err as Error).message}`);
  }
}

/** Year of a runsc build from versions like "0.0~20221219.0" or "release-20230417.0". */
export function runscBuildYear(version: string | undefined): number | undefined {
  const m = /(?:~|release-|^)(20\d{2})(\d{4})/.exec(version ?? '');
  return m ? Number(m[1]) : undefined;
}

const platformOf = (config?: HandlerConfig) =>
  typeof config?.options.platform === 'string' && config.options.platform !== '' ? config.options.platform : defaultPlatform(runscBuildFor(config));

/** The default profile: the default runsc with its default platform, no network. */
export const gvisorDefaultProfile = gvisorProfileWith({ platform: defaultPlatform(DEFAULT_RUNSC), network: 'none' }, DEFAULT_RUNSC);

function kvmState(facts: HostFacts): string {
  if (!facts.kvm.present) return 'kvm platform unusable: no /dev/kvm';
  if (!facts.kvm.readWrite) return 'kvm platform unusable: /dev/kvm is not readable and writable';
  if (!facts.cpuVirt) return `kvm platform hangs on this host: ${NESTED_KVM}`;
  return `kvm platform possible (/dev/kvm, ${facts.cpuVirt})`;
}

export const gvisorDefinition = defineOciHandler({
  apiVersion: HANDLER_API_VERSION,
  type: 'gvisor',
  summary: 'gVisor through runsc\'s runc-compatible CLI (application kernel sandbox)',
  profile: gvisorDefaultProfile,
  profileFor: (config) => gvisorProfileWith(gvisorOptions(config), runscBuildFor(config)),
  install: 'scripts/peers.sh gvisor builds the pinned runsc; Debian: apt-get install runsc',
  podAnnotations: ['dev.gvisor.*'],
  config: {
    description: 'gVisor through runsc',
    settings: `# binary = "/usr/bin/runsc"   # Debian's 2022 build; default: ${GVISOR_PEER_RUNSC} when setup built it, else runsc on PATH\n# root = "${gvisorDefaultProfile.defaultRoot}"\n`,
    options: `# platform = "${defaultPlatform(DEFAULT_RUNSC)}"   # ptrace | systrap (runsc >= 2023; see ADR 0017) | kvm (needs /dev/kvm and vmx/svm)
network = "none"      # none | sandbox (needs a CNI-prepared network namespace) | host
# debug_log_dir = "/var/log/runsc"   # per-command runsc debug logs

# [options.runsc_config]  # more runsc global flags: key = value becomes --key=value
# overlay2 = "root:memory"
`,
  },
  details: (facts, config) => ({ platform: platformOf(config), kvmDevice: facts.kvm.present, cpuVirt: facts.cpuVirt }),
  check(facts, bin, config) {
    const v = `runsc ${bin.version ?? '(version unknown)'}`;
    const platform = platformOf(config);
    switch (platform) {
      case 'ptrace':
        return { usable: true, reason: `${v}; platform ptrace OK; ${kvmState(facts)}` };
      case 'systrap': {
        const year = runscBuildYear(bin.version);
        if (year !== undefined && year < 2023) return { usable: false, reason: `${v} predates the systrap platform (runsc >= 2023): use platform = "ptrace"` };
        return { usable: true, reason: `${v}; platform systrap OK` };
      }
      case 'kvm': {
        const ok = facts.kvm.present && facts.kvm.readWrite && facts.cpuVirt !== null;
        return { usable: ok, reason: ok ? `${v}; platform kvm: /dev/kvm and ${facts.cpuVirt} present` : `${v}; platform kvm: ${kvmState(facts)}; use platform = "ptrace"` };
      }
      default:
        return { usable: false, reason: `unknown gVisor platform "${platform}": use ptrace, systrap or kvm` };
    }
  },
});
