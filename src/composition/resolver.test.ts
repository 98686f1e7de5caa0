/**
 * The resolver over a definitions list: one factory load per type, one handler per distinct
 * config even when Creates race, unknown types name the known ones, cleanup uses the type
 * recorded in the bundle. Fake definitions (pure selection logic); the real ones are loaded
 * in registry.test.ts and driven through containerd by the integration tests.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { defineHandler, type HandlerDefinition } from '../shim-api/definition.js';
import type { HandlerConfig, HandlerContext, HandlerFactory, TaskHandler } from '../shim-api/handler.js';
import { ShimError } from '../shim-api/errors.js';
import { packAny, runtimeOptions, TYPE_URL } from '../shim-api/pb.js';
import { BUNDLE_STATE_FILE, ConfiguredResolver, selectConfig } from './resolver.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsshim-resolver-'));
const ctx = { log: pino({ level: 'silent' }) } as unknown as HandlerContext;

function fakeDefinition(type: string, loads: { n: number }, created: HandlerConfig[], cleaned: string[]): HandlerDefinition {
  return defineHandler({
    apiVersion: 1,
    type,
    summary: type,
    binary: type,
    supports: ['create'],
    defaultConfig: { description: type, settings: '', options: '' },
    binariesFor: () => [type],
    assess: () => {
      throw new Error('not used');
    },
    factory: async () => {
      loads.n++;
      await new Promise((r) => setTimeout(r, 5)); // an import takes a while: Creates can race it
      const factory: HandlerFactory = {
        type,
        create(config) {
          if (config.options.bad === true) throw new ShimError('InvalidArgument', 'bad options');
          created.push(config);
          return { name: config.name } as TaskHandler;
        },
        async cleanup(config, bundle, id) {
          cleaned.push(`${config.type}:${id}`);
          return { pid: 0, exitStatus: 137 };
        },
      };
      return factory;
    },
  });
}

function selection(toml: string, id: string) {
  const bundle = fs.mkdtempSync(path.join(tmp, 'b-'));
  const options = packAny(TYPE_URL.RuntimeOptions, runtimeOptions.Options, { typeUrl: '', configPath: '', configBody: new TextEncoder().encode(toml) });
  return { options, annotations: {}, bundle, id };
}

test('one factory load per type and one handler per distinct config, even when Creates race', async () => {
  const loads = { n: 0 };
  const created: HandlerConfig[] = [];
  const r = new ConfiguredResolver([fakeDefinition('alpha', loads, created, []), fakeDefinition('beta', { n: 0 }, [], [])], ctx);
  const a = 'handler = "alpha"\nname = "a"\n';
  const [h1, h2, h3] = await Promise.all([r.resolve(selection(a, 'c1')), r.resolve(selection(a, 'c2')), r.resolve(selection(a, 'c3'))]);
  assert.is(h1, h2);
  assert.is(h2, h3);
  assert.is(loads.n, 1);
  assert.is(created.length, 1);
  const other = await r.resolve(selection('handler = "alpha"\nname = "a2"\n', 'c4'));
  assert.is.not(other, h1);
  assert.is(loads.n, 1);
  assert.is(created.length, 2);
  const sel = selection(a, 'c5');
  await r.resolve(sel);
  assert.equal(JSON.parse(fs.readFileSync(path.join(sel.bundle, BUNDLE_STATE_FILE), 'utf8')).handler.type, 'alpha');
});

test('a config its factory refuses is not cached; an unknown type names the known ones', async () => {
  const created: HandlerConfig[] = [];
  const r = new ConfiguredResolver([fakeDefinition('alpha', { n: 0 }, created, [])], ctx);
  const bad = 'handler = "alpha"\nname = "a"\n[options]\nbad = true\n';
  for (let i = 0; i < 2; i++) {
    try {
      await r.resolve(selection(bad, `bad${i}`));
      assert.unreachable('resolved');
    } catch (e) {
      assert.instance(e, ShimError);
      assert.is((e as ShimError).kind, 'InvalidArgument');
    }
  }
  try {
    await r.resolve(selection('handler = "gamma"\n', 'g'));
    assert.unreachable('resolved');
  } catch (e) {
    assert.is((e as ShimError).kind, 'FailedPrecondition');
    assert.match((e as Error).message, 'unknown tsshim handler "gamma"');
    assert.match((e as Error).message, 'known handlers are alpha');
  }
  assert.is(created.length, 0);
});

test('cleanup uses the handler type recorded in the bundle', async () => {
  const cleaned: string[] = [];
  const r = new ConfiguredResolver([fakeDefinition('alpha', { n: 0 }, [], []), fakeDefinition('beta', { n: 0 }, [], cleaned)], ctx);
  const sel = selection('handler = "beta"\n', 'c9');
  await r.resolve(sel);
  assert.equal(await r.cleanup(sel.bundle, 'c9'), { pid: 0, exitStatus: 137 });
  assert.equal(cleaned, ['beta:c9']);
});

test('io.tsshim.handler picks only an allowlisted handler config file; anything else is PermissionDenied', async () => {
  const gvisorFile = path.join(tmp, 'gvisor.toml');
  fs.writeFileSync(gvisorFile, 'handler = "gvisor"\n[options]\nplatform = "ptrace"\n');
  const opts = (body: string) => packAny(TYPE_URL.RuntimeOptions, runtimeOptions.Options, { typeUrl: '', configPath: '', configBody: Buffer.from(body) });
  const withList = opts(`handler = "runc"\nallow_annotation_override = [${JSON.stringify(gvisorFile)}]\n`);
  for (const wanted of [gvisorFile, 'gvisor']) {
    const cfg = await selectConfig({ options: withList, annotations: { 'io.tsshim.handler': wanted } });
    assert.is(cfg.handler.type, 'gvisor');
    assert.is(cfg.handler.options.platform, 'ptrace');
  }
  assert.is((await selectConfig({ options: withList, annotations: {} })).handler.type, 'runc');
  for (const [options, wanted] of [
    [withList, 'kata'],
    [withList, '/etc/passwd'],
    [opts('handler = "runc"\n'), 'gvisor'],
    [opts('handler = "runc"\nallow_annotation_override = false\n'), gvisorFile],
  ] as const) {
    try {
      await selectConfig({ options, annotations: { 'io.tsshim.handler': wanted } });
      assert.unreachable(`resolved ${wanted}`);
    } catch (e) {
      assert.instance(e, ShimError);
      assert.is((e as ShimError).kind, 'PermissionDenied', (e as Error).message);
      assert.match((e as Error).message, 'io.tsshim.handler');
    }
  }
  for (const bad of ['allow_annotation_override = true\n', 'allow_annotation_override = ["gvisor.toml"]\n']) {
    try {
      await selectConfig({ options: opts(bad), annotations: {} });
      assert.unreachable(bad);
    } catch (e) {
      assert.is((e as ShimError).kind, 'InvalidArgument');
      assert.match((e as Error).message, 'absolute path');
    }
  }
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test.run();
