/**
 * Open-loop scenarios: publishers limited only by PUBACKs (QoS 1: a fixed number of PUBLISHes awaiting PUBACK)
 * or by socket backpressure (QoS 0: write while socket.write returns true, then wait for 'drain'), never by
 * deliveries. What a broker cannot deliver it must queue or drop; these rows count what it dropped.
 */
import { performance } from 'node:perf_hooks';
import { droppedCounters } from './brokers';
import { Ctx, Metric, PAYLOAD_BYTES, Scenario, ScenarioResult, sleep, stampBatch } from './harness';
import { CpuUse, cpuDiag, cpuWindow, quantiles } from './measure';
import { PublishTemplate, encodePuback } from './mqtt-wire';

export const OPENLOOP_FAMILY = 'openloop';
/** PUBLISHes each QoS 1 publisher keeps awaiting PUBACK. */
const PUBACK_WINDOW = 32;
/** After the load: done once nothing arrived (no delivery, no PUBACK) for this long. */
const QUIET_MS = 1500;
const DRAIN_MAX_S = 30;
/** The slow subscriber gets longer to catch up (at full speed once the load stops). */
const SLOW_DRAIN_MAX_S = 60;
/** A QoS 0 publisher writes about this many bytes per write. */
const QOS0_WRITE_BYTES = 16 * 1024;
/** The slow subscriber reads at this fraction of the healthy ones' rate without it (pausing and resuming its socket). */
const SLOW_FRACTION = 0.1;
const FANOUT_SUBSCRIBERS = 10;

/** healthy: reads (and PUBACKs) everything at once; stalled: stops reading after its SUBACK; slow: reads at Load.slowRate. */
type Role = 'healthy' | 'stalled' | 'slow';

interface Load {
  publishers: number;
  qos: 0 | 1;
  payloadBytes: number;
  subscribers: Role[];
  drainMaxS: number;
  /**
   * msg/s the slow subscriber reads during the load. A fixed rate, not a fraction of what the others get at
   * the time: a broker that holds the others back for the slow one would otherwise stop both for good.
   */
  slowRate?: number;
}

interface SubResult {
  role: Role;
  /** Messages over the whole run, and in the measured window (after the warm-up, until the load stops). */
  received: number;
  receivedInWindow: number;
  /** Messages whose sequence number was not above the last one from the same publisher (reordered or duplicate). */
  outOfOrder: number;
}

interface Phase extends CpuUse {
  /** Measured window (after the warm-up, until the load stops) and the whole run until the last delivery. */
  windowS: number;
  totalS: number;
  drainS: number;
  /** The drain ended at its bound with messages still arriving: "not delivered" may be late, not lost. */
  drainCutOff: boolean;
  /** QoS 1: PUBLISHes acknowledged; QoS 0: messages written to the socket. In all and in the window. */
  accepted: number;
  acceptedInWindow: number;
  /** Messages handed to socket.write (QoS 1: acknowledged or not). */
  sent: number;
  sentBytes: number;
  subs: SubResult[];
  /** End-to-end latency (ms) of the first healthy subscriber's deliveries in the window. */
  latencyMs: number[];
  rssBeforeBytes: number;
  peakRssGrowthBytes: number;
  /** Tributary's messages.dropped* counters, increase over the run. */
  brokerDropped?: Record<string, number>;
}

/** One load: connect, publish open loop for warm-up + duration, then read until nothing more arrives (bounded). */
async function runOpenLoop(ctx: Ctx, load: Load): Promise<Phase> {
  const { broker, opts } = ctx;
  const P = load.publishers;
  const topic = `bench/openloop`;
  const tag = `${broker.name}-${process.pid}-${Date.now()}`;
  const rssBeforeBytes = broker.rssBytes();
  let peakRss = rssBeforeBytes;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, broker.rssBytes())), 100);
  try {
    const droppedBefore = await droppedCounters(broker);
    // Publishers on gateway A, subscribers on B (tributary-kafka); one port for the other brokers.
    const subs = load.subscribers.map(() => ctx.open(undefined, false, 1));
    const pubs = Array.from({ length: P }, () => ctx.open(undefined, false, 0));
    await Promise.all(subs.map((c, i) => c.connect(`olsub-${tag}-${i}`, 60).then(() => c.subscribe(topic, load.qos))));
    await Promise.all(pubs.map((c, i) => c.connect(`olpub-${tag}-${i}`, 60)));
    subs.forEach((c, i) => load.subscribers[i] === 'stalled' && c.socket.pause());

    const state = load.subscribers.map((role) => ({ role, received: 0, atWindow: 0, outOfOrder: 0, next: new Float64Array(P) }));
    const active = state.filter((s) => s.role !== 'stalled');
    const healthy = state.filter((s) => s.role === 'healthy');
    const latencyMs: number[] = [];
    let running = true;
    let measuring = false;
    let lastActivity = performance.now();
    let lastDelivery = lastActivity;
    // The slow subscriber pauses its socket as soon as a read puts it ahead of slowRate since the load began,
    // and a 10 ms timer resumes it once it is behind again (or the load is over).
    let t0 = 0;
    const slowRate = load.slowRate ?? 0;
    const ahead = (st: { received: number }): boolean => running && st.received > (slowRate * (performance.now() - t0)) / 1000;

    subs.forEach((c, si) => {
      const st = state[si]!;
      const timed = st === healthy[0];
      let acks: number[] = [];
      c.handlers = {
        onPublish: (buf, off, plen, qos, id) => {
          st.received++;
          if (qos > 0) acks.push(id);
          if (plen < 16) return;
          const p = buf.readUInt32LE(off + 8);
          const seq = buf.readUInt32LE(off + 12);
          if (p < P) {
            if (seq < st.next[p]!) st.outOfOrder++;
            else st.next[p] = seq + 1;
          }
          if (timed && measuring) latencyMs.push(performance.now() - buf.readDoubleLE(off));
        },
        onChunkEnd: () => {
          if (acks.length > 0) {
            c.socket.write(Buffer.concat(acks.map(encodePuback)));
            acks = [];
          }
          lastActivity = lastDelivery = performance.now();
          if (st.role === 'slow' && ahead(st)) c.socket.pause();
        },
      };
    });

    const tpl = new PublishTemplate(topic, load.qos, load.payloadBytes);
    const sent = new Float64Array(P);
    const inflight = new Float64Array(P);
    const nextId = new Uint16Array(P);
    let accepted = 0;
    let sentBytes = 0;
    const send = (p: number, n: number): boolean => {
      const buf = stampBatch(tpl, n, p, sent[p]!, nextId);
      sent[p]! += n;
      if (load.qos > 0) inflight[p]! += n;
      sentBytes += buf.length;
      if (load.qos === 0) accepted += n; // written is all QoS 0 gets
      return pubs[p]!.socket.write(buf);
    };
    const qos0Batch = Math.max(1, Math.floor(QOS0_WRITE_BYTES / tpl.packet.length));
    // QoS 0: one write per turn of the event loop while the socket takes more (the subscribers read in
    // this process too), else wait for 'drain'.
    const flood = (p: number): void => {
      if (!running || pubs[p]!.closed) return;
      if (send(p, qos0Batch)) setImmediate(flood, p);
      else pubs[p]!.socket.once('drain', () => flood(p));
    };
    pubs.forEach((c, p) => {
      c.handlers = {
        onPuback: () => {
          accepted++;
          inflight[p]!--;
        },
        onChunkEnd: () => {
          lastActivity = performance.now();
          const free = PUBACK_WINDOW - inflight[p]!;
          if (running && free > 0) send(p, free);
        },
      };
    });

    const slow = subs.filter((_, i) => load.subscribers[i] === 'slow');
    const throttle = setInterval(() => slow.forEach((c) => !ahead(state[subs.indexOf(c)]!) && c.socket.resume()), 10);
    t0 = performance.now();

    try {
      for (let p = 0; p < P; p++) (load.qos === 0 ? flood(p) : send(p, PUBACK_WINDOW));
      await sleep(opts.warmupS * 1000);
      const windowStart = { t: performance.now(), accepted };
      for (const s of state) s.atWindow = s.received;
      const cpu = cpuWindow(broker);
      measuring = true;
      await sleep(opts.durationS * 1000);
      running = false;
      measuring = false;
      const tStop = performance.now();
      const windowS = (tStop - windowStart.t) / 1000;
      const inWindow = state.map((s) => s.received - s.atWindow);
      const acceptedInWindow = accepted - windowStart.accepted;
      const cpuUse = cpu();
      for (const c of slow) c.socket.resume();

      // Drain: until every reading subscriber has all that was accepted (and every PUBACK is in), or nothing
      // arrived for QUIET_MS, or drainMaxS passed. Lost messages end it by the quiet period.
      const drainMaxS = opts.drainMaxS ?? load.drainMaxS;
      const complete = (): boolean => active.every((s) => s.received >= accepted) && (load.qos === 0 || accepted >= sum(sent));
      // Quiet counts from the end of the load at the earliest: a broker that stalled during the load gets QUIET_MS too.
      const quiet = (): boolean => performance.now() - Math.max(lastActivity, tStop) >= QUIET_MS;
      while (!complete() && !quiet() && performance.now() - tStop < drainMaxS * 1000) await sleep(50);
      const drainS = (performance.now() - tStop) / 1000;
      const drainCutOff = !complete() && !quiet();
      if (drainCutOff) opts.log(`  still receiving when the drain ended after ${drainMaxS} s (--drain)`);
      const brokerDropped = await droppedCounters(broker);
      return {
        windowS,
        totalS: (Math.max(lastDelivery, tStop) - t0) / 1000,
        drainS,
        drainCutOff,
        accepted,
        acceptedInWindow,
        sent: sum(sent),
        sentBytes,
        subs: state.map((s, i) => ({ role: s.role, received: s.received, receivedInWindow: inWindow[i]!, outOfOrder: s.outOfOrder })),
        latencyMs,
        rssBeforeBytes,
        peakRssGrowthBytes: peakRss - rssBeforeBytes,
        ...cpuUse,
        ...(brokerDropped ? { brokerDropped: Object.fromEntries(Object.entries(brokerDropped).map(([k, v]) => [k, v - (droppedBefore?.[k] ?? 0)])) } : {}),
      };
    } finally {
      running = false;
      clearInterval(throttle);
    }
  } finally {
    clearInterval(rssTimer);
    ctx.closeAll();
  }
}

function sum(a: Float64Array): number {
  return a.reduce((x, y) => x + y, 0);
}

/** Messages accepted but not delivered to a subscriber that reads everything. */
const droppedOf = (r: Phase, s: SubResult): number => Math.max(0, r.accepted - s.received);

/**
 * "broker counts 12 dropped (queue_full 12)" from Tributary's counters, or nothing. Drops for want of a
 * subscriber are not the bench's messages (its topic always has one) but $SYS ones: left out here, kept in the JSON.
 */
function brokerDropNote(r: Phase): string | undefined {
  const d = r.brokerDropped;
  if (!d) return undefined;
  const total = (d['messages.dropped'] ?? 0) - (d['messages.dropped.no_subscribers'] ?? 0);
  const reasons = Object.entries(d)
    .filter(([k, v]) => k !== 'messages.dropped' && k !== 'messages.dropped.no_subscribers' && v > 0)
    .map(([k, v]) => `${k.replace('messages.dropped.', '')} ${v}`);
  return `broker counts ${total} dropped${reasons.length > 0 ? ` (${reasons.join(', ')})` : ''}`;
}

/** What a "not delivered" count means: drops the broker counted, and whether the drain was cut short. withCount: name the count too. */
function undeliveredNote(r: Phase, undelivered: number, withCount = true): string | undefined {
  const notes = [
    withCount && undelivered > 0 ? `${undelivered} not delivered` : undefined,
    brokerDropNote(r),
    undelivered > 0 && r.drainCutOff ? `still arriving after ${r.drainS.toFixed(0)} s drain` : undefined,
  ].filter(Boolean);
  return notes.join(', ') || undefined;
}

/** For the JSON: one phase's numbers, keys prefixed (e.g. `alone.`, `withStalled.`). */
function phaseDiag(r: Phase, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {
    windowS: r.windowS,
    totalS: r.totalS,
    drainS: r.drainS,
    drainCutOff: r.drainCutOff ? 1 : 0,
    accepted: r.accepted,
    acceptedPerS: r.acceptedInWindow / r.windowS,
    sent: r.sent,
    sentBytesPerS: r.sentBytes / r.totalS,
    rssBeforeBytes: r.rssBeforeBytes,
    peakRssGrowthBytes: r.peakRssGrowthBytes,
    ...cpuDiag(r),
  };
  r.subs.forEach((s, i) => {
    out[`subscriber${i}.${s.role}.received`] = s.received;
    out[`subscriber${i}.${s.role}.receivedPerS`] = s.receivedInWindow / r.windowS;
    out[`subscriber${i}.${s.role}.outOfOrder`] = s.outOfOrder;
  });
  for (const [k, v] of Object.entries(r.brokerDropped ?? {})) out[`broker.${k}`] = v;
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [`${prefix}${k}`, v]));
}

/** The JSON's otherCpuCores (what bench.ts retries on) is the noisier phase's. */
function noisiest(...phases: Phase[]): Record<string, number> {
  return { otherCpuCores: Math.max(...phases.map((r) => r.otherCpu)) };
}

const timeout = (phases: number, drainMaxS: number) => (o: { warmupS: number; durationS: number; drainMaxS?: number }): number =>
  phases * (o.warmupS + o.durationS + (o.drainMaxS ?? drainMaxS) + 60);

function openLoop(name: string, label: string, publishers: number, qos: 0 | 1, payloadBytes: number): Scenario {
  return {
    name,
    title: label,
    family: OPENLOOP_FAMILY,
    mosquittoDefaults: true,
    timeoutS: timeout(1, DRAIN_MAX_S),
    timed: true,
    async run(ctx): Promise<ScenarioResult> {
      const r = await runOpenLoop(ctx, { publishers, qos, payloadBytes, subscribers: ['healthy'], drainMaxS: DRAIN_MAX_S });
      const sub = r.subs[0]!;
      if (sub.received === 0) throw new Error('no messages received');
      const dropped = droppedOf(r, sub);
      const row = (k: string, l: string, value: number, better: 'higher' | 'lower', note?: string): Metric => ({
        key: `${name}-${k}`,
        label: `${label} ${l}`,
        value,
        better,
        digits: 0,
        ...(note ? { note } : {}),
      });
      const pct = r.accepted > 0 ? (100 * dropped) / r.accepted : 0;
      const lossNote = dropped > 0 ? `${pct < 0.1 ? '<0.1' : pct.toFixed(1)}% dropped` : undefined;
      const at = r.latencyMs.length > 0 ? quantiles(r.latencyMs) : undefined;
      const brokerNote = undeliveredNote(r, dropped, false);
      return {
        metrics: [
          row('delivered', 'delivered/s, load', sub.receivedInWindow / r.windowS, 'higher', lossNote),
          row('delivered-total', 'delivered/s, whole run', sub.received / r.totalS, 'higher'),
          row('accepted', qos > 0 ? 'accepted/s (PUBACKs)' : 'written/s', r.acceptedInWindow / r.windowS, 'higher'),
          row('dropped', qos > 0 ? 'dropped (PUBACKed - delivered)' : 'dropped (written - delivered)', dropped, 'lower', brokerNote),
          row('p50', 'latency p50 (us)', at ? at(0.5) : NaN, 'lower'),
          row('p99', 'latency p99 (us)', at ? at(0.99) : NaN, 'lower'),
        ],
        extra: { ...phaseDiag(r), dropped, ...(sub.outOfOrder > 0 ? { outOfOrder: sub.outOfOrder } : {}), ...(at ? { latencyP50Us: at(0.5), latencyP99Us: at(0.99), latencyMaxUs: at(1) } : {}) },
      };
    },
  };
}

const ratioRow = (key: string, label: string, value: number): Metric => ({ key, label, value, better: 'higher', digits: 2 });

/** A msg/s row of one phase, noting what its subscribers never got. */
function rateRow(key: string, label: string, r: Phase, value: number, undelivered: number): Metric {
  const note = [value === 0 ? 'nothing delivered' : undefined, undeliveredNote(r, undelivered)].filter(Boolean).join(', ');
  return { key, label, value, better: 'higher', digits: 0, ...(note ? { note } : {}) };
}

/** A 1 KB QoS 0 flood to one healthy subscriber, alone and beside a subscriber that stopped reading. */
const stalledSubscriber: Scenario = {
  name: 'stalled-subscriber-1k',
  title: 'open loop 1 KB qos0 flood, with and without a stalled subscriber',
  family: OPENLOOP_FAMILY,
  mosquittoDefaults: true,
  timeoutS: timeout(2, DRAIN_MAX_S),
  timed: true,
  async run(ctx) {
    const load = (subscribers: Role[]): Load => ({ publishers: 1, qos: 0, payloadBytes: 1024, subscribers, drainMaxS: DRAIN_MAX_S });
    const alone = await runOpenLoop(ctx, load(['healthy']));
    await ctx.restart();
    const beside = await runOpenLoop(ctx, load(['healthy', 'stalled']));
    const rate = (r: Phase): number => r.subs[0]!.receivedInWindow / r.windowS;
    // Nothing beside the stalled one is a result (a broker that lets one reader block the topic), nothing alone is not.
    if (rate(alone) === 0) throw new Error('no messages received');
    const mb = (key: string, label: string, r: Phase): Metric => ({ key, label, value: r.peakRssGrowthBytes / 2 ** 20, better: 'lower', digits: 1 });
    const row = (key: string, label: string, r: Phase): Metric => rateRow(key, label, r, rate(r), droppedOf(r, r.subs[0]!));
    return {
      metrics: [
        row('stalled-alone', 'stalled sub 1k qos0: healthy msg/s, alone', alone),
        row('stalled-beside', 'stalled sub 1k qos0: healthy msg/s, beside stalled', beside),
        ratioRow('stalled-ratio', 'stalled sub 1k qos0: healthy rate beside / alone', rate(beside) / rate(alone)),
        mb('stalled-rss-alone', 'stalled sub 1k qos0: broker peak RSS growth, alone (MB)', alone),
        mb('stalled-rss-beside', 'stalled sub 1k qos0: broker peak RSS growth, beside stalled (MB)', beside),
      ],
      extra: { ...phaseDiag(alone, 'alone.'), ...phaseDiag(beside, 'withStalled.'), ...noisiest(alone, beside) },
    };
  },
};

/** 1 QoS 1 publisher (open loop) to nine healthy subscribers, alone and with a tenth reading at a tenth of their rate. */
const slowSubscriber: Scenario = {
  name: 'slow-subscriber-fanout',
  title: `open loop qos1 fan-out to ${FANOUT_SUBSCRIBERS - 1}, with and without a slow ${FANOUT_SUBSCRIBERS}th subscriber`,
  family: OPENLOOP_FAMILY,
  mosquittoDefaults: true,
  timeoutS: timeout(2, SLOW_DRAIN_MAX_S),
  timed: true,
  async run(ctx) {
    const nine: Role[] = Array.from({ length: FANOUT_SUBSCRIBERS - 1 }, () => 'healthy');
    const load = (subscribers: Role[], slowRate?: number): Load => ({
      publishers: 1,
      qos: 1,
      payloadBytes: PAYLOAD_BYTES,
      subscribers,
      drainMaxS: SLOW_DRAIN_MAX_S,
      ...(slowRate !== undefined ? { slowRate } : {}),
    });
    // Messages per second each of the nine got, on average.
    const rate = (r: Phase): number => r.subs.filter((s) => s.role === 'healthy').reduce((a, s) => a + s.receivedInWindow, 0) / (FANOUT_SUBSCRIBERS - 1) / r.windowS;
    const without = await runOpenLoop(ctx, load(nine));
    if (rate(without) === 0) throw new Error('no messages received');
    await ctx.restart();
    // A tenth of what the nine got without it.
    const slowRate = rate(without) * SLOW_FRACTION;
    const withSlow = await runOpenLoop(ctx, load([...nine, 'slow'], slowRate));
    const slow = withSlow.subs.find((s) => s.role === 'slow')!;
    const order = slow.outOfOrder === 0 ? 'in order' : `${slow.outOfOrder} out of order`;
    const row = (key: string, label: string, r: Phase): Metric =>
      rateRow(key, label, r, rate(r), r.subs.filter((s) => s.role === 'healthy').reduce((a, s) => a + droppedOf(r, s), 0));
    return {
      metrics: [
        row('slow-without', `slow sub fan-out qos1: msg/s to each of ${FANOUT_SUBSCRIBERS - 1}, no slow one`, without),
        row('slow-with', `slow sub fan-out qos1: msg/s to each of ${FANOUT_SUBSCRIBERS - 1}, slow one too`, withSlow),
        ratioRow('slow-ratio', 'slow sub fan-out qos1: rate with / without slow one', rate(withSlow) / rate(without)),
        {
          key: 'slow-complete',
          label: 'slow sub fan-out qos1: slow one got of PUBACKed (%)',
          value: withSlow.accepted > 0 ? (100 * slow.received) / withSlow.accepted : NaN,
          better: 'higher',
          digits: 1,
          note: `${slow.received}/${withSlow.accepted}, ${order}, drained in ${withSlow.drainS.toFixed(1)} s`,
        },
      ],
      extra: {
        ...phaseDiag(without, 'withoutSlow.'),
        ...phaseDiag(withSlow, 'withSlow.'),
        ...noisiest(without, withSlow),
        slowRatePerS: slowRate,
        slowReceivedPerS: slow.receivedInWindow / withSlow.windowS,
        slowReceived: slow.received,
        slowExpected: withSlow.accepted,
        slowInOrder: slow.outOfOrder === 0 ? 1 : 0,
      },
    };
  },
};

export const OPENLOOP_SCENARIOS: Scenario[] = [
  openLoop('openloop-qos1-10to1', 'openloop 10->1 qos1', 10, 1, PAYLOAD_BYTES),
  openLoop('openloop-qos0-10to1', 'openloop 10->1 qos0', 10, 0, PAYLOAD_BYTES),
  openLoop('openloop-qos1-1to1-1k', 'openloop 1->1 qos1 1k', 1, 1, 1024),
  stalledSubscriber,
  slowSubscriber,
];
