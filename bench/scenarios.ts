/** The load scenarios. Publishers and subscribers all live in this (the load) process, never in a broker's. */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { RunningBroker, cpuOf } from './brokers';
import { Conn, PublishTemplate, encodePuback } from './mqtt-wire';

export interface RunOptions {
  warmupS: number;
  durationS: number;
  /** Open-file limit this process (and, started the same way, each broker) ended up with. */
  fdLimit: number;
  /** Open-loop scenarios: most seconds to wait for deliveries once the load stops (--drain; default per scenario). */
  drainMaxS?: number;
  log(msg: string): void;
}

export interface Metric {
  key: string;
  label: string;
  value: number;
  better: 'higher' | 'lower';
  /** Digits after the decimal point in the table. */
  digits: number;
  /** Shown next to the value, e.g. messages a broker dropped. */
  note?: string;
}

export interface ScenarioResult {
  metrics: Metric[];
  /** Diagnostics for the JSON file: CPU use, losses, achieved rates. */
  extra: Record<string, number>;
}

/** Every connection a scenario opens, so a timed-out scenario can be torn down from outside. */
export class Ctx {
  readonly conns: Conn[] = [];
  aborted = false;
  /** restarter: stops the broker and starts a fresh one of the same kind (bench.ts owns both). */
  constructor(
    public broker: RunningBroker,
    readonly opts: RunOptions,
    private readonly restarter?: () => Promise<RunningBroker>,
  ) {}

  /** Closes every connection and replaces the broker by a fresh one, for a second phase of a scenario. */
  async restart(): Promise<void> {
    if (!this.restarter) throw new Error('this harness cannot restart the broker');
    this.closeAll();
    this.broker = await this.restarter();
    if (this.aborted) throw new Error('scenario aborted');
  }

  /**
   * useTls: connect to the broker's TLS listener (the scenario must have `tls: true`). gateway: which of the
   * broker's MQTT ports (0 = A, 1 = B; a single-process broker has one, which every index maps to).
   */
  open(localAddress?: string, useTls = false, gateway = 0): Conn {
    if (this.aborted) throw new Error('scenario aborted');
    if (useTls && this.broker.tlsPort === undefined) throw new Error('broker was started without a TLS listener');
    const ports = this.broker.ports;
    const c = useTls ? new Conn(this.broker.tlsPort!, localAddress, true) : new Conn(ports[gateway % ports.length]!, localAddress);
    this.conns.push(c);
    return c;
  }

  closeAll(): void {
    for (const c of this.conns) c.close();
    this.conns.length = 0;
  }

  abort(): void {
    this.aborted = true;
    for (const c of this.conns) c.socket.destroy();
    this.conns.length = 0;
  }
}

export interface Scenario {
  name: string;
  title: string;
  /** Hard limit for one run, warm-up and measurement included. */
  timeoutS(opts: RunOptions): number;
  /** Has a warm-up and a measured duration (the connections scenario has neither). */
  timed: boolean;
  /** The broker needs a TLS listener (with the run's self-signed certificate). */
  tls?: boolean;
  /** Mosquitto runs with its own defaults, not the bench's settings (MOSQUITTO_DEFAULTS). */
  mosquittoDefaults?: boolean;
  /** A name that selects this scenario together with the rest of its family (`--scenarios openloop`). */
  family?: string;
  run(ctx: Ctx): Promise<ScenarioResult>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Payload: float64 send time (performance.now(), ms), u32 publisher index, u32 sequence; padded to 64 bytes. */
export const PAYLOAD_BYTES = 64;
const FANIN_PUBLISHERS = 10;
const FANOUT_SUBSCRIBERS = 100;
const SHARED_MEMBERS = 4;
const PUBACK_WINDOW = 64;
const LATENCY_RATE = 20_000;
/** The Kafka-mode targets: p50 at a fixed 5,000 msg/s, and sustained QoS 1 msg/s through two gateways. */
const GATEWAY_LATENCY_RATE = 5_000;
const CROSS_SUBSCRIBERS = 2;

interface Flow {
  publishers: number;
  subscribers: number;
  qos: 0 | 1;
  topic: string;
  /**
   * Most messages per publisher not yet at every subscriber. Keeps broker queues bounded (within Tributary's
   * 1000-message mqtt.max_mqueue_len) so the rate is sustainable, not a burst into buffers.
   */
  e2eWindow: number;
  /** Paced mode (latency): messages/s per publisher, no end-to-end window. */
  ratePerPublisher?: number;
  /** Every client connects over TLS. */
  tls?: boolean;
  /**
   * The subscribers form one shared subscription `$share/<group>/<topic>`: each message goes to exactly
   * one of them. After the measurement the flow drains and counts what never arrived (or arrived twice).
   */
  shareGroup?: string;
  /**
   * Several topics: publisher p publishes to `<topic>/<p % topics>`, subscriber s subscribes to
   * `<topic>/<s % topics>` (subscribers must be a multiple of topics). Default: everyone on `<topic>`.
   */
  topics?: number;
  /** Which of the broker's gateways (ports) publisher p / subscriber s connects to; default 0 (A). */
  pubGateway?(p: number): number;
  subGateway?(s: number): number;
  /** Throughput mode: also record end-to-end latency of the measured messages (paced mode always does). */
  trackLatency?: boolean;
}

interface FlowResult extends CpuUse {
  seconds: number;
  received: number;
  acked: number;
  sent: number;
  lost: number;
  latencyMs: number[];
  /** Messages per subscriber during the measurement. */
  perSubscriber: number[];
  /** Shared flows: messages sent in the whole run minus messages received, after a drain (<0: duplicates). */
  missingAfterDrain?: number;
}

/**
 * n PUBLISHes of publisher p in one buffer: packet ids (QoS 1) continue from nextId[p], the payload gets the send
 * time, p and sequence numbers from firstSeq.
 */
export function stampBatch(tpl: PublishTemplate, n: number, p: number, firstSeq: number, nextId: Uint16Array): Buffer {
  const buf = tpl.batch(n);
  const len = tpl.packet.length;
  const now = performance.now();
  for (let i = 0, off = 0; i < n; i++, off += len) {
    if (tpl.idOffset >= 0) buf.writeUInt16BE((nextId[p] = (nextId[p]! % 65535) + 1), off + tpl.idOffset);
    const po = off + tpl.payloadOffset;
    buf.writeDoubleLE(now, po);
    buf.writeUInt32LE(p, po + 8);
    buf.writeUInt32LE(firstSeq + i, po + 12);
  }
  return buf;
}

async function runFlow(ctx: Ctx, f: Flow): Promise<FlowResult> {
  const { broker, opts } = ctx;
  const tag = `${broker.name}-${process.pid}-${Date.now()}`;
  const T = f.topics ?? 1;
  if (f.subscribers % T !== 0 || T > 10) throw new Error('subscribers must be a multiple of topics, and topics at most 10');
  const topicOf = (i: number): string => (T > 1 ? `${f.topic}/${i % T}` : f.topic);
  const subs = Array.from({ length: f.subscribers }, (_, s) => ctx.open(undefined, f.tls, f.subGateway?.(s) ?? 0));
  const pubs = Array.from({ length: f.publishers }, (_, p) => ctx.open(undefined, f.tls, f.pubGateway?.(p) ?? 0));
  const filter = (s: number): string => (f.shareGroup !== undefined ? `$share/${f.shareGroup}/${topicOf(s)}` : topicOf(s));
  // SUBACK before any publish: on tributary-kafka it means the router routes to this subscriber from here on.
  await Promise.all(subs.map((c, i) => c.connect(`sub-${tag}-${i}`, 60).then(() => c.subscribe(filter(i), f.qos))));
  await Promise.all(pubs.map((c, i) => c.connect(`pub-${tag}-${i}`, 60)));

  const P = f.publishers;
  // Copies of each message the subscribers get in all: one per subscriber of its topic, or one per shared group.
  const copies = f.shareGroup !== undefined ? 1 : f.subscribers / T;
  const perSub = new Float64Array(f.subscribers);
  const tpls = Array.from({ length: T }, (_, t) => new PublishTemplate(topicOf(t), f.qos, PAYLOAD_BYTES));
  const sent = new Float64Array(P);
  const delivered = new Float64Array(P); // receipts over all subscribers
  const inflight = new Float64Array(P); // QoS 1 PUBLISHes without PUBACK
  const blocked = new Uint8Array(P); // socket buffer full, waiting for 'drain'
  const lastProgress = new Float64Array(P).fill(performance.now());
  const nextId = new Uint16Array(P);
  let received = 0;
  let acked = 0;
  let lost = 0;
  let running = true;
  let measuring = false;
  const latencyMs: number[] = [];
  const dirty = new Set<number>();
  let scheduled = false;

  const send = (p: number, n: number): void => {
    const buf = stampBatch(tpls[p % T]!, n, p, sent[p]!, nextId);
    sent[p]! += n;
    if (f.qos > 0) inflight[p]! += n;
    const pub = pubs[p]!;
    if (!pub.socket.write(buf)) {
      blocked[p] = 1;
      pub.socket.once('drain', () => {
        blocked[p] = 0;
        schedule(p);
      });
    }
  };

  const windowFree = (p: number): number => {
    let n = f.qos > 0 ? PUBACK_WINDOW - inflight[p]! : Infinity;
    if (f.ratePerPublisher === undefined) {
      n = Math.min(n, f.e2eWindow - (sent[p]! * copies - delivered[p]!) / copies);
    }
    return Math.floor(n);
  };

  // Refill only once a quarter of the window is free: one write of many messages instead of one
  // write per message, which would make the load process (and the kernel under it) the bottleneck.
  const minBatch = Math.max(1, Math.floor(Math.min(f.e2eWindow, f.qos > 0 ? PUBACK_WINDOW : Infinity) / 4));
  const pump = (p: number): void => {
    if (!running || blocked[p] || f.ratePerPublisher !== undefined) return;
    const n = Math.min(windowFree(p), 512);
    if (n >= minBatch) send(p, n);
  };
  const schedule = (p: number): void => {
    dirty.add(p);
    kick();
  };
  const kick = (): void => {
    if (scheduled || dirty.size === 0) return;
    scheduled = true;
    // Coalesce: one write per publisher after a burst of receipts, not one per message.
    setImmediate(() => {
      scheduled = false;
      for (const q of dirty) pump(q);
      dirty.clear();
    });
  };

  subs.forEach((c, si) => {
    let acks: number[] = [];
    c.handlers = {
      onPublish: (buf, off, plen, qos, id) => {
        received++;
        perSub[si]!++;
        if (qos > 0) acks.push(id);
        if (plen < 16) return;
        const p = buf.readUInt32LE(off + 8);
        if (p >= P) return;
        // Arrived after the watchdog wrote it off: late, not lost.
        if (++delivered[p]! > sent[p]! * copies) {
          delivered[p] = sent[p]! * copies;
          lost--;
        }
        dirty.add(p);
        if (measuring && (f.ratePerPublisher !== undefined || f.trackLatency)) latencyMs.push(performance.now() - buf.readDoubleLE(off));
      },
      onChunkEnd: () => {
        if (acks.length > 0) {
          c.socket.write(Buffer.concat(acks.map(encodePuback)));
          acks = [];
        }
        for (const p of dirty) lastProgress[p] = performance.now();
        kick();
      },
    };
  });
  pubs.forEach((c, p) => {
    c.handlers = {
      onPuback: () => {
        acked++;
        inflight[p]!--;
        dirty.add(p);
      },
      onChunkEnd: () => {
        lastProgress[p] = performance.now();
        kick();
      },
    };
  });

  // A broker that drops messages would freeze a window for good: after 500 ms without progress,
  // write the outstanding messages off as lost and carry on.
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (let p = 0; p < P; p++) {
      if (now - lastProgress[p]! < 500 || windowFree(p) >= minBatch) continue;
      const outstanding = sent[p]! * copies - delivered[p]!;
      lost += outstanding;
      delivered[p] = sent[p]! * copies;
      inflight[p] = 0;
      lastProgress[p] = now;
      schedule(p);
    }
  }, 100);

  // Paced mode: every ~1 ms each publisher sends what its schedule says is due.
  let pacer: NodeJS.Timeout | undefined;
  const t0 = performance.now();
  if (f.ratePerPublisher !== undefined) {
    const rate = f.ratePerPublisher / 1000;
    pacer = setInterval(() => {
      const elapsed = performance.now() - t0;
      for (let p = 0; p < P; p++) {
        const due = Math.min(Math.floor(elapsed * rate) - sent[p]!, windowFree(p), 1000);
        if (due > 0 && !blocked[p]) send(p, due);
      }
    }, 1);
  } else {
    for (let p = 0; p < P; p++) pump(p);
  }

  try {
    await sleep(opts.warmupS * 1000);
    measuring = true;
    const cpu = cpuWindow(broker);
    const start = { t: performance.now(), perSub: Array.from(perSub), rx: received, ack: acked, sent: sum(sent), lost };
    await sleep(opts.durationS * 1000);
    const seconds = (performance.now() - start.t) / 1000;
    const { brokerCpu, loadCpu, otherCpu, processCpu, kafkaCpu } = cpu();
    const perSubscriber = Array.from(perSub, (n, i) => n - start.perSub[i]!);
    let missingAfterDrain: number | undefined;
    if (f.shareGroup !== undefined) {
      // Stop publishing and give the broker up to 3 s to deliver what is in flight, then compare raw
      // counts over the whole run: every message sent must have reached exactly one member.
      running = false;
      const total = (): number => sum(sent) * copies - received;
      for (let t = 0; t < 60 && total() > 0; t++) await sleep(50);
      await sleep(100); // duplicates arriving late
      missingAfterDrain = total();
    }
    return {
      seconds,
      received: received - start.rx,
      acked: acked - start.ack,
      sent: sum(sent) - start.sent,
      lost: lost - start.lost,
      latencyMs,
      perSubscriber,
      ...(missingAfterDrain !== undefined ? { missingAfterDrain } : {}),
      brokerCpu,
      loadCpu,
      otherCpu,
      processCpu,
      ...(kafkaCpu !== undefined ? { kafkaCpu } : {}),
    };
  } finally {
    running = false;
    measuring = false;
    clearInterval(watchdog);
    if (pacer) clearInterval(pacer);
    ctx.closeAll();
  }
}

export interface CpuUse {
  brokerCpu: number;
  loadCpu: number;
  /** Cores used by anything but broker, load and Kafka: other builds or tests on the machine. */
  otherCpu: number;
  /** CPU cores per broker process (several for tributary-kafka), and of its Kafka broker. */
  processCpu: Record<string, number>;
  kafkaCpu?: number;
}

/** Starts measuring CPU use; the returned function gives the cores used on average since then. */
export function cpuWindow(broker: RunningBroker): () => CpuUse {
  const kafkaCpuNow = (): number => broker.kafka?.cpuSeconds() ?? NaN;
  const procCpu = (): number[] => broker.processes.map((x) => cpuOf(x.pid));
  const start = { t: performance.now(), bc: broker.cpuSeconds(), pc: procCpu(), kc: kafkaCpuNow(), lc: process.cpuUsage(), mc: machineBusySeconds() };
  return () => {
    const seconds = (performance.now() - start.t) / 1000;
    const lc = process.cpuUsage(start.lc);
    const brokerCpu = (broker.cpuSeconds() - start.bc) / seconds;
    const loadCpu = (lc.user + lc.system) / 1e6 / seconds;
    const pc = procCpu();
    const processCpu = Object.fromEntries(broker.processes.map((x, i) => [x.role, (pc[i]! - start.pc[i]!) / seconds]));
    const kafkaCpu = (kafkaCpuNow() - start.kc) / seconds;
    // CPU used by anything else (other builds, tests) competes with broker and load on 2 cores. The
    // Kafka broker under tributary-kafka is part of what is measured, not a disturbance.
    const otherCpu = Math.max(0, (machineBusySeconds() - start.mc) / seconds - brokerCpu - loadCpu - (Number.isFinite(kafkaCpu) ? kafkaCpu : 0));
    return { brokerCpu, loadCpu, otherCpu, processCpu, ...(Number.isFinite(kafkaCpu) ? { kafkaCpu } : {}) };
  };
}

/** User + system CPU seconds of all processes (all cores), from /proc/stat; irq time is nobody's. */
function machineBusySeconds(): number {
  const [user = 0, nice = 0, system = 0] = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.split(/\s+/).slice(1).map(Number);
  return (user + nice + system) / 100;
}

function sum(a: Float64Array): number {
  return a.reduce((x, y) => x + y, 0);
}

function diag(r: FlowResult): Record<string, number> {
  const members = r.perSubscriber.length > 1 && r.perSubscriber.length <= 10 ? r.perSubscriber : [];
  return {
    ...Object.fromEntries(members.map((n, i) => [`receivedPerSOfSubscriber${i}`, n / r.seconds])),
    ...(r.missingAfterDrain !== undefined ? { missingAfterDrain: r.missingAfterDrain } : {}),
    seconds: r.seconds,
    sentPerS: r.sent / r.seconds,
    receivedPerS: r.received / r.seconds,
    pubacksPerS: r.acked / r.seconds,
    lost: r.lost,
    ...cpuDiag(r),
  };
}

/** CPU use for the JSON: broker (and each of its processes, when several), Kafka, load, others. */
export function cpuDiag(r: CpuUse): Record<string, number> {
  return {
    brokerCpuCores: r.brokerCpu,
    ...(Object.keys(r.processCpu).length > 1 ? Object.fromEntries(Object.entries(r.processCpu).map(([role, c]) => [`cpuCores.${role}`, c])) : {}),
    ...(r.kafkaCpu !== undefined ? { kafkaCpuCores: r.kafkaCpu } : {}),
    loadCpuCores: r.loadCpu,
    otherCpuCores: r.otherCpu,
  };
}

/** Sorted latencies (ms) → the value at quantile q, in µs. */
export function quantiles(latencyMs: number[]): (q: number) => number {
  const s = Float64Array.from(latencyMs).sort();
  return (q) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]! * 1000;
}

function throughput(name: string, title: string, flow: Flow, label: string): Scenario {
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
      return { metrics: [{ key: name, label, value, better: 'higher', digits: 0, ...(note ? { note } : {}) }], extra: { ...diag(r), ...lat } };
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
      return { metrics: [{ ...row('p50', at(0.5)), ...note }, row('p99', at(0.99)), row('max', at(1))], extra: { ...diag(r), samples: r.latencyMs.length } };
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
function idleCount(opts: RunOptions): number {
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
    const sources = sourceAddresses(count);
    const t0 = performance.now();
    let next = 0;
    let failure: Error | undefined;
    // 200 handshakes at a time: more only overflows the brokers' listen backlogs.
    const worker = async (): Promise<void> => {
      while (!failure && next < count) {
        const i = next++;
        const c = ctx.open(sources?.[i % sources.length]);
        await c.connect(`idle-${process.pid}-${i}`, 300, 30_000).catch((e: Error) => (failure ??= e));
      }
    };
    await Promise.all(Array.from({ length: 200 }, worker));
    const connectS = (performance.now() - t0) / 1000;
    if (failure) throw new Error(`${ctx.conns.length} connections opened, then: ${failure.message}`);
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
      extra: { connections: count, rssBeforeBytes: before, rssAfterBytes: after, bytesPerConnection: perConn, connectSeconds: connectS, sourceAddresses: sources?.length ?? 1 },
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
