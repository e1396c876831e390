/** What observability reads from the running node (TributaryNode implements it). */
export interface ObservedNode {
  readonly nodeName: string;
  /** Counts now: connections.count, subscriptions.count ... (gauges). */
  stats(): Record<string, number>;
  /** Counters since start: messages.received, authentication.success ... */
  metrics(): Record<string, number>;
  /** Authenticator ids and authorization source types, for /prometheus/auth; undefined where the node runs no authentication. */
  authInfo?(): { authenticators: readonly string[]; sources: readonly string[]; banned: number } | undefined;
}
