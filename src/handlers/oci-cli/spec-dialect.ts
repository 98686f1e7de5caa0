/**
 * The bundle's config.json as the backend gets it, rewritten before `create` when needed: spec
 * values a backend spells differently from what containerd writes (RuntimeProfile.rootfsPropagationAliases),
 * and the handler's own edits (defineOciHandler's `editSpec`: a handler package adding hooks, a
 * default seccomp profile, ...). Nothing is rewritten when the spec comes out unchanged.
 */
import { rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isShimError, unknownError } from '../../shim-api/errors.js';
import type { OciSpec } from '../../shim-api/spec.js';
import type { RuntimeProfile } from './profile.js';

/** A handler's edit of a task's spec, in place; it runs once per Create, before the backend's `create`. */
export type SpecEditor = (spec: OciSpec, task: { id: string; bundle: string }) => void | Promise<void>;

/** What was rewritten ("rootfsPropagation rshared -> shared", "handler edits"), or undefined when the spec was left alone. */
export async function adaptSpec(profile: RuntimeProfile, bundle: string, spec: OciSpec, edit?: { id: string; handler: string; editor: SpecEditor }): Promise<string | undefined> {
  const changes: string[] = [];
  const linux = spec.linux as (OciSpec['linux'] & { rootfsPropagation?: unknown }) | undefined;
  const from = linux?.rootfsPropagation;
  if (typeof from === 'string' && Object.hasOwn(profile.rootfsPropagationAliases, from)) {
    const to = profile.rootfsPropagationAliases[from]!;
    linux!.rootfsPropagation = to;
    changes.push(`rootfsPropagation ${from} -> ${to}`);
  }
  if (edit) {
    const before = JSON.stringify(spec);
    try {
      await edit.editor(spec, { id: edit.id, bundle });
    } catch (err) {
      if (isShimError(err)) throw err;
      throw unknownError(`handler "${edit.handler}": editing the spec of ${edit.id} failed: ${(err as Error)?.message ?? String(err)}`, err);
    }
    if (typeof spec !== 'object' || spec === null) throw unknownError(`handler "${edit.handler}": editSpec left no spec`);
    if (JSON.stringify(spec) !== before) changes.push('handler edits');
  }
  if (!changes.length) return undefined;
  const file = path.join(bundle, 'config.json');
  const tmp = path.join(bundle, `.config.json.tsshim-${process.pid}`);
  const mode = (await stat(file)).mode & 0o777;
  await writeFile(tmp, JSON.stringify(spec), { mode });
  await rename(tmp, file);
  return changes.join('; ');
}
