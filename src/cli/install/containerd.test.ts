// The installer's reading of a containerd config chain (files only, no containerd): version
// detection without a binary, containerd's import order and globs, where the drop-in lands, and
// the drop-in's text per generation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { registry } from '../../composition/registry.js';
import { CRI_V2, CRI_V3_RUNTIME, detectContainerd, importsCover, loadConfigChain, renderDropIn, resolveImports } from './containerd.js';
import { HostRoot } from './host.js';

type Table = Record<string, unknown>;
/** smol-toml's tables have no prototype: compare plain copies. */
const toml = (text: string) => JSON.parse(JSON.stringify(parseToml(text))) as Table;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsshim-install-unit-'));
const host = new HostRoot(root, false);
const put = (p: string, text: string) => {
  fs.mkdirSync(path.dirname(host.at(p)), { recursive: true });
  fs.writeFileSync(host.at(p), text);
};
const DROP = '/etc/containerd/conf.d/tsshim.toml';

test('detect without a containerd binary: version 3/4 configs are 2.x; a version-2 config needs the flag; version 1 is refused', () => {
  assert.is(detectContainerd(host, 'version = 3\n', undefined).version, '2');
  assert.is(detectContainerd(host, 'version = 4\n', undefined).version, '2');
  assert.throws(() => detectContainerd(host, 'version = 2\n', undefined), /pass --containerd-version/);
  assert.is(detectContainerd(host, 'version = 2\n', '1.7').version, '1.7');
  assert.throws(() => detectContainerd(host, 'version = 3\n', '1.6'), /cannot read the version-3 config/);
  assert.throws(() => detectContainerd(host, 'root = "/x"\n', '1.6'), /no `version` key/);
  assert.throws(() => detectContainerd(host, 'version = 2\n', '1.5'), /must be 1.6, 1.7 or 2/);
  assert.throws(() => detectContainerd(host, undefined, undefined), /cannot tell which containerd/);
});

test('imports: relative to the importing file, globs sorted, the drop-in counted before it exists', () => {
  put('/etc/containerd/conf.d/b.toml', 'version = 2\n');
  put('/etc/containerd/conf.d/a.toml', 'version = 2\n');
  put('/etc/containerd/extra.toml', 'version = 2\n');
  assert.equal(resolveImports(host, '/etc/containerd/config.toml', ['extra.toml', 'conf.d/*.toml']), ['/etc/containerd/extra.toml', '/etc/containerd/conf.d/a.toml', '/etc/containerd/conf.d/b.toml']);
  assert.equal(resolveImports(host, '/etc/containerd/config.toml', ['/etc/containerd/conf.d/*.toml'], DROP), ['/etc/containerd/conf.d/a.toml', '/etc/containerd/conf.d/b.toml', DROP]);
  assert.ok(importsCover(host, '/etc/containerd/config.toml', ['conf.d/*.toml'], DROP));
  assert.ok(importsCover(host, '/etc/containerd/config.toml', [DROP], DROP));
  assert.not.ok(importsCover(host, '/etc/containerd/config.toml', ['/etc/containerd/*.toml'], DROP));
});

test('the CRI table containerd 1.x ends up with: the last file\'s before the drop-in; one after it is reported', () => {
  put('/etc/containerd/conf.d/a.toml', `version = 2\n[plugins."${CRI_V2}"]\n  sandbox_image = "from-a"\n`);
  put('/etc/containerd/conf.d/z.toml', `version = 2\n[plugins."${CRI_V2}"]\n  sandbox_image = "from-z"\n`);
  const main = `version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n[plugins."${CRI_V2}"]\n  sandbox_image = "from-main"\n`;
  const c = loadConfigChain(host, '/etc/containerd/config.toml', main, DROP, CRI_V2);
  assert.equal(c.files, ['/etc/containerd/config.toml', '/etc/containerd/conf.d/a.toml', '/etc/containerd/conf.d/b.toml', '/etc/containerd/conf.d/z.toml']);
  assert.ok(c.dropInImported);
  assert.is(c.cri.sandbox_image, 'from-a', 'a.toml sorts before tsshim.toml');
  assert.equal(c.criAfterDropIn, ['/etc/containerd/conf.d/z.toml'], 'z.toml would replace the drop-in\'s table');
  const explicit = loadConfigChain(host, '/etc/containerd/config.toml', `version = 2\n[plugins."${CRI_V2}"]\n  sandbox_image = "from-main"\nimports_are_not_here = 1\n`, DROP, CRI_V2);
  assert.is(explicit.cri.sandbox_image, 'from-main');
  assert.not.ok(explicit.dropInImported);
});

const opts = { handlers: registry, configDir: '/etc/tsshim', runtimePath: '/opt/tsshim/current/bin/containerd-shim-tsshim-v2', sources: ['/etc/containerd/config.toml'] };

test('1.x drop-in: the operator\'s CRI table with tsshim\'s runtimes added; containerd\'s implicit runc restated when no runtimes were defined', () => {
  const withRunc = toml(renderDropIn({ ...opts, version: '1.6', operatorCri: { sandbox_image: 'x', containerd: { runtimes: { runc: { runtime_type: 'io.containerd.runc.v2', options: { SystemdCgroup: true } } } } } })) as Table;
  assert.is(withRunc.version, 2);
  const cri = (withRunc.plugins as Table)[CRI_V2] as Table;
  assert.is(cri.sandbox_image, 'x');
  const rts = (cri.containerd as Table).runtimes as Record<string, Table>;
  assert.equal(rts.runc, { runtime_type: 'io.containerd.runc.v2', options: { SystemdCgroup: true } });
  assert.equal(Object.keys(rts).sort(), ['runc', ...registry.map((e) => e.runtimeEntry)].sort());
  assert.is(rts['tsshim-runc']!.runtime_path, opts.runtimePath);
  assert.equal(rts['tsshim-gvisor']!.options, { ConfigPath: '/etc/tsshim/gvisor.toml' });

  const bare = renderDropIn({ ...opts, version: '1.7', operatorCri: {} });
  assert.match(bare, 'containerd\'s implicit default runtime entry, restated');
  assert.equal((((toml(bare) as Table).plugins as Table)[CRI_V2] as Table).containerd, {
    runtimes: { runc: { runtime_type: 'io.containerd.runc.v2' }, ...Object.fromEntries(Object.entries(rts).filter(([k]) => k !== 'runc')) },
  });
  const otherDefault = renderDropIn({ ...opts, version: '1.6', operatorCri: { containerd: { default_runtime_name: 'tsshim-runc' } } });
  assert.not.match(otherDefault, 'restated');
});

test('2.x drop-in: version 3, tsshim\'s runtimes alone (2.x merges imported plugin tables), sandboxer podsandbox', () => {
  const d = toml(renderDropIn({ ...opts, version: '2', operatorCri: { ignored: true } })) as Table;
  assert.is(d.version, 3);
  const plugins = d.plugins as Table;
  assert.equal(Object.keys(plugins), [CRI_V3_RUNTIME]);
  const rts = ((plugins[CRI_V3_RUNTIME] as Table).containerd as Table).runtimes as Record<string, Table>;
  assert.equal(Object.keys(rts), registry.map((e) => e.runtimeEntry));
  assert.is(rts['tsshim-kata']!.sandboxer, 'podsandbox');
  assert.is(rts['tsshim-kata']!.privileged_without_host_devices, true);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
test.run();
