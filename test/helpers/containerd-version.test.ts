// Pure logic of containerd-version.ts: the version-3 config migration and config rendering per version.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse as parseToml } from 'smol-toml';
import { migrateConfigToV3, containerdRelease, criPluginIds } from './containerd-version.js';
import { renderConfig } from './containerd.js';
import { criConfig } from './cri.js';
import { RUNTIME_TYPE } from '../../src/shim-api/runtime-type.js';

const plain = (x: unknown) => JSON.parse(JSON.stringify(x));

test('migrateConfigToV3 splits the 1.x CRI table the way containerd 2 does', () => {
  const v2 = {
    version: 2,
    root: '/r',
    plugins: {
      'io.containerd.grpc.v1.cri': {
        sandbox_image: 'docker.io/tsshim/pause:test',
        stream_server_address: '127.0.0.1',
        stream_server_port: '0',
        restrict_oom_score_adj: true,
        max_concurrent_downloads: 3,
        cni: { bin_dir: '/usr/lib/cni', conf_dir: '/x/conf' },
        containerd: {
          snapshotter: 'overlayfs',
          default_runtime_name: 'runc',
          runtimes: {
            runc: { runtime_type: 'io.containerd.runc.v2' },
            'tsshim-runc': { runtime_type: RUNTIME_TYPE, sandbox_mode: 'podsandbox', options: { ConfigPath: '/c.toml' } },
          },
        },
      },
      'io.containerd.internal.v1.opt': { path: '/o' },
    },
  };
  const v3 = plain(migrateConfigToV3(v2));
  assert.is(v3.version, 3);
  assert.is(v3.root, '/r');
  assert.equal(v3.plugins['io.containerd.grpc.v1.cri'], { stream_server_address: '127.0.0.1', stream_server_port: '0' });
  assert.equal(v3.plugins['io.containerd.cri.v1.images'], {
    pinned_images: { sandbox: 'docker.io/tsshim/pause:test' },
    max_concurrent_downloads: 3,
    snapshotter: 'overlayfs',
  });
  const rt = v3.plugins['io.containerd.cri.v1.runtime'];
  assert.is(rt.restrict_oom_score_adj, true);
  assert.equal(rt.cni, { bin_dirs: ['/usr/lib/cni'], conf_dir: '/x/conf' });
  assert.is(rt.containerd.default_runtime_name, 'runc');
  assert.is(rt.containerd.snapshotter, undefined, 'snapshotter moved to the images plugin');
  assert.equal(rt.containerd.runtimes['tsshim-runc'], { runtime_type: RUNTIME_TYPE, sandboxer: 'podsandbox', options: { ConfigPath: '/c.toml' } });
  assert.equal(v3.plugins['io.containerd.internal.v1.opt'], { path: '/o' });
  assert.is(v2.version, 2, 'input untouched');
});

test('renderConfig: version 2 for 1.6/1.7, version 3 for 2.x; CRI disabled as a whole unless asked for', () => {
  for (const v of ['1.6', '1.7'] as const) {
    const doc = plain(parseToml(renderConfig('/run/tsshim-test/x', { containerd: v })));
    assert.is(doc.version, 2);
    assert.equal(doc.disabled_plugins, ['io.containerd.grpc.v1.cri']);
  }
  const doc = plain(parseToml(renderConfig('/run/tsshim-test/x', { containerd: '2' })));
  assert.is(doc.version, 3);
  assert.equal(doc.disabled_plugins, criPluginIds('2'));
  const cri = plain(parseToml(renderConfig('/run/tsshim-test/x', { containerd: '2', extraConfig: criConfig({}, { cniDir: '/run/tsshim-test/cri-cni-empty' }) })));
  assert.is(cri.version, 3);
  assert.equal(cri.disabled_plugins, []);
  assert.is(cri.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes.runc.runtime_type, 'io.containerd.runc.v2');
  assert.is(cri.plugins['io.containerd.cri.v1.images'].pinned_images.sandbox, 'docker.io/tsshim/pause:test');
});

test('each version has its own binaries', () => {
  assert.is(containerdRelease('1.6').containerd, '/usr/bin/containerd');
  assert.is(containerdRelease('1.7').shimRunc, '/opt/tsshim/peers/containerd-1.7/bin/containerd-shim-runc-v2');
  assert.is(containerdRelease('2').ctr, '/opt/tsshim/peers/containerd-2/bin/ctr');
  assert.is(containerdRelease('2').configVersion, 3);
});

test.run();
