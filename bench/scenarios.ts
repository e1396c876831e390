/**
 * The closed-loop load scenarios (the open-loop ones are in openloop.ts). Publishers and subscribers all live in
 * this (the load) process, never in a broker's.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Flow, flowDiag, runFlow } from './flow';
import { Ctx, Metric, RunOptions, Scenario, sleep } from './harness';
import { quantiles } from './measure';

const FANIN_PUBLISHERS = 10;
const FANOUT_SUBSCRIBERS = 100;
const SHARED_MEMBERS = 4;
const LATENCY_RATE = 20_000;
/** The Kafka-mode targets: p50 at a fixed 5,000 msg/s, and sustained QoS 1 msg/s through two gateways. */
const GATEWAY_LATENCY_RATE = 5_000;
const CROSS_SUBSCRIBERS = 2;

/** A closed-loop flow's delivered msg/s (row `label`), with notes for losses, undelivered messages and duplicates. */
export function throughput(name: string, title: string, flow: Flow, label: string): Scenario {
  return {
    name,
    title,
    timeoutS: (o) => o.warmupS + o.durationS + 30,
    timed: true,
    ...(flow.tls ? { tls: true } : {}),
    async run(ctx) {
      const r = await runFlow(ctx, flow);
      // Aedes 1.x, for one, has no shared subscriptions: `$share/...` is then a plain filter no publish matches.
      if (flow.shareGroup !== undefined && r.received === 0) throw new Error('no delivery to $share/ members (unsupported?)');
      const value = r.received / r.seconds;
      const lostPct = (100 * r.lost) / (r.received + r.lost);
      const notes: string[] = [];
      if (r.received === 0) notes.push('nothing delivered');
      else if (r.lost > 0) notes.push(`${lostPct < 0.1 ? '<0.1' : lostPct.toFixed(1)}% lost`);
      const missing = r.missingAfterDrain ?? 0;
      if (missing > 0 && r.lost <= 0) notes.push(`${missing} never delivered`);
      if (missing < 0) notes.push(`${-missing} duplicates`);
      // A shared subscription that starves a member is not sharing.
      if (flow.shareGroup !== undefined && r.received > 0) {
        const idle = r.perSubscriber.filter((n) => n === 0).length;
        if (idle > 0) notes.push(`${idle} of ${r.perSubscriber.length} members got nothing`);
      }
      const note = notes.length > 0 ? notes.join(', ') : undefined;
      // What a message took end to end at this (saturating) rate: queueing in the closed loop included.
      const at = r.latencyMs.length > 0 ? quantiles(r.latencyMs) : undefined;
      const lat: Record<string, number> = at ? { latencyP50Us: at(0.5), latencyP99Us: at(0.99), latencyMaxUs: at(1) } : {};
      return { metrics: [{ key: name, label, value, better: 'higher', digits: 0, ...(note ? { note } : {}) }], extra: { ...flowDiag(r), ...lat } };
    },
  };
}

interface LatencySpec {
  name: string;
  title: string;
  /** Row labels: `<label> p50 (us)` etc. */
  label: string;
  qos: 0 | 1;
  /** msg/s in all, split evenly over the publishers. */
  rate: number;
  pubGateway?(p: number): number;
  subGateway?(s: number): number;
}

function latency(spec: LatencySpec): Scenario {
  const { name, qos, rate } = spec;
  return {
    name,
    title: spec.title,
    timeoutS: (o) => o.warmupS + o.durationS + 30,
    timed: true,
    async run(ctx) {
      const per = rate / FANIN_PUBLISHERS;
      const r = await runFlow(ctx, {
        publishers: FANIN_PUBLISHERS,
        subscribers: 1,
        qos,
        topic: 'bench/latency',
        e2eWindow: 0,
        ratePerPublisher: per,
        ...(spec.pubGateway ? { pubGateway: spec.pubGateway } : {}),
        ...(spec.subGateway ? { subGateway: spec.subGateway } : {}),
      });
      if (r.latencyMs.length === 0) throw new Error('no messages received');
      const at = quantiles(r.latencyMs);
      const row = (k: string, v: number): Metric => ({ key: `${name}-${k}`, label: `${spec.label} ${k} (us)`, value: v, better: 'lower', digits: 0 });
      const achieved = r.received / r.seconds;
      const notes: string[] = [];
      if (achieved < 0.95 * rate) {
        ctx.opts.log(`  only ${Math.round(achieved)} of ${rate} msg/s arrived`);
        notes.push(`only ${Math.round(achieved)} msg/s`);
      }
      if (r.lost > 0) notes.push(`${r.lost} lost`);
      const note = notes.length > 0 ? { note: notes.join(', ') } : {};
      return { metrics: [{ ...row('p50', at(0.5)), ...note }, row('p99', at(0.99)), row('max', at(1))], extra: { ...flowDiag(r), samples: r.latencyMs.length } };
    },
  };
}

/** The original latency rows: 10 publishers → 1 subscriber at 20,000 msg/s, all on the first port. */
const latencyAt20k = (qos: 0 | 1): Scenario =>
  latency({ name: `latency-qos${qos}`, title: `latency qos${qos} @ ${LATENCY_RATE} msg/s`, label: `latency qos${qos}`, qos, rate: LATENCY_RATE });

const IDLE_CONNECTIONS = 10_000;

/**
 * 10k unless the fd limit forbids it: without CAP_SYS_RESOURCE (e.g. root in some containers) a hard
 * `ulimit -n 1024` cannot be raised, for the brokers either, so measure what fits and say so.
 */
export function idleCount(opts: RunOptions): number {
  const n = Math.min(IDLE_CONNECTIONS, opts.fdLimit - 150);
  if (n < IDLE_CONNECTIONS) opts.log(`  open-file limit is ${opts.fdLimit} and cannot be raised: measuring ${n} connections, not ${IDLE_CONNECTIONS}`);
  return n;
}

/** Source addresses to spread connections over when the ephemeral port range alone is too small. */
function sourceAddresses(n: number): string[] | undefined {
  const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const range = (hi ?? 60999) - (lo ?? 32768);
  if (range > n + 5000) return undefined; // plain connect() reuses ports across destinations
  const k = Math.ceil(n / Math.max(1000, range - 5000));
  return Array.from({ length: k }, (_, i) => `127.0.0.${i + 2}`);
}

/**
 * Opens `count` idle connections, 200 handshakes at a time (more only overflows the brokers' listen
 * backlogs), each subscribing to `subscribe(i)` when given; returns the seconds it took.
 */
export async function openIdle(ctx: Ctx, count: number, prefix: string, subscribe?: (i: number) => string): Promise<number> {
  const sources = sourceAddresses(count);
  const t0 = performance.now();
  let next = 0;
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < count) {
      const i = next++;
      const c = ctx.open(sources?.[i % sources.length]);
      try {
        await c.connect(`${prefix}-${process.pid}-${i}`, 300, 30_000);
        if (subscribe) await c.subscribe(subscribe(i), 0, 30_000);
      } catch (e) {
        failure ??= e as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: 200 }, worker));
  if (failure) throw new Error(`${ctx.conns.length} connections opened, then: ${failure.message}`);
  return (performance.now() - t0) / 1000;
}

const connections: Scenario = {
  name: 'connections',
  title: `memory of ${IDLE_CONNECTIONS} idle connections`,
  timeoutS: () => 180,
  timed: false,
  async run(ctx) {
    const { broker, opts } = ctx;
    const count = idleCount(opts);
    await sleep(1000); // let the freshly started broker settle
    const before = broker.rssBytes();
    const connectS = await openIdle(ctx, count, 'idle');
    opts.log(`  ${count} connected in ${connectS.toFixed(1)} s`);
    await sleep(2000); // allocations settle before reading RSS
    const after = broker.rssBytes();
    ctx.abort();
    const perConn = (after - before) / count;
    return {
      metrics: [
        { key: 'idle-rss', label: 'broker RSS, idle (MB)', value: before / 2 ** 20, better: 'lower', digits: 1 },
        { key: 'conn-memory', label: 'memory per idle connection (KB)', value: perConn / 1024, better: 'lower', digits: 2, ...(count < IDLE_CONNECTIONS ? { note: `${count} conns` } : {}) },
      ],
      extra: { connections: count, rssBeforeBytes: before, rssAfterBytes: after, bytesPerConnection: perConn, connectSeconds: connectS, sourceAddresses: sourceAddresses(count)?.length ?? 1 },
    };
  },
};

const fanin = (qos: 0 | 1, tls = false): Flow => ({ publishers: FANIN_PUBLISHERS, subscribers: 1, qos, topic: 'bench/fanin', e2eWindow: 100, ...(tls ? { tls } : {}) });
export const SCENARIOS: Scenario[] = [
  throughput('fanin-qos0', 'fan-in qos0', fanin(0), `fan-in ${FANIN_PUBLISHERS}->1 qos0 (msg/s)`),
  throughput('fanin-qos1', 'fan-in qos1', fanin(1), `fan-in ${FANIN_PUBLISHERS}->1 qos1 (msg/s)`),
  throughput('fanin-qos1-tls', 'fan-in qos1 over TLS', fanin(1, true), `fan-in ${FANIN_PUBLISHERS}->1 qos1 TLS (msg/s)`),
  throughput(
    'shared-qos1',
    'shared subscription qos1',
    { publishers: FANIN_PUBLISHERS, subscribers: SHARED_MEMBERS, qos: 1, topic: 'bench/shared', e2eWindow: 100, shareGroup: 'bench' },
    `shared ${FANIN_PUBLISHERS}->$share x${SHARED_MEMBERS} qos1 (deliveries/s)`,
  ),
  latencyAt20k(0),
  latencyAt20k(1),
  throughput(
    'fanout-qos0',
    'fan-out qos0',
    { publishers: 1, subscribers: FANOUT_SUBSCRIBERS, qos: 0, topic: 'bench/fanout', e2eWindow: 500 },
    `fan-out 1->${FANOUT_SUBSCRIBERS} qos0 (deliveries/s)`,
  ),
  connections,
  // Two gateways (tributary-kafka): publishers on A, the subscriber on B, so every message crosses
  // Kafka twice (messages topic, router, B's downlink). Single-port brokers run the same load on one port.
  latency({
    name: 'latency-qos1-5k',
    title: `latency qos1 @ ${GATEWAY_LATENCY_RATE} msg/s, gateway A -> B`,
    label: 'latency qos1 @5k A->B',
    qos: 1,
    rate: GATEWAY_LATENCY_RATE,
    pubGateway: () => 0,
    subGateway: () => 1,
  }),
  // Half the publishers on A publishing to bench/cross/0, subscribed to on B; the other half the other way.
  throughput(
    'cross-qos1',
    'qos1 across two gateways',
    {
      publishers: FANIN_PUBLISHERS,
      subscribers: CROSS_SUBSCRIBERS,
      qos: 1,
      topic: 'bench/cross',
      topics: CROSS_SUBSCRIBERS,
      // 5 publishers per subscriber x 200 = 1000: still within Tributary's session queue.
      e2eWindow: 200,
      pubGateway: (p) => p % 2,
      subGateway: (s) => (s + 1) % 2,
      trackLatency: true,
    },
    `cross ${FANIN_PUBLISHERS}->${CROSS_SUBSCRIBERS} qos1, A<->B (msg/s)`,
  ),
];
