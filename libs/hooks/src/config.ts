import { configFragment, ConfigProblem, duration, Infer, jsonObject, list } from '@tributary/common';

/** The hooks' and plugins' keys (docs/plugins.md). */
export const hooksConfigFragment = configFragment('@tributary/hooks', {
  hooks: {
    callback_timeout: duration(5_000, 'Longest wait for an asynchronous hook callback (authenticate, authorize, message.publish); then it is skipped, or denies at authenticate and authorize.', 1),
  },
  plugins: list<string>(
    [],
    'JavaScript plugins loaded at start, in order: module paths (relative to the working directory) or installed package names, e.g. ["./examples/plugins/topic-guard.mjs"] (docs/plugins.md).',
    (raw) => (typeof raw === 'string' && raw.length > 0 ? raw : new ConfigProblem('expected a module path or package name')),
  ),
  plugin_config: jsonObject({}, "Plugins' own sections by plugin name: {\"<name>\": {...}}, given to its start(ctx) as ctx.config."),
});

export type HooksConfig = Infer<typeof hooksConfigFragment.schema>;
