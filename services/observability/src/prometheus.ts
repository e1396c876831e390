import { totalmem, freemem } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ApiRoute } from '@tributary/api';
import { EXPOSITION_CONTENT_TYPE, Family, metricName, renderExposition } from './exposition';
import type { DataIntegrationInfo, ObservedNode } from './source';

const HELP: Record<string, string> = {
  'connections.count': 'Connected MQTT clients.',
  'live_connections.count': 'Connected MQTT clients (Tributary keeps no channel for a disconnected session).',
  'sessions.count': 'Sessions, connected or kept for a disconnected client.',
  'subscriptions.count': 'Subscriptions of all sessions.',
  'topics.count': 'Distinct topic filters subscribed to.',
  'retained.count': 'Retained messages.',
  'delayed.count': 'Delayed messages waiting.',
  'messages.received': 'PUBLISH messages received from clients.',
  'messages.sent': 'PUBLISH messages sent to clients.',
  'messages.dropped': 'Messages dropped, all reasons.',
  'bytes.received': 'Bytes received from clients.',
  'bytes.sent': 'Bytes sent to clients.',
  'authentication.success': 'CONNECTs the authentication chain allowed.',
  'authentication.failure': 'CONNECTs the authentication chain refused.',
  'authorization.allow': 'PUBLISH and SUBSCRIBE allowed by authorization.',
  'authorization.deny': 'PUBLISH and SUBSCRIBE denied by authorization.',
};

/**
 * EMQX counts a message dropped on its way to one subscriber as delivery.dropped.<reason>;
 * Tributary counts those under messages.dropped.<reason>. Both names are exported so EMQX's
 * dashboards find theirs.
 */
const DELIVERY_DROPPED = ['queue_full', 'expired', 'too_large'] as const;

/** The per-rule counters of /prometheus/data_integration: EMQX's keys of GET /rules/:id/metrics (rule_<key with . as _>). */
const RULE_COUNTERS = ['matched', 'passed', 'failed', 'failed.exception', 'failed.no_result', 'actions.total', 'actions.success', 'actions.failed', 'actions.failed.out_of_service', 'actions.failed.unknown', 'actions.discarded'] as const;

/** The per-action families: EMQX's keys of GET /actions/:id/metrics (action_<key>); inflight and queuing are gauges. */
const ACTION_METRICS: readonly (readonly [string, 'counter' | 'gauge'])[] = [
  ['matched', 'counter'],
  ['dropped', 'counter'],
  ['success', 'counter'],
  ['failed', 'counter'],
  ['inflight', 'gauge'],
  ['received', 'counter'],
  ['late_reply', 'counter'],
  ['retried', 'counter'],
  ['retried.success', 'counter'],
  ['retried.failed', 'counter'],
  ['dropped.resource_stopped', 'counter'],
  ['dropped.resource_not_found', 'counter'],
  ['dropped.queue_full', 'counter'],
  ['dropped.other', 'counter'],
  ['dropped.expired', 'counter'],
  ['queuing', 'gauge'],
];

/** Stats keys that are not counts (the rest of stats are gauges too, under their own names). */
const SKIPPED_STATS = new Set(['uptime']);

/**
 * The node's Prometheus families: every stat as a gauge and every metric as a counter, named
 * `<prefix><key with . as _>` as EMQX names them, plus process memory, event-loop lag and EMQX's
 * `vm_*` gauges. The event-loop lag is measured since the previous scrape.
 */
export class PrometheusCollector {
  private readonly lag: IntervalHistogram;
  private readonly startedAt = Date.now();

  constructor(
    private readonly node: ObservedNode,
    private readonly prefix: string,
  ) {
    this.lag = monitorEventLoopDelay({ resolution: 20 });
    this.lag.enable();
  }

  /** Stops the event-loop delay histogram. */
  close(): void {
    this.lag.disable();
  }

  /** /prometheus/stats: broker counts and counters, process and VM gauges. */
  stats(): Family[] {
    const stats = this.node.stats();
    const metrics = this.node.metrics();
    const out: Family[] = [];
    const gauge = (key: string, value: number, help?: string): void => void out.push({ name: metricName(this.prefix, key), type: 'gauge', help: help ?? HELP[key] ?? `Tributary stat ${key}.`, samples: [{ value }] });
    for (const [key, value] of Object.entries(stats)) if (!SKIPPED_STATS.has(key)) gauge(key, value);
    if ('connections.count' in stats && !('live_connections.count' in stats)) gauge('live_connections.count', stats['connections.count']);
    for (const [key, value] of Object.entries(metrics)) {
      if (key in stats) continue;
      // A few broker "metrics" are counts that go down (connections.count): gauges, like stats.
      if (key.endsWith('.count')) gauge(key, value);
      else out.push({ name: metricName(this.prefix, key), type: 'counter', help: HELP[key] ?? `Tributary counter ${key}.`, samples: [{ value }] });
    }
    if (!('delivery.dropped' in metrics) && 'messages.dropped.queue_full' in metrics) {
      const counter = (key: string, value: number, help: string): void => void out.push({ name: metricName(this.prefix, key), type: 'counter', help, samples: [{ value }] });
      let all = 0;
      for (const r of DELIVERY_DROPPED) {
        const v = metrics[`messages.dropped.${r}`] ?? 0;
        all += v;
        counter(`delivery.dropped.${r}`, v, `Deliveries to one subscriber dropped: ${r} (EMQX's name for messages.dropped.${r}).`);
      }
      counter('delivery.dropped', all, 'Deliveries to one subscriber dropped, every reason.');
    }
    const mem = process.memoryUsage();
    gauge('vm.total_memory', totalmem(), 'Memory of the host, bytes.');
    gauge('vm.used_memory', totalmem() - freemem(), 'Memory of the host in use, bytes.');
    gauge('vm.uptime_ms', Date.now() - this.startedAt, 'Milliseconds since the process started serving.');
    gauge('process.resident_memory_bytes', mem.rss, 'Resident set size of the process, bytes.');
    gauge('process.heap_used_bytes', mem.heapUsed, 'V8 heap in use, bytes.');
    gauge('process.heap_total_bytes', mem.heapTotal, 'V8 heap allocated, bytes.');
    const s = (ns: number): number => (Number.isFinite(ns) ? ns / 1e9 : 0);
    out.push({
      name: metricName(this.prefix, 'eventloop.lag_seconds'),
      type: 'gauge',
      help: 'Event-loop delay since the previous scrape (perf_hooks.monitorEventLoopDelay), seconds, by quantile.',
      samples: [0.5, 0.9, 0.99].map((q) => ({ labels: { quantile: String(q) }, value: this.lag.count ? s(this.lag.percentile(q * 100)) : 0 })),
    });
    gauge('eventloop.lag_max_seconds', this.lag.count ? s(this.lag.max) : 0, 'Largest event-loop delay since the previous scrape, seconds.');
    this.lag.reset();
    return out;
  }

  /** /prometheus/auth: EMQX's authn_* and authz_* families. Counters are the node's totals (Tributary counts no per-authenticator outcomes). */
  auth(): Family[] {
    const m = this.node.metrics();
    const info = this.node.authInfo?.();
    const name = (k: string): string => metricName(this.prefix, k);
    const v = (k: string): number => m[k] ?? 0;
    const out: Family[] = [
      { name: name('authn_enable'), type: 'gauge', help: 'Authenticator enabled (1), by id.', samples: (info?.authenticators ?? []).map((id) => ({ labels: { id }, value: 1 })) },
      { name: name('authn_status'), type: 'gauge', help: 'Authenticator running (1), by id.', samples: (info?.authenticators ?? []).map((id) => ({ labels: { id }, value: 1 })) },
      { name: name('authn_total'), type: 'counter', help: 'Authentications, every outcome.', samples: [{ value: v('authentication.success') + v('authentication.failure') }] },
      { name: name('authn_success'), type: 'counter', help: 'Authentications allowed.', samples: [{ value: v('authentication.success') }] },
      { name: name('authn_failed'), type: 'counter', help: 'Authentications refused.', samples: [{ value: v('authentication.failure') }] },
      { name: name('authz_enable'), type: 'gauge', help: 'Authorization source enabled (1), by type.', samples: (info?.sources ?? []).map((type) => ({ labels: { type }, value: 1 })) },
      { name: name('authz_status'), type: 'gauge', help: 'Authorization source running (1), by type.', samples: (info?.sources ?? []).map((type) => ({ labels: { type }, value: 1 })) },
      { name: name('authz_total'), type: 'counter', help: 'Authorization checks, every outcome.', samples: [{ value: v('authorization.allow') + v('authorization.deny') }] },
      { name: name('authz_allow'), type: 'counter', help: 'Authorization checks allowed.', samples: [{ value: v('authorization.allow') }] },
      { name: name('authz_deny'), type: 'counter', help: 'Authorization checks denied.', samples: [{ value: v('authorization.deny') }] },
      { name: name('authz_nomatch'), type: 'counter', help: 'Authorization checks no source matched.', samples: [{ value: v('authorization.nomatch') }] },
      { name: name('banned_count'), type: 'gauge', help: 'Entries in the ban list.', samples: [{ value: info?.banned ?? 0 }] },
    ];
    return out;
  }

  /**
   * /prometheus/data_integration: EMQX's rules_count, actions_count (the actions the rules list,
   * summed, as EMQX counts them) and connectors_count, and per rule, action (sink) and connector
   * labelled {id}. Status gauges are 1 for connected, enable gauges 1 for enabled. A process
   * without the rule engine answers every family without samples (and the counts 0).
   */
  dataIntegration(): Family[] {
    const info: DataIntegrationInfo = this.node.dataIntegration?.() ?? { rules: [], actions: [], connectors: [] };
    const name = (k: string): string => metricName(this.prefix, k);
    const per = <T extends { readonly id: string }>(items: readonly T[], value: (x: T) => number): Family['samples'] => items.map((x) => ({ labels: { id: x.id }, value: value(x) }));
    const flag = (b: boolean): number => (b ? 1 : 0);
    const up = (status: string): number => (status === 'connected' ? 1 : 0);
    const { rules, actions, connectors } = info;
    const out: Family[] = [
      { name: name('rules_count'), type: 'gauge', help: 'Rules in the rules table, enabled or not.', samples: [{ value: rules.length }] },
      { name: name('actions_count'), type: 'gauge', help: 'Actions listed by the rules, summed over the rules.', samples: [{ value: rules.reduce((n, r) => n + r.actions, 0) }] },
      { name: name('connectors_count'), type: 'gauge', help: 'Connectors configured, enabled or not.', samples: [{ value: connectors.length }] },
      { name: name('rule_enable'), type: 'gauge', help: 'Rule enabled (1) or not (0), by rule id.', samples: per(rules, (r) => flag(r.enable)) },
    ];
    for (const key of RULE_COUNTERS) out.push({ name: name(`rule_${key}`), type: 'counter', help: `Rule counter ${key} (GET /rules/:id/metrics), by rule id.`, samples: per(rules, (r) => r.metrics[key] ?? 0) });
    out.push(
      { name: name('action_enable'), type: 'gauge', help: 'Sink enabled (1) or not (0), by <type>:<name>.', samples: per(actions, (a) => flag(a.enable)) },
      { name: name('action_status'), type: 'gauge', help: "Sink's connector connected (1) or not (0), by <type>:<name>.", samples: per(actions, (a) => up(a.status)) },
    );
    for (const [key, type] of ACTION_METRICS) out.push({ name: name(`action_${key}`), type, help: `Sink ${type} ${key} (GET /actions/:id/metrics), by <type>:<name>.`, samples: per(actions, (a) => a.metrics[key] ?? 0) });
    out.push(
      { name: name('connector_enable'), type: 'gauge', help: 'Connector enabled (1) or not (0), by <type>:<name>.', samples: per(connectors, (c) => flag(c.enable)) },
      { name: name('connector_status'), type: 'gauge', help: 'Connector connected (1) or not (0), by <type>:<name>.', samples: per(connectors, (c) => up(c.status)) },
    );
    return out;
  }
}

/** GET /prometheus/stats, /prometheus/auth and /prometheus/data_integration; public (no API key) unless `basicAuth`. */
export function prometheusRoutes(collector: PrometheusCollector, basicAuth: boolean): ApiRoute[] {
  const text = (families: Family[]): { body: string; contentType: string } => ({ body: renderExposition(families), contentType: EXPOSITION_CONTENT_TYPE });
  return [
    { method: 'GET', path: '/prometheus/stats', summary: 'Prometheus metrics of this node (text format 0.0.4)', auth: basicAuth ? 'any' : 'none', handler: () => text(collector.stats()) },
    { method: 'GET', path: '/prometheus/auth', summary: 'Prometheus authentication and authorization metrics', auth: basicAuth ? 'any' : 'none', handler: () => text(collector.auth()) },
    { method: 'GET', path: '/prometheus/data_integration', summary: 'Prometheus rule, action (sink) and connector metrics', auth: basicAuth ? 'any' : 'none', handler: () => text(collector.dataIntegration()) },
  ];
}
