/**
 * Every hook priority in one place: higher runs first (EMQX's convention and, where EMQX has the
 * same feature, its numbers). Callbacks of one priority run in registration order (plugins: the
 * order of the `plugins` list).
 */
export const PRIORITIES = {
  /** OpenTelemetry tracing (services/observability) sees a PUBLISH before anything changes it, and CONNECTs before bans. */
  tracing: 1000,
  /** Bans, flapping detection and overload protection refuse a CONNECT before any authenticator runs. */
  banned: 990,
  /** Topic rewrite sees topics first (EMQX 980), so everything after it sees the rewritten topic. */
  rewrite: 980,
  /** Built-in authentication (EMQX 970): the `authentication` chain and MQTT 5.0 enhanced-authentication providers. */
  authn: 970,
  /** Built-in authorization (EMQX 960): the `authorization` sources. */
  authz: 960,
  /** The rule engine sees messages before any later change (EMQX 900). */
  rules: 900,
  /** Delayed publish takes `$delayed/...` messages out of the chain (EMQX 860); released ones run it again. */
  delayed: 860,
  /** `$SYS` client events (EMQX's emqx_sys). */
  sys: 800,
  /** Auto-subscribe on client.connected. */
  auto_subscribe: 700,
  /** Operators' JavaScript plugins (config `plugins`). */
  plugins: 500,
  /** gRPC ExHook servers (EMQX 100): after the built-ins. */
  exhook: 100,
  /** MQTT→Kafka topic mappings copy what the chain finally publishes, so they run last. */
  mappings: 10,
} as const;

export type PriorityName = keyof typeof PRIORITIES;
