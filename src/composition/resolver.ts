/** Picks the handler for a task from runtime options, the default config and annotations. */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CleanupResult, HandlerConfig, HandlerContext, HandlerFactory, HandlerResolver, HandlerSelection, RuntimeFeatures, TaskHandler } from '../shim-api/handler.js';
import type { HandlerDefinition } from '../shim-api/definition.js';
import { failedPrecondition, invalidArgument, permissionDenied } from '../shim-api/errors.js';
import { bindHandler, type BoundHandler } from './handler-module.js';
import { runcOptions, runtimeOptions, TYPE_URL, unpackAny, type Any } from '../shim-api/pb.js';
import { allowlisted, defaultConfig, loadConfigFile, parseConfig, HANDLER_ANNOTATION, type ShimConfig } from './config.js';

/** Where the handler of a task is recorded, for the `delete` subcommand. */
export const BUNDLE_STATE_FILE = 'tsshim.json';

/** Pure part of the selection: runtime options > default config; annotation only where allowed. */
export async function selectConfig(sel: Pick<HandlerSelection, 'options' | 'annotations'>, log?: Logger, fallback: () => Promise<ShimConfig> = defaultConfig): Promise<ShimConfig> {
  let cfg: ShimConfig | undefined;
  const ro = unpackAny(sel.options, TYPE_URL.RuntimeOptions, runtimeOptions.Options);
  if (ro) {
    if (ro.configBody && ro.configBody.length > 0) cfg = parseConfig(Buffer.from(ro.configBody).toString('utf8'), 'runtime options ConfigBody');
    else if (ro.configPath) {
      if (!path.isAbsolute(ro.configPath)) throw invalidArgument(`runtime options ConfigPath must be an absolute path, got ${JSON.stringify(ro.configPath)}`);
      cfg = await loadConfigFile(ro.configPath);
    }
  }
  const rc = cfg ? undefined : unpackAny(sel.options, TYPE_URL.RuncOptions, runcOptions.Options);
  if (rc) {
    cfg = {
      handler: { type: 'runc', name: 'runc', binary: rc.binaryName || undefined, root: rc.root || undefined, options: rc.systemdCgroup ? { systemd_cgroup: true } : {} },
      mode: 'pod',
      debug: false,
      annotationAllowlist: [],
      observe: { logFormat: 'auto' },
      source: 'runc options',
    };
  }
  if (!cfg && sel.options && sel.options.typeUrl !== TYPE_URL.RuntimeOptions) {
    log?.warn({ typeUrl: sel.options.typeUrl }, 'unknown runtime options type: ignored');
  }
  cfg ??= await fallback();
  const wanted = sel.annotations[HANDLER_ANNOTATION];
  if (wanted !== undefined) {
    // A pod asking for a handler must get it or a refusal: never silently another isolation.
    const file = allowlisted(cfg, wanted);
    if (!file) {
      log?.warn({ wanted, source: cfg.source }, `annotation ${HANDLER_ANNOTATION} refused: not in allow_annotation_override`);
      throw permissionDenied(
        `annotation ${HANDLER_ANNOTATION}=${JSON.stringify(wanted.slice(0, 256))} is not allowed by ${cfg.source}: ` +
          (cfg.annotationAllowlist.length ? `allow_annotation_override lists ${cfg.annotationAllowlist.join(', ')}` : 'its allow_annotation_override is empty'),
      );
    }
    cfg = { ...(await loadConfigFile(file)), source: `${file} (annotation ${HANDLER_ANNOTATION})` };
  }
  return cfg;
}

export class ConfiguredResolver implements HandlerResolver {
  private readonly instances = new Map<string, Promise<TaskHandler>>();
  private readonly factories = new Map<HandlerDefinition, Promise<HandlerFactory>>();

  constructor(
    private readonly definitions: readonly HandlerDefinition[],
    private readonly ctx: HandlerContext,
  ) {}

  /**
   * The definition of a config (built-in, or loaded from its module: handler-module.ts) and the
   * config its factory gets. A module that is missing or broken fails this Create only.
   */
  private bind(config: HandlerConfig, source: string): Promise<BoundHandler> {
    return bindHandler(config, source, this.definitions);
  }

  /** The factory of a definition, loaded once (definitions load their code lazily). */
  private factory(def: HandlerDefinition): Promise<HandlerFactory> {
    let f = this.factories.get(def);
    if (!f) {
      f = def.factory();
      this.factories.set(def, f);
      f.catch(() => this.factories.delete(def));
    }
    return f;
  }

  async resolve(sel: HandlerSelection): Promise<TaskHandler> {
    const cfg = await selectConfig(sel, this.ctx.log);
    if (cfg.debug && this.ctx.log.level !== 'debug' && this.ctx.log.level !== 'trace') this.ctx.log.level = 'debug';
    const bound = await this.bind(cfg.handler, cfg.source);
    const handler = await this.instance(bound);
    await fsp.writeFile(path.join(sel.bundle, BUNDLE_STATE_FILE), JSON.stringify({ handler: bound.config }), { mode: 0o600 });
    this.ctx.log.info(
      { id: sel.id, handler: bound.config.name, type: bound.config.type, source: cfg.source, ...(bound.config.module ? { module: bound.config.module.path } : {}) },
      'handler selected',
    );
    return handler;
  }

  async forBundle(bundle: string): Promise<TaskHandler> {
    const source = path.join(bundle, BUNDLE_STATE_FILE);
    let config: HandlerConfig;
    try {
      config = (JSON.parse(await fsp.readFile(source, 'utf8')) as { handler: HandlerConfig }).handler;
    } catch (err) {
      throw failedPrecondition(`cannot read the handler a task recorded in ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return this.instance(await this.bind(config, source));
  }

  /** One handler instance per distinct config, also when two callers race for it (factories load asynchronously). */
  private instance(bound: BoundHandler): Promise<TaskHandler> {
    const key = JSON.stringify(bound.config);
    let pending = this.instances.get(key);
    if (!pending) {
      pending = this.factory(bound.definition).then((f) => f.create(bound.config, this.ctx));
      this.instances.set(key, pending);
      pending.catch(() => this.instances.delete(key)); // bad options: nothing to keep, the caller gets the error
    }
    return pending;
  }

  async cleanup(bundle: string, id: string): Promise<CleanupResult> {
    let config: HandlerConfig;
    const source = path.join(bundle, BUNDLE_STATE_FILE);
    try {
      config = (JSON.parse(await fsp.readFile(source, 'utf8')) as { handler: HandlerConfig }).handler;
    } catch {
      config = (await defaultConfig()).handler; // Create never got as far as choosing: clean up as the default would
    }
    const bound = await this.bind(config, source);
    return (await this.factory(bound.definition)).cleanup(bound.config, bundle, id, this.ctx);
  }

  /**
   * `-info`: the handler these runtime options select, as Create would select it (there are no
   * annotations, so allow_annotation_override plays no part), and its backend's features.
   */
  async runtimeFeatures(options: Any | undefined): Promise<RuntimeFeatures> {
    const cfg = await selectConfig({ options, annotations: {} }, this.ctx.log);
    const bound = await this.bind(cfg.handler, cfg.source);
    const factory = await this.factory(bound.definition);
    const features = factory.features ? await factory.features(bound.config, this.ctx) : undefined;
    return { handler: bound.config, source: cfg.source, ...(features ? { features } : {}) };
  }
}
