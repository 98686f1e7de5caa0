/**
 * `tsshim new-handler NAME [--dir DIR] [--tsshim-dep SPEC]`: a handler package to start from
 * (docs/handlers/sdk.md). TypeScript built with tsc, because the point of the SDK is its types:
 * `npm install && npm run build` type-checks the definition against `tsshim/handler` and writes
 * dist/index.js, the file the handler config names. The only network it needs is npm's registry
 * (typescript, @types/node); tsshim itself comes from SPEC, by default `file:` this tsshim (it is
 * not published to a registry), as a devDependency: at run time the package gets the tsshim that
 * loads it (an optional peer dependency, so a global install does not bring a second copy).
 *
 * What it scaffolds is a runc-backed handler whose [options] env adds variables to every
 * container's process: small, but it goes through everything a handler package needs (a profile,
 * defineOciHandler, a spec edit, doctor's verdict, a config), and it passes the kit here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TYPE_RE } from '../shim-api/definition.js';
import { registry } from '../composition/registry.js';

export interface NewHandlerOptions {
  name: string;
  /** Target directory (default ./tsshim-handler-<name>); must not exist or be empty. */
  dir?: string;
  /** The devDependency spec for tsshim (default file:<this tsshim's package root>). */
  tsshimDep?: string;
  out?: (line: string) => void;
}

/** This tsshim's package root (the directory of its package.json) and that file's contents. */
function ownPackage(): { root: string; pkg: { version: string; devDependencies?: Record<string, string> } } {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(d, 'package.json');
    if (fs.existsSync(pj)) {
      const pkg = JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string; version: string; devDependencies?: Record<string, string> };
      if (pkg.name === 'tsshim') return { root: d, pkg };
    }
    const up = path.dirname(d);
    if (up === d) throw new Error('cannot find tsshim\'s own package.json');
    d = up;
  }
}

export function scaffold(name: string, o: { tsshimDep: string; tsshimVersion: string; typescript: string; typesNode: string }): Record<string, string> {
  const pkgName = `tsshim-handler-${name}`;
  const files: Record<string, string> = {};
  files['package.json'] =
    JSON.stringify(
      {
        name: pkgName,
        version: '0.1.0',
        description: `tsshim handler "${name}": runc with per-handler environment variables (scaffolded by tsshim new-handler)`,
        type: 'module',
        exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
        files: ['dist', `${name}.toml`, 'README.md'],
        engines: { node: '>=20' },
        scripts: {
          build: 'tsc -p tsconfig.json',
          kit: `tsshim conformance --handler-config ${name}.toml --out conformance`,
        },
        peerDependencies: { tsshim: `>=${o.tsshimVersion}` },
        peerDependenciesMeta: { tsshim: { optional: true } },
        devDependencies: { '@types/node': o.typesNode, tsshim: o.tsshimDep, typescript: o.typescript },
      },
      null,
      2,
    ) + '\n';
  files['tsconfig.json'] =
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          outDir: 'dist',
          rootDir: 'src',
          strict: true,
          declaration: true,
          skipLibCheck: true,
          types: ['node'],
        },
        include: ['src/**/*.ts'],
      },
      null,
      2,
    ) + '\n';
  files['.gitignore'] = 'node_modules/\ndist/\nconformance/\n';
  files['src/index.ts'] = `/**
 * tsshim handler "${name}": runc, plus the environment variables its handler config's [options] env
 * lists in every container's process. Written against tsshim's handler API 1 (apiVersion below;
 * docs/handlers/sdk.md in tsshim); the default export is what tsshim loads for
 * \`handler = "module:${pkgName}"\`.
 */
import { defineOciHandler, defineProfile, invalidArgument, type HandlerConfig, type SpecEditor } from 'tsshim/handler';

/** The backend: runc, described as data (the OCI-CLI driver does the rest). */
const profile = defineProfile({
  name: 'runc',
  binary: 'runc',
  defaultRoot: '/run/containerd/runc',
  criuFlag: '--criu',
});

/** [options] env = ["KEY=value", ...], checked once per config: a bad value fails Create with this message. */
function envOption(config: HandlerConfig): string[] {
  const env = config.options.env ?? [];
  if (!Array.isArray(env) || !env.every((e) => typeof e === 'string' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(e))) {
    throw invalidArgument(\`handler "\${config.name}": [options] env must be a list of "KEY=value" strings, got \${JSON.stringify(env)}\`);
  }
  return env as string[];
}

function envEditor(config: HandlerConfig): SpecEditor | undefined {
  const env = envOption(config);
  if (!env.length) return undefined;
  return (spec) => {
    const keys = new Set(env.map((e) => e.slice(0, e.indexOf('='))));
    const process = (spec.process ??= {});
    process.env = [...(process.env ?? []).filter((e) => !keys.has(e.slice(0, e.indexOf('=')))), ...env];
  };
}

export default defineOciHandler({
  apiVersion: 1,
  type: '${name}',
  summary: 'runc with per-handler environment variables',
  docsPage: '${pkgName}/README.md',
  profile,
  install: 'Debian: apt-get install runc',
  config: {
    description: 'runc with per-handler environment variables',
    options: 'env = []                            # "KEY=value" strings added to every container\\'s process\\n',
  },
  check(facts, bin, config) {
    try {
      if (config) envOption(config);
    } catch (err) {
      return { usable: false, reason: (err as Error).message };
    }
    return { usable: true, reason: \`runc \${bin.version ?? '(version unknown)'}; \${facts.cgroup.mode} cgroups\` };
  },
  specEditor: envEditor,
});
`;
  files[`${name}.toml`] = `# tsshim handler config for "${name}" (this package). Used where it lies, it loads the package's
# build through a path relative to this file; installed, point at the package instead:
#   handler = "module:${pkgName}"
handler = "module:./dist/index.js"
name = "tsshim-${name}"

[options]
env = []                            # "KEY=value" strings added to every container's process
`;
  files['README.md'] = `# ${pkgName}

A tsshim handler, scaffolded by \`tsshim new-handler ${name}\`: runc, plus
the environment variables its handler config lists in every container. It is written with
\`tsshim/handler\` (handler API 1; tsshim's docs/handlers/sdk.md) and loaded by the shim at run
time from a handler config:

\`\`\`toml
handler = "module:${pkgName}"   # a package name (resolved like Node does from this file's directory,
                                # then the global node_modules), or a path to dist/index.js
name = "tsshim-${name}"
[options]
env = ["TEAM=payments"]
\`\`\`

## Build

\`\`\`sh
npm install        # typescript, @types/node, and tsshim (${o.tsshimDep}) for its types
npm run build      # tsc: type-checks against tsshim/handler, writes dist/
\`\`\`

## Check

\`\`\`sh
tsshim doctor --handler-config ${name}.toml        # loads the package: its verdict on this host, or why it cannot load
sudo npm run kit                                  # tsshim conformance --handler-config ${name}.toml --out conformance
\`\`\`

The kit runs tsshim's whole conformance catalogue through a private containerd on this handler and
on containerd's own runc shim (io.containerd.runc.v2), and writes conformance/conformance.{md,json,html}.
\`--scenarios exit-code,exec\` runs a subset.

## Install

\`\`\`sh
npm install -g .                                  # beside a global tsshim: its import of tsshim/handler finds it
sudo cp ${name}.toml /etc/tsshim/${name}.toml     # then set handler = "module:${pkgName}" in it
\`\`\`

and a containerd runtime entry (runtime_type \`io.containerd.tsshim.v2\`, options ConfigPath
\`/etc/tsshim/${name}.toml\`); the RuntimeClass handler is that entry's name.
`;
  return files;
}

export async function newHandler(opts: NewHandlerOptions): Promise<number> {
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const name = opts.name;
  if (!TYPE_RE.test(name)) {
    process.stderr.write(`tsshim: handler name ${JSON.stringify(name)} must match ${TYPE_RE} (it becomes the handler type, runtime entry tsshim-${name} and package tsshim-handler-${name})\n`);
    return 2;
  }
  if (registry.some((d) => d.type === name)) {
    process.stderr.write(`tsshim: "${name}" is a built-in handler type (${registry.map((d) => d.type).join(', ')}); a package needs a type of its own\n`);
    return 2;
  }
  const dir = path.resolve(opts.dir ?? `tsshim-handler-${name}`);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    process.stderr.write(`tsshim: ${dir} exists and is not empty; choose another --dir\n`);
    return 1;
  }
  const own = ownPackage();
  const dev = own.pkg.devDependencies ?? {};
  const files = scaffold(name, {
    tsshimDep: opts.tsshimDep ?? `file:${own.root}`,
    tsshimVersion: own.pkg.version,
    typescript: dev.typescript ?? '^5.9.3',
    typesNode: dev['@types/node'] ?? '^20.19.43',
  });
  for (const [rel, text] of Object.entries(files)) {
    const f = path.join(dir, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, text);
  }
  out(`wrote ${Object.keys(files).map((f) => path.join(dir, f)).join(', ')}`);
  out(`next: cd ${dir} && npm install && npm run build && tsshim doctor --handler-config ${name}.toml && sudo npm run kit`);
  return 0;
}
