/**
 * HandlerDefinition: everything tsshim knows about one handler type, exported by its
 * folder (src/handlers/<name>/definition.ts) and, the same thing, by a third-party handler
 * package (the default export of a module a handler config names, `handler = "module:..."`;
 * the public entry is src/sdk/handler.ts, `tsshim/handler`; docs/handlers/sdk.md, ADR 0023).
 * The composition root lists the built-in definitions in one array (src/composition/registry.ts);
 * the shim's resolver, `tsshim doctor`, `tsshim config ...` and the docs all read it.
 *
 * Plain data and functions: no inversify, no host access. factory() is loaded lazily, so
 * the operator CLI never loads a handler's task code (or the native modules it needs).
 */
import type { HandlerConfig, HandlerFactory } from './handler.js';
import type { HostFacts, Probe } from './host-facts.js';
import { ALL_OPERATIONS, isOperation, type Operation } from './operations.js';

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

/**
 * The version of this contract (HandlerDefinition, HandlerFactory, TaskHandler, HandlerContext and
 * the helpers of `tsshim/handler`). A definition declares the version it was written against as a
 * literal (`apiVersion: 1`); tsshim refuses a definition whose version it does not serve, with an
 * error naming both. Additions that old definitions need not know about keep the version; a change
 * an existing handler would have to follow (a renamed or newly required member, a changed
 * signature or meaning) raises it (docs/handlers/sdk.md, "Stability").
 */
export const HANDLER_API_VERSION = 1;
export type HandlerApiVersion = typeof HANDLER_API_VERSION;
/** The versions this tsshim serves. */
export const SUPPORTED_HANDLER_API_VERSIONS: readonly number[] = Object.freeze([HANDLER_API_VERSION]);

/** What the conformance kit (`tsshim conformance --handler-config`) must know to judge a handler fairly. */
export interface ConformanceHints {
  /** The kernel a container sees: the host's (default), gVisor's Sentry, or a VM's own. */
  readonly isolation?: 'host-kernel' | 'gvisor' | 'vm';
  /** How Checkpoint is carried out (default: CRIU). */
  readonly checkpointEngine?: 'criu' | 'runsc';
  /** Whether the task pid is a host process in the container's own pid namespace (default true; false: a sandbox or VM). */
  readonly hostPidNamespaceJoinable?: boolean;
  /** Differences from runc-v2 the handler declares, keyed `<scenario id>:<observation path>`, with the reason: reported, not failures. */
  readonly knownDifferences?: Readonly<Record<string, string>>;
}

export interface HandlerDefinition<T extends string = string> {
  /** The handler API version this definition was written against (HANDLER_API_VERSION when it was). */
  readonly apiVersion: HandlerApiVersion;
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
  /** For the conformance kit; default: a host-kernel handler like runc. */
  readonly conformance?: ConformanceHints;
  /** Binaries the doctor looks up for this handler, given an optional config. */
  binariesFor(config?: HandlerConfig): string[];
  /** Pure: the verdict for these host facts and an optional handler config. */
  assess(facts: HostFacts, config?: HandlerConfig): Probe;
  /** Loads the code that serves tasks (dynamic import: only the shim daemon calls it). */
  factory(): Promise<HandlerFactory>;
}

export type HandlerDefinitionSpec<T extends string> = Omit<HandlerDefinition<T>, 'runtimeEntry' | 'configFile' | 'docsPage' | 'podAnnotations' | 'privilegedWithoutHostDevices' | 'notes'> &
  Partial<Pick<HandlerDefinition<T>, 'runtimeEntry' | 'configFile' | 'docsPage' | 'podAnnotations' | 'privilegedWithoutHostDevices' | 'notes'>>;

export const TYPE_RE = /^[a-z0-9][a-z0-9-]*$/;

const OPTIONAL_STRINGS = ['runtimeEntry', 'configFile', 'docsPage'] as const;

/**
 * The shape check every definition passes, built-in or loaded from a module: the fields a
 * HandlerDefinition must have, with the right types, the type name, the API version. Returns the
 * problems (empty: fine), each one line naming the field. Structural on purpose: a module may have
 * been built with another copy of this file.
 */
export function definitionProblems(d: unknown): string[] {
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return [`not an object but ${d === null ? 'null' : Array.isArray(d) ? 'an array' : typeof d}`];
  const o = d as Record<string, unknown>;
  const out: string[] = [];
  if (o.apiVersion === undefined) out.push(`apiVersion is missing: declare the handler API version the definition was written against (apiVersion: ${HANDLER_API_VERSION})`);
  else if (!SUPPORTED_HANDLER_API_VERSIONS.includes(o.apiVersion as number)) {
    out.push(`apiVersion ${JSON.stringify(o.apiVersion)} is not served by this tsshim (it serves handler API ${SUPPORTED_HANDLER_API_VERSIONS.join(', ')}): use a tsshim that serves it, or a version of the handler written for ${HANDLER_API_VERSION}`);
  }
  if (typeof o.type !== 'string' || !TYPE_RE.test(o.type)) out.push(`type ${JSON.stringify(o.type)} must be a string matching ${TYPE_RE}`);
  for (const k of ['summary', 'binary', ...OPTIONAL_STRINGS] as const) if (typeof o[k] !== 'string' || o[k] === '') out.push(`${k} must be a non-empty string, got ${JSON.stringify(o[k])}`);
  if (typeof o.runtimeEntry === 'string' && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(o.runtimeEntry)) out.push(`runtimeEntry ${JSON.stringify(o.runtimeEntry)} is not a containerd runtime name`);
  if (typeof o.configFile === 'string' && (o.configFile.includes('/') || !o.configFile.endsWith('.toml'))) out.push(`configFile ${JSON.stringify(o.configFile)} must be a file name ending in .toml`);
  if (!Array.isArray(o.supports) || o.supports.length === 0 || !o.supports.every(isOperation)) out.push(`supports must be a non-empty list of operations (${ALL_OPERATIONS.join(', ')}), got ${JSON.stringify(o.supports)}`);
  for (const k of ['notes', 'podAnnotations'] as const) if (!Array.isArray(o[k]) || !(o[k] as unknown[]).every((x) => typeof x === 'string')) out.push(`${k} must be a list of strings`);
  if (typeof o.privilegedWithoutHostDevices !== 'boolean') out.push('privilegedWithoutHostDevices must be a boolean');
  const dc = o.defaultConfig as Record<string, unknown> | undefined;
  if (typeof dc !== 'object' || dc === null || ['description', 'settings', 'options'].some((k) => typeof dc[k] !== 'string')) out.push('defaultConfig must be { description, settings, options } (strings)');
  for (const k of ['binariesFor', 'assess', 'factory'] as const) if (typeof o[k] !== 'function') out.push(`${k} must be a function`);
  if (o.podOverhead !== undefined) {
    const p = o.podOverhead as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || ['memory', 'cpu', 'comment'].some((k) => typeof p[k] !== 'string')) out.push('podOverhead must be { memory, cpu, comment } (strings)');
  }
  if (o.conformance !== undefined && (typeof o.conformance !== 'object' || o.conformance === null)) out.push('conformance must be an object');
  return out;
}

/** The structural check as a TypeError (defineHandler) or a list for callers that word their own error. */
export function assertDefinition(d: unknown, what = 'handler definition'): asserts d is HandlerDefinition {
  const p = definitionProblems(d);
  if (p.length) throw new TypeError(`${what}: ${p.join('; ')}`);
}

/**
 * Fills the conventional names (runtime entry tsshim-<type>, <type>.toml, docs/handlers/<type>.md)
 * and no pod annotations, checks the result (definitionProblems: type name, API version, shape),
 * and freezes. Methods are called unbound: an assess() that needs its own definition refers to the
 * exported constant.
 */
export function defineHandler<T extends string>(spec: HandlerDefinitionSpec<T>): HandlerDefinition<T> {
  if (typeof spec?.type !== 'string' || !TYPE_RE.test(spec.type)) throw new TypeError(`handler type ${JSON.stringify(spec?.type)} must match ${TYPE_RE}`);
  const def = Object.freeze({
    runtimeEntry: `tsshim-${spec.type}`,
    configFile: `${spec.type}.toml`,
    docsPage: `docs/handlers/${spec.type}.md`,
    podAnnotations: [],
    privilegedWithoutHostDevices: false,
    notes: [],
    ...spec,
  });
  assertDefinition(def, `handler "${spec.type}"`);
  return def;
}
