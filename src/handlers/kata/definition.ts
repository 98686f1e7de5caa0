/**
 * Kata Containers: no OCI runtime CLI and hence no RuntimeProfile. The handler forwards the
 * whole task API to a shim v2 binary (containerd-shim-kata-v2), so the operations are those
 * the delegate serves.
 */
import type { HandlerConfig } from '../../shim-api/handler.js';
import { HANDLER_API_VERSION, defineHandler, type HandlerDefinition } from '../../shim-api/definition.js';
import { NESTED_KVM, factOf, verdict } from '../../shim-api/host-facts.js';
import { allOperationsExcept } from '../../shim-api/operations.js';

const BINARY = 'containerd-shim-kata-v2';

const binaryFor = (config?: HandlerConfig) =>
  (typeof config?.options.shim === 'string' && config.options.shim !== '' ? config.options.shim : undefined) ?? config?.binary ?? BINARY;

export const kataDefinition: HandlerDefinition<'kata'> = defineHandler({
  apiVersion: HANDLER_API_VERSION,
  type: 'kata',
  summary: 'Kata Containers: delegates the task API to containerd-shim-kata-v2 (a VM per pod)',
  binary: BINARY,
  // Kata's Go shim answers Checkpoint with NotImplemented.
  supports: Object.freeze(allOperationsExcept('checkpoint')),
  notes: Object.freeze([
    'every task API call is forwarded over ttrpc to the delegate shim (containerd-shim-kata-v2), which publishes its own events to containerd',
    'no checkpoint/restore (Kata answers NotImplemented)',
    'needs /dev/kvm and a CPU with vmx/svm: one lightweight VM per pod',
    'Kubernetes pods need RuntimeClass overhead for the VM (kata-deploy used 160Mi / 250m)',
    'Kata\'s own configuration.toml is passed to the delegate as runtime options ConfigPath ([options] config_path)',
  ]),
  podAnnotations: ['io.katacontainers.*'],
  privilegedWithoutHostDevices: true,
  podOverhead: {
    memory: '160Mi',
    cpu: '250m',
    comment: 'the pod VM: hypervisor, guest kernel and kata-agent, charged to every pod (kata-deploy used 160Mi/250m; measure yours)',
  },
  defaultConfig: {
    description: 'delegates to containerd-shim-kata-v2',
    settings: '',
    options: `shim = "${BINARY}"   # the delegate shim v2 binary (name on PATH or absolute path)
# config_path = "/opt/kata/share/defaults/kata-containers/configuration.toml"   # Kata's own config
`,
  },
  binariesFor: (config) => [binaryFor(config)],
  assess(facts, config) {
    const bin = factOf(facts, binaryFor(config));
    const details = { kvmDevice: facts.kvm.present, kvmReadWrite: facts.kvm.readWrite, cpuVirt: facts.cpuVirt };
    const problems: string[] = [];
    if (!bin.path) problems.push(`not installed: ${bin.name} not found on PATH (Kata Containers is not packaged for Debian 12; install from its releases)`);
    else if (bin.versionError) problems.push(`${bin.path} is not runnable: ${bin.versionError}`);
    if (!facts.kvm.present) problems.push('no /dev/kvm: Kata needs hardware virtualisation');
    else if (!facts.kvm.readWrite) problems.push('/dev/kvm is not readable and writable by this user');
    if (!facts.cpuVirt) problems.push(`${NESTED_KVM}: Kata VMs cannot run`);
    if (problems.length) return verdict(kataDefinition, bin, false, problems.join('; '), details);
    return verdict(kataDefinition, bin, true, `${bin.name} ${bin.version ?? '(version unknown)'}; /dev/kvm read-write; CPU has ${facts.cpuVirt}`, details);
  },
  factory: async () => (await import('./factory.js')).kataHandlerFactory,
});
