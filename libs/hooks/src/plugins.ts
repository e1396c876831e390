import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '@tributary/common';
import { TributaryError } from '@tributary/common';
import type { MessageProperties, QoS } from '@tributary/mqtt';
import { HookPoint, HookSignatures, isHookPoint } from './points';
import type { HookRegistry } from './registry';

/** A message a plugin publishes through ctx.publish (it runs the message.publish chain like any other). */
export interface PluginMessage {
  topic: string;
  payload: Buffer | string;
  qos?: QoS;
  retain?: boolean;
  properties?: MessageProperties;
}

/** What a plugin's start() gets. */
export interface PluginContext {
  /** A logger whose lines carry `plugin: <name>`. */
  logger: Logger;
  /** Its own section: `plugin_config.<name>` ({} when absent). */
  config: Readonly<Record<string, unknown>>;
  /** Publishes a message from the broker itself (client id ''). Resolves once it is durable. */
  publish(msg: PluginMessage): Promise<void>;
}

/** What a plugin module exports (its default export, or module.exports). */
export interface Plugin {
  name: string;
  version: string;
  hooks?: { [P in HookPoint]?: HookSignatures[P] };
  start?(ctx: PluginContext): void | Promise<void>;
  stop?(): void | Promise<void>;
}

/** A plugin that cannot be loaded or started: names the plugin and the problem. */
export class PluginError extends TributaryError {
  constructor(plugin: string, problem: string, cause?: unknown) {
    super('PLUGIN_INVALID', `plugin ${plugin}: ${problem}`, { cause });
  }
}

export interface PluginHostOptions {
  registry: HookRegistry;
  logger: Logger;
  /** `plugin_config`: sections by plugin name. */
  configs: Readonly<Record<string, unknown>>;
  publish(msg: PluginMessage): Promise<void>;
  /** Relative module paths resolve against this directory (the working directory). */
  baseDir?: string;
}

/**
 * Loads the `plugins` list in order: each module is imported (ES module or CommonJS), checked,
 * started, and its hooks registered at the `plugins` priority. Any problem stops start-up with a
 * PluginError; plugins already started are stopped first.
 */
export class PluginHost {
  private readonly started: { plugin: Plugin; unregister: (() => void)[] }[] = [];

  constructor(private readonly opts: PluginHostOptions) {}

  get loaded(): readonly Plugin[] {
    return this.started.map((s) => s.plugin);
  }

  async start(specs: readonly string[]): Promise<void> {
    try {
      for (const spec of specs) await this.load(spec);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async load(spec: string): Promise<void> {
    const plugin = check(spec, await importPlugin(spec, this.opts.baseDir ?? process.cwd()));
    if (this.started.some((s) => s.plugin.name === plugin.name)) throw new PluginError(spec, `a plugin named "${plugin.name}" is already loaded`);
    const logger = this.opts.logger.child({ plugin: plugin.name });
    const section = this.opts.configs[plugin.name];
    const config = section && typeof section === 'object' ? (section as Record<string, unknown>) : {};
    try {
      await plugin.start?.({ logger, config, publish: this.opts.publish });
    } catch (err) {
      throw new PluginError(plugin.name, `start() failed: ${(err as Error).message}`, err);
    }
    const unregister: (() => void)[] = [];
    for (const [point, fn] of Object.entries(plugin.hooks ?? {})) {
      unregister.push(this.opts.registry.add(point as HookPoint, { name: plugin.name, priority: 'plugins' }, fn as never));
    }
    this.started.push({ plugin, unregister });
    logger.info({ version: plugin.version, hooks: Object.keys(plugin.hooks ?? {}) }, 'plugin loaded');
  }

  /** Unregisters and stops the plugins, last loaded first; a failing stop() is logged. */
  async stop(): Promise<void> {
    while (this.started.length) {
      const { plugin, unregister } = this.started.pop()!;
      for (const u of unregister) u();
      try {
        await plugin.stop?.();
      } catch (err) {
        this.opts.logger.error({ err, plugin: plugin.name }, 'plugin stop() failed');
      }
    }
  }
}

/** A path (./x.js, /opt/x.mjs) resolves against `baseDir`; anything else is an installed package name. */
async function importPlugin(spec: string, baseDir: string): Promise<unknown> {
  const isPath = spec.startsWith('.') || isAbsolute(spec);
  let target: string;
  try {
    target = isPath ? pathToFileURL(resolve(baseDir, spec)).href : pathToFileURL(createRequire(join(baseDir, 'plugins.js')).resolve(spec)).href;
  } catch {
    // An ES-module-only package without a "require" export: let import() resolve it.
    target = spec;
  }
  let mod: unknown;
  try {
    mod = await import(target);
  } catch (err) {
    throw new PluginError(spec, `cannot be loaded: ${(err as Error).message}`, err);
  }
  const m = mod as { default?: unknown };
  // An ES module's default export; CommonJS's module.exports arrives as `default` too.
  return m.default !== undefined ? m.default : mod;
}

function check(spec: string, value: unknown): Plugin {
  if (!value || typeof value !== 'object') throw new PluginError(spec, 'must export an object { name, version, hooks }');
  const p = value as Record<string, unknown>;
  if (typeof p.name !== 'string' || !p.name) throw new PluginError(spec, 'exports no name (a non-empty string)');
  const name = p.name;
  if (typeof p.version !== 'string' || !p.version) throw new PluginError(name, 'exports no version (a string)');
  if (p.hooks !== undefined && (typeof p.hooks !== 'object' || p.hooks === null)) throw new PluginError(name, 'hooks must be an object of { "<hook point>": function }');
  for (const [point, fn] of Object.entries((p.hooks ?? {}) as Record<string, unknown>)) {
    if (!isHookPoint(point)) throw new PluginError(name, `unknown hook point "${point}"`);
    if (typeof fn !== 'function') throw new PluginError(name, `hook ${point} is not a function`);
  }
  for (const f of ['start', 'stop'] as const) if (p[f] !== undefined && typeof p[f] !== 'function') throw new PluginError(name, `${f} must be a function`);
  return value as Plugin;
}
