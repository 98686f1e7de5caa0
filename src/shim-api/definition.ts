/**
 * HandlerDefinition: everything tsshim knows about one handler type, exported by its
 * folder (src/handlers/<name>/definition.ts) and, later, by third-party handler packages.
 * The composition root lists the definitions in one array (src/composition/registry.ts);
 * the shim's resolver, `tsshim doctor`, `tsshim config ...` and the docs all read it.
 *
 * Plain data and functions: no inversify, no host access. factory() is loaded lazily, so
 * the operator CLI never loads a handler's task code (or the native modules it needs).
 */
import type { HandlerConfig, HandlerFactory } from './handler.js';
import type { HostFacts, Probe } from './host-facts.js';
import type { Operation } from './operations.js';

/** RuntimeClass overhead.podFixed, when the handler costs a pod more than its containers. */
export interface PodOverhead {
  memory: string;
  cpu: string;
  comment: string;
}

/**
 * The handler's part of the config file `tsshim config handlers` writes. The composition
 * root adds the header, `handler`, `name`, the keys every handler shares and `[options]`.
 */
export interface DefaultConfig {
  /** Shown in the header comment: "tsshim handler config: <type> (<description>)". */
  description: string;
  /** Top-level TOML lines after `name` (binary, root), verbatim; may be empty. */
  settings: string;
  /** The `[options]` table's lines, verbatim TOML. */
  options: string;
}

export interface HandlerDefinition<T extends string = string> {
  /** Handler type: `handler = "<type>"` in a config file selects this definition. */
  readonly type: T;
  /** containerd runtime entry and Kubernetes RuntimeClass handler name, e.g. "tsshim-gvisor". */
  readonly runtimeEntry: string;
  /** File name of its config under the config dir, e.g. "gvisor.toml". */
  readonly configFile: string;
  /** One line: what this handler is. */
  readonly summary: string;
  /** Its page, relative to the repository: docs/handlers/<type>.md. */
  readonly docsPage: string;
  /** Default backend binary (a bare name looked up on PATH, or an absolute path). */
  readonly binary: string;
  /** Operations a task of this handler supports through containerd. */
  readonly supports: readonly Operation[];
  /** Known differences from runc-v2, for docs and doctor. */
  readonly notes: readonly string[];
  /** containerd `pod_annotations` globs forwarded to this handler. */
  readonly podAnnotations: readonly string[];
  /** containerd `privileged_without_host_devices` (a VM handler: true). */
  readonly privilegedWithoutHostDevices: boolean;
  readonly podOverhead?: PodOverhead;
  readonly defaultConfig: DefaultConfig;
  /** Binaries the doctor looks up for this handler, given an optional config. */
  binariesFor(config?: HandlerConfig): string[];
  /** Pure: the verdict for these host facts and an optional handler config. */
  assess(facts: HostFacts, config?: HandlerConfig): Probe;
  /** Loads the code that serves tasks (dynamic import: only the shim daemon calls it). */
  factory(): Promise<HandlerFactory>;
}

export type HandlerDefinitionSpec<T extends string> = Omit<HandlerDefinition<T>, 'runtimeEntry' | 'configFile' | 'docsPage' | 'podAnnotations' | 'privilegedWithoutHostDevices' | 'notes'> &
  Partial<Pick<HandlerDefinition<T>, 'runtimeEntry' | 'configFile' | 'docsPage' | 'podAnnotations' | 'privilegedWithoutHostDevices' | 'notes'>>;

const TYPE_RE = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Fills the conventional names (runtime entry tsshim-<type>, <type>.toml, docs/handlers/<type>.md)
 * and no pod annotations, checks the type name, and freezes. Methods are called unbound: an
 * assess() that needs its own definition refers to the exported constant.
 */
export function defineHandler<T extends string>(spec: HandlerDefinitionSpec<T>): HandlerDefinition<T> {
  if (!TYPE_RE.test(spec.type)) throw new TypeError(`handler type ${JSON.stringify(spec.type)} must match ${TYPE_RE}`);
  return Object.freeze({
    runtimeEntry: `tsshim-${spec.type}`,
    configFile: `${spec.type}.toml`,
    docsPage: `docs/handlers/${spec.type}.md`,
    podAnnotations: [],
    privilegedWithoutHostDevices: false,
    notes: [],
    ...spec,
  });
}
