/**
 * Spec values a backend spells differently from what containerd writes, rewritten in the bundle's
 * config.json before `create` (RuntimeProfile.rootfsPropagationAliases). Only the listed field
 * changes; nothing is rewritten when the spec needs nothing.
 */
import { rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OciSpec } from '../../shim-api/spec.js';
import type { RuntimeProfile } from './profile.js';

/** What was rewritten ("rootfsPropagation rshared -> shared"), or undefined when the spec was left alone. */
export async function adaptSpec(profile: RuntimeProfile, bundle: string, spec: OciSpec): Promise<string | undefined> {
  const linux = spec.linux as (OciSpec['linux'] & { rootfsPropagation?: unknown }) | undefined;
  const from = linux?.rootfsPropagation;
  if (typeof from !== 'string' || !Object.hasOwn(profile.rootfsPropagationAliases, from)) return undefined;
  const to = profile.rootfsPropagationAliases[from]!;
  linux!.rootfsPropagation = to;
  const file = path.join(bundle, 'config.json');
  const tmp = path.join(bundle, `.config.json.tsshim-${process.pid}`);
  const mode = (await stat(file)).mode & 0o777;
  await writeFile(tmp, JSON.stringify(spec), { mode });
  await rename(tmp, file);
  return `rootfsPropagation ${from} -> ${to}`;
}
