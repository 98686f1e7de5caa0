import fs from 'node:fs';

let cached: string | undefined;
/** The package version (read once, lazily). */
export function version(): string {
  if (cached === undefined) {
    try {
      cached = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
