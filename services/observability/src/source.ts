/** What observability reads from the running node (TributaryNode implements it). */
export interface ObservedNode {
  readonly nodeName: string;
  /** Counts now: connections.count, subscriptions.count ... (gauges). */
  stats(): Record<string, number>;
  /** Counters since start: messages.received, authentication.success ... */
  metrics(): Record<string, number>;
  /** Authenticator ids and authorization source types, for /prometheus/auth; undefined where the node runs no authentication. */
  authInfo?(): { authenticators: readonly string[]; sources: readonly string[]; banned: number } | undefined;
  /** The rule engine's rules, sinks and connectors, for /prometheus/data_integration; undefined where the process runs no rule engine. */
  dataIntegration?(): DataIntegrationInfo | undefined;
}

/**
 * A process's data integration as /prometheus/data_integration reads it. Metrics carry EMQX's
 * keys, as GET /rules/:id/metrics and GET /actions/:id/metrics show them (`failed.exception`,
 * `dropped.queue_full`, ...); a key left out counts 0.
 */
export interface DataIntegrationInfo {
  /** Every rule of the rules table, enabled or not; `actions`: how many actions it lists. */
  readonly rules: readonly { readonly id: string; readonly enable: boolean; readonly actions: number; readonly metrics: Readonly<Record<string, number>> }[];
  /** The sinks (`actions.<type>.<name>`), id `<type>:<name>`, status of their connector. */
  readonly actions: readonly { readonly id: string; readonly enable: boolean; readonly status: string; readonly metrics: Readonly<Record<string, number>> }[];
  /** The connectors, id `<type>:<name>`, status connected, connecting or disconnected. */
  readonly connectors: readonly { readonly id: string; readonly enable: boolean; readonly status: string }[];
}
