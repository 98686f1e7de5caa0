/** containerd's shim command line, in Go `flag` syntax (-f v, --f v, -f=v; bools bare). */
export interface ShimFlags {
  namespace: string;
  id: string;
  address: string;
  publishBinary: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  /** first positional argument: start | delete | daemon (internal) | '' */
  command: string;
  rest: string[];
}

const BOOL = new Set(['debug', 'v', 'version', 'info']);
const STRING = new Set(['namespace', 'id', 'address', 'publish-binary', 'bundle', 'socket', 'debug-socket']);

export class FlagError extends Error {}

export function parseFlags(argv: readonly string[]): ShimFlags {
  const f: ShimFlags = { namespace: '', id: '', address: '', publishBinary: '', bundle: '', socket: '', debug: false, version: false, info: false, command: '', rest: [] };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (positional.length > 0 || !a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (BOOL.has(name)) {
      const v = eq >= 0 ? body.slice(eq + 1) : 'true';
      const on = v === 'true' || v === '1';
      if (name === 'debug') f.debug = on;
      else if (name === 'info') f.info = on;
      else f.version = on;
      continue;
    }
    if (!STRING.has(name)) throw new FlagError(`flag provided but not defined: -${name}`);
    let v: string;
    if (eq >= 0) v = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      v = argv[++i]!;
    }
    switch (name) {
      case 'namespace': f.namespace = v; break;
      case 'id': f.id = v; break;
      case 'address': f.address = v; break;
      case 'publish-binary': f.publishBinary = v; break;
      case 'bundle': f.bundle = v; break;
      case 'socket': f.socket = v; break;
      default: break; // accepted and ignored (debug-socket)
    }
  }
  f.command = positional[0] ?? '';
  f.rest = positional.slice(1);
  return f;
}
