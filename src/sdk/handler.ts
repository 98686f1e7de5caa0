/**
 * `tsshim/handler`: the public API for writing a tsshim handler, in this repository or in a
 * package of its own (docs/handlers/sdk.md is its reference; ADR 0023). Handler API version:
 * HANDLER_API_VERSION. Everything here is a re-export of the module the built-in handlers use
 * themselves (src/shim-api/, src/handlers/oci-cli/): a built-in handler folder's definition and a
 * package's default export are the same thing.
 *
 * What is not exported here is not public: deep imports (`tsshim/dist/...`) are refused by the
 * package's "exports" map.
 */

// ---- the contract and its version
export {
  HANDLER_API_VERSION,
  SUPPORTED_HANDLER_API_VERSIONS,
  defineHandler,
  definitionProblems,
  type ConformanceHints,
  type DefaultConfig,
  type HandlerApiVersion,
  type HandlerDefinition,
  type HandlerDefinitionSpec,
  type PodOverhead,
} from '../shim-api/definition.js';
export type { CleanupResult, HandlerConfig, HandlerContext, HandlerFactory, HandlerModuleRef, OsServices, TaskHandler } from '../shim-api/handler.js';
export type { EventPublisher } from '../shim-api/events.js';
export type { OciSpec } from '../shim-api/spec.js';

// ---- capabilities
export { ALL_OPERATIONS, RUNC_OPERATIONS, allOperationsExcept, isOperation, type Operation } from '../shim-api/operations.js';

// ---- doctor: host facts, verdicts and the helpers assess() functions share
export { NESTED_KVM, binaryProblem, cgroupSummary, factOf, verdict, type BinaryFact, type CgroupMode, type HostFacts, type Probe } from '../shim-api/host-facts.js';

// ---- errors (each kind becomes one ttrpc status code; src/shim-api/errors.ts)
export {
  ShimError,
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  isShimError,
  notFound,
  permissionDenied,
  unimplemented,
  unknownError,
  type ErrorKind,
} from '../shim-api/errors.js';

// ---- the OCI-CLI driver: a runc-compatible backend as data (a RuntimeProfile) plus a definition
export { defineOciHandler, runnable, type Check, type OciDefinitionSpec } from '../handlers/oci-cli/definition.js';
export { defineProfile, type FlagDisposition, type FlagKey, type ProfileSpec, type RuntimeProfile } from '../handlers/oci-cli/profile.js';
export type { SpecEditor } from '../handlers/oci-cli/spec-dialect.js';

// ---- containerd's task API messages, for a handler that implements TaskHandler itself
export { Status, TYPE_URL, anyOf, events, packAny, task, timestampFromDate, unpackAny, type Any } from '../shim-api/pb.js';
