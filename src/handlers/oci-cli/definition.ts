/**
 * defineOciHandler(): the HandlerDefinition of a runc-compatible backend, built from its
 * RuntimeProfile. A new backend of this kind is a folder with profile.ts and
 * definition.ts calling this, plus one line in src/composition/registry.ts
 * (src/handlers/crun/ is the worked example; docs/handlers/write-a-handler.md), or a handler
 * package calling it through `tsshim/handler` (docs/handlers/sdk.md).
 */
import path from 'node:path';
import type { HandlerConfig } from '../../shim-api/handler.js';
import { defineHandler, type ConformanceHints, type DefaultConfig, type HandlerApiVersion, type HandlerDefinition } from '../../shim-api/definition.js';
import { binaryProblem, cgroupSummary, factOf, verdict, type BinaryFact, type HostFacts, type Probe } from '../../shim-api/host-facts.js';
import type { RuntimeProfile } from './profile.js';
import type { SpecEditor } from './spec-dialect.js';

/** The verdict once the binary is found and runnable. */
export interface Check {
  usable: boolean;
  reason: string;
}

export interface OciDefinitionSpec<T extends string> {
  /** The handler API version the definition was written against (HANDLER_API_VERSION). */
  apiVersion: HandlerApiVersion;
  type: T;
  summary: string;
  /** The default profile: binary, supports and notes come from it. */
  profile: RuntimeProfile;
  /** The profile for a config (default: `profile`; binary/root overrides are the driver's). */
  profileFor?: (config: HandlerConfig) => RuntimeProfile;
  /** The `[options]` lines of the default config file and its header description. */
  config: Pick<DefaultConfig, 'description' | 'options'> & Partial<Pick<DefaultConfig, 'settings'>>;
  /** How to install it, for "not installed" (e.g. "Debian: apt-get install crun"). */
  install?: string;
  /** The whole "not installed" line, when the install hint is not enough. */
  notInstalled?: (bin: BinaryFact) => string;
  /** Host facts reported with the verdict (default: { cgroupMode }). */
  details?: (facts: HostFacts, config?: HandlerConfig) => Probe['details'];
  /** The verdict once the binary is runnable (default: usable, "<binary> <version>; <cgroups>"). */
  check?: (facts: HostFacts, bin: BinaryFact, config?: HandlerConfig) => Check;
  podAnnotations?: readonly string[];
  /**
   * The handler's edit of every task's OCI spec (config.json) before the backend's `create`: OCI
   * hooks, a default seccomp profile, annotations, ... Called once per distinct handler config when
   * the shim builds the handler (throw invalidArgument naming `config.name` for bad `[options]`:
   * that Create fails with it); the editor it returns changes the spec in place, once per Create.
   */
  specEditor?: (config: HandlerConfig) => SpecEditor | undefined;
  /** Defaults: runtimeEntry tsshim-<type>, configFile <type>.toml, docsPage docs/handlers/<type>.md. */
  runtimeEntry?: string;
  configFile?: string;
  docsPage?: string;
  /** For the conformance kit (default: a host-kernel handler like runc). */
  conformance?: ConformanceHints;
}

/** The default check: usable, with the version and the cgroup layout. */
export function runnable(facts: HostFacts, bin: BinaryFact): Check {
  return { usable: true, reason: `${path.basename(bin.name)} ${bin.version ?? '(version unknown)'}; ${cgroupSummary(facts.cgroup)}` };
}

export function defineOciHandler<T extends string>(spec: OciDefinitionSpec<T>): HandlerDefinition<T> {
  const { profile } = spec;
  const profileFor = spec.profileFor ?? (() => profile);
  const binariesFor = (config?: HandlerConfig) => [config?.binary ?? profile.binary];
  const def: HandlerDefinition<T> = defineHandler({
    apiVersion: spec.apiVersion,
    type: spec.type,
    ...(spec.runtimeEntry ? { runtimeEntry: spec.runtimeEntry } : {}),
    ...(spec.configFile ? { configFile: spec.configFile } : {}),
    ...(spec.docsPage ? { docsPage: spec.docsPage } : {}),
    ...(spec.conformance ? { conformance: spec.conformance } : {}),
    summary: spec.summary,
    binary: profile.binary,
    supports: [...profile.supports].filter((op) => !profile.shimUnsupported[op]),
    notes: profile.notes ?? [],
    ...(spec.podAnnotations ? { podAnnotations: spec.podAnnotations } : {}),
    defaultConfig: {
      description: spec.config.description,
      settings: spec.config.settings ?? `# binary = "${profile.binary}"   # name on PATH or absolute path\n# root = "${profile.defaultRoot}"\n`,
      options: spec.config.options,
    },
    binariesFor,
    assess(facts, config) {
      const bin = factOf(facts, binariesFor(config)[0]!);
      const details = spec.details?.(facts, config) ?? { cgroupMode: facts.cgroup.mode };
      const notInstalled = spec.notInstalled?.(bin) ?? `not installed: ${bin.name} not found on PATH${spec.install ? ` (${spec.install})` : ''}`;
      const early = binaryProblem(def, bin, notInstalled, details);
      if (early) return early;
      const c = (spec.check ?? runnable)(facts, bin, config);
      return verdict(def, bin, c.usable, c.reason, details);
    },
    factory: async () => (await import('./factory.js')).ociHandlerFactory(spec.type, profileFor, spec.specEditor),
  });
  return def;
}
