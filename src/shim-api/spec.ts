/** Reading the OCI spec (config.json) of a bundle: only what shim-api needs. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { invalidArgument } from './errors.js';

export interface OciSpec {
  ociVersion?: string;
  process?: { terminal?: boolean; args?: string[]; env?: string[] };
  annotations?: Record<string, string>;
  linux?: { namespaces?: Array<{ type: string; path?: string }>; cgroupsPath?: string; resources?: unknown };
  [k: string]: unknown;
}

export async function readSpec(bundle: string): Promise<OciSpec> {
  if (!path.isAbsolute(bundle)) throw invalidArgument(`bundle path "${bundle}" must be absolute`);
  let text: string;
  try {
    text = await fs.readFile(path.join(bundle, 'config.json'), 'utf8');
  } catch (err) {
    throw invalidArgument(`cannot read OCI spec ${path.join(bundle, 'config.json')}: ${(err as Error).message}`);
  }
  try {
    const spec = JSON.parse(text) as unknown;
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new Error('not a JSON object');
    return spec as OciSpec;
  } catch (err) {
    throw invalidArgument(`invalid OCI spec ${path.join(bundle, 'config.json')}: ${(err as Error).message}`);
  }
}

export async function readSpecAnnotations(bundle: string): Promise<Record<string, string>> {
  return (await readSpec(bundle)).annotations ?? {};
}
