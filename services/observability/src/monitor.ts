import { ApiError, type ApiRoute } from '@tributary/api';
import type { ObservedNode } from './source';

/** One sample of /api/v5/monitor: counts at `time_stamp`, counters as increments since the previous sample. */
export interface MonitorSample {
  /** Milliseconds since the epoch. */
  time_stamp: number;
  connections: number;
  live_connections: number;
  sessions: number;
  subscriptions: number;
  topics: number;
  retained_msg_count: number;
  received: number;
  sent: number;
  dropped: number;
  received_bytes: number;
  sent_bytes: number;
}

const COUNTERS = { received: 'messages.received', sent: 'messages.sent', dropped: 'messages.dropped', received_bytes: 'bytes.received', sent_bytes: 'bytes.sent' } as const;
type CounterField = keyof typeof COUNTERS;

/** How long samples are kept (EMQX's dashboard charts the last hour by default). */
export const MONITOR_WINDOW_MS = 3_600_000;

/**
 * EMQX's monitor: samples the node every `intervalMs` (an unref'd timer, default 10 s) and keeps
 * the last hour. Counts (connections, subscriptions ...) are the value at the sample; counters
 * (received, sent, dropped, bytes) are what was added since the previous sample.
 */
export class Monitor {
  readonly samples: MonitorSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last: Record<CounterField, number>;
  private readonly startedAt = Date.now();

  constructor(
    private readonly node: ObservedNode,
    readonly intervalMs = 10_000,
  ) {
    this.last = this.counters();
  }

  start(): void {
    this.timer ??= setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now (the timer calls it; tests may too). */
  sample(now = Date.now()): MonitorSample {
    const counters = this.counters();
    const s: MonitorSample = { time_stamp: now, ...this.gauges(), received: 0, sent: 0, dropped: 0, received_bytes: 0, sent_bytes: 0 };
    for (const f of Object.keys(COUNTERS) as CounterField[]) s[f] = Math.max(0, counters[f] - this.last[f]);
    this.last = counters;
    this.samples.push(s);
    while ((this.samples[0]?.time_stamp ?? now) < now - MONITOR_WINDOW_MS) this.samples.shift();
    return s;
  }

  /** Samples of the last `latestSeconds` (default: all kept), oldest first. */
  history(latestSeconds?: number, now = Date.now()): MonitorSample[] {
    if (latestSeconds === undefined) return [...this.samples];
    return this.samples.filter((s) => s.time_stamp >= now - latestSeconds * 1000);
  }

  /** /monitor_current: counts now and per-second rates since the last sample (over the last interval right after one). */
  current(now = Date.now()): Record<string, number> {
    const counters = this.counters();
    const newest = this.samples.at(-1);
    let since = newest?.time_stamp ?? this.startedAt;
    let base = this.last;
    if (now - since < 1000 && newest) {
      // Too short a time to give a rate: use the newest sample's interval.
      const prev = this.samples.at(-2)?.time_stamp ?? this.startedAt;
      since = prev;
      base = { ...this.last };
      for (const f of Object.keys(COUNTERS) as CounterField[]) base[f] = this.last[f] - newest[f];
    }
    const seconds = Math.max((now - since) / 1000, 0.001);
    const rate = (f: CounterField): number => Math.round((Math.max(0, counters[f] - base[f]) / seconds) * 100) / 100;
    return {
      ...this.gauges(),
      node_uptime: Math.floor((now - this.startedAt) / 1000),
      received_msg_rate: rate('received'),
      sent_msg_rate: rate('sent'),
      dropped_msg_rate: rate('dropped'),
      received_bytes_rate: rate('received_bytes'),
      sent_bytes_rate: rate('sent_bytes'),
    };
  }

  private gauges(): Pick<MonitorSample, 'connections' | 'live_connections' | 'sessions' | 'subscriptions' | 'topics' | 'retained_msg_count'> {
    const st = this.node.stats();
    const connections = st['connections.count'] ?? 0;
    return { connections, live_connections: connections, sessions: st['sessions.count'] ?? 0, subscriptions: st['subscriptions.count'] ?? 0, topics: st['topics.count'] ?? 0, retained_msg_count: st['retained.count'] ?? 0 };
  }

  private counters(): Record<CounterField, number> {
    const m = this.node.metrics();
    const out = {} as Record<CounterField, number>;
    for (const [f, key] of Object.entries(COUNTERS) as [CounterField, string][]) out[f] = m[key] ?? 0;
    return out;
  }
}

/** GET /monitor[?latest=s], /monitor/nodes/:node, /monitor_current and /monitor_current/nodes/:node (this node only). */
export function monitorRoutes(monitor: Monitor, nodeName: string): ApiRoute[] {
  const latest = (q: Record<string, string | undefined>): number | undefined => {
    if (q.latest === undefined) return undefined;
    const n = Number(q.latest);
    if (!Number.isFinite(n) || n <= 0) throw new ApiError(400, 'BAD_REQUEST', 'latest must be a positive number of seconds');
    return n;
  };
  const thisNode = (node: string): void => {
    if (node !== nodeName) throw new ApiError(404, 'NOT_FOUND', `node ${node} not found`);
  };
  return [
    { method: 'GET', path: '/monitor', summary: 'Counts and message counters of the last hour, one sample per interval', handler: (r) => ({ body: monitor.history(latest(r.query)) }) },
    { method: 'GET', path: '/monitor/nodes/:node', summary: "One node's monitor samples", handler: (r) => (thisNode(r.params.node ?? ''), { body: monitor.history(latest(r.query)) }) },
    { method: 'GET', path: '/monitor_current', summary: 'Counts now and message rates per second', handler: () => ({ body: monitor.current() }) },
    { method: 'GET', path: '/monitor_current/nodes/:node', summary: "One node's counts and rates", handler: (r) => (thisNode(r.params.node ?? ''), { body: monitor.current() }) },
  ];
}
