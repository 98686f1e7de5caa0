/**
 * tsshim handler "hooks": runc, plus the OCI hooks its handler config lists, added to the spec of
 * every container the handler runs. One handler config per RuntimeClass gives a platform team
 * per-class hooks (an audit record at create and at stop, a device or network set-up, a policy
 * check that refuses to start a container) without touching images, pod specs or containerd's
 * config beyond the runtime entry.
 *
 *   handler = "module:tsshim-handler-hooks"
 *   name = "tsshim-audited"
 *   [[options.hooks.createRuntime]]
 *   path = "/usr/local/bin/audit-container"
 *   args = ["audit-container", "created"]
 *   timeout = 10
 *
 * Written against tsshim's handler API 1, through `tsshim/handler` only (tsshim's docs/handlers/sdk.md).
 */
import path from 'node:path';
import { defineOciHandler, defineProfile, invalidArgument, runnable, type HandlerConfig, type OciSpec, type SpecEditor } from 'tsshim/handler';

/** The OCI runtime spec's hook points (config.md#posix-platform-hooks), in the order runc runs them. */
export const STAGES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type Stage = (typeof STAGES)[number];

/** One OCI hook, as the spec has it. */
export interface Hook {
  /** Absolute path; for createRuntime, prestart, poststart and poststop on the host, for createContainer and startContainer too (resolved in the runtime's namespace, run in the container's for startContainer). */
  path: string;
  /** argv, with argv[0]; default [path]. */
  args?: string[];
  /** The hook's environment ("KEY=value"); the handler adds TSSHIM_HANDLER=<handler name>. */
  env?: string[];
  /** Seconds before runc kills the hook and fails the operation. */
  timeout?: number;
}

export type Hooks = Partial<Record<Stage, Hook[]>>;

/** The variable every injected hook gets: which handler (RuntimeClass) put it there. */
export const HANDLER_ENV = 'TSSHIM_HANDLER';

/** [options.hooks], checked: InvalidArgument naming the handler and the offending key. */
export function hooksOption(config: HandlerConfig): Hooks {
  const raw = config.options.hooks;
  if (raw === undefined) return {};
  const bad = (what: string) => invalidArgument(`handler "${config.name}": [options.hooks] ${what}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('must be a table of hook points, e.g. [[options.hooks.createRuntime]]');
  const out: Hooks = {};
  for (const [stage, list] of Object.entries(raw as Record<string, unknown>)) {
    if (!(STAGES as readonly string[]).includes(stage)) throw bad(`has "${stage}", which is no OCI hook point (${STAGES.join(', ')})`);
    if (!Array.isArray(list)) throw bad(`${stage} must be an array of tables ([[options.hooks.${stage}]])`);
    out[stage as Stage] = list.map((h: unknown, i: number): Hook => {
      const at = `${stage}[${i}]`;
      if (typeof h !== 'object' || h === null || Array.isArray(h)) throw bad(`${at} must be a table with "path"`);
      const o = h as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!['path', 'args', 'env', 'timeout'].includes(k)) throw bad(`${at} has "${k}"; a hook has path, args, env, timeout`);
      if (typeof o.path !== 'string' || !path.isAbsolute(o.path)) throw bad(`${at}.path must be an absolute path, got ${JSON.stringify(o.path)}`);
      const strings = (k: 'args' | 'env') => {
        const v = o[k];
        if (v === undefined) return undefined;
        if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw bad(`${at}.${k} must be a list of strings`);
        return v as string[];
      };
      const args = strings('args');
      const env = strings('env');
      if (env?.some((e) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(e))) throw bad(`${at}.env entries must be "KEY=value"`);
      if (o.timeout !== undefined && (typeof o.timeout !== 'number' || !Number.isInteger(o.timeout) || o.timeout <= 0)) throw bad(`${at}.timeout must be a whole number of seconds > 0`);
      return { path: o.path, ...(args ? { args } : {}), ...(env ? { env } : {}), ...(o.timeout !== undefined ? { timeout: o.timeout as number } : {}) };
    });
  }
  return out;
}

/** The spec edit: the configured hooks after the container's own, each told which handler added it. */
export function hooksEditor(config: HandlerConfig): SpecEditor | undefined {
  const hooks = hooksOption(config);
  const stages = STAGES.filter((s) => hooks[s]?.length);
  if (!stages.length) return undefined;
  return (spec: OciSpec) => {
    const target = (spec.hooks ??= {}) as Record<string, unknown>;
    for (const s of stages) {
      const own = Array.isArray(target[s]) ? (target[s] as unknown[]) : [];
      target[s] = [...own, ...hooks[s]!.map((h) => ({ ...h, env: [...(h.env ?? []), `${HANDLER_ENV}=${config.name}`] }))];
    }
  };
}

/** The backend: runc, described as data; the OCI-CLI driver of tsshim does the rest. */
const runc = defineProfile({
  name: 'runc',
  binary: 'runc',
  defaultRoot: '/run/containerd/runc',
  criuFlag: '--criu',
});

export default defineOciHandler({
  apiVersion: 1,
  type: 'hooks',
  summary: 'runc with OCI hooks from the handler config added to every container (per RuntimeClass)',
  docsPage: 'tsshim-handler-hooks/README.md',
  profile: runc,
  install: 'Debian: apt-get install runc',
  config: {
    description: 'runc with per-handler OCI hooks',
    options: `systemd_cgroup = false              # as tsshim's runc handler (also criu_path, extra_args, timeout_ms)
# [[options.hooks.createRuntime]]   # prestart, createRuntime, createContainer, startContainer, poststart, poststop
# path = "/usr/local/bin/audit-container"
# args = ["audit-container", "created"]
# env = ["AUDIT_DIR=/var/log/containers-audit"]
# timeout = 10
`,
  },
  check(facts, bin, config) {
    if (config) {
      try {
        const n = Object.values(hooksOption(config)).reduce((a, l) => a + (l?.length ?? 0), 0);
        const base = runnable(facts, bin);
        return { usable: base.usable, reason: `${base.reason}; ${n} hook${n === 1 ? '' : 's'} configured` };
      } catch (err) {
        return { usable: false, reason: (err as Error).message };
      }
    }
    return runnable(facts, bin);
  },
  specEditor: hooksEditor,
});
