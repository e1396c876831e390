import { apiConfigFragment } from '@tributary/api';
import { authConfigFragment, limitsConfigFragment } from '@tributary/auth';
import { backboneConfigFragment } from '@tributary/backbone';
import { commonConfigFragment, composeConfigSchema, ConfigKeyDoc, describeConfig, Infer, LoadedConfig, loadConfig, LoadOptions } from '@tributary/common';
import { gatewayConfigFragment, listenersConfigFragment } from '@tributary/gateway';
import { hooksConfigFragment } from '@tributary/hooks';
import { observabilityConfigFragment } from '@tributary/observability';
import { rulesConfigFragment } from '@tributary/rules';

/**
 * The one configuration schema of a Tributary process: every package's fragment, in the order
 * docs/configuration.md lists them. A package with keys of its own adds its fragment here (one
 * line); two fragments owning the same top-level key stop the process at start-up.
 */
export const tributaryConfigSchema = composeConfigSchema([
  commonConfigFragment, // node, log
  listenersConfigFragment, // listeners (services/gateway)
  apiConfigFragment, // dashboard (services/api)
  gatewayConfigFragment, // mqtt, sys_topics, bridge, cluster, delayed, auto_subscribe, rewrite (services/gateway)
  authConfigFragment, // authentication, authorization (services/auth)
  limitsConfigFragment, // flapping_detect, overload_protection (services/auth)
  hooksConfigFragment, // hooks, plugins, plugin_config (libs/hooks)
  backboneConfigFragment, // backbone (libs/backbone)
  observabilityConfigFragment, // prometheus, monitor, opentelemetry (services/observability)
  rulesConfigFragment, // rule_engine, connectors, actions, sources (services/rules)
]);

export type TributaryConfig = Infer<typeof tributaryConfigSchema>;

/** loadConfig over the whole schema: what `tributary start` and the scaled-out roles read. */
export function loadTributaryConfig(opts: LoadOptions = {}): LoadedConfig<TributaryConfig> {
  return loadConfig(tributaryConfigSchema, opts);
}

/** Every key of the whole schema: `tributary config` and docs/configuration.md. */
export function describeTributaryConfig(): ConfigKeyDoc[] {
  return describeConfig(tributaryConfigSchema);
}
