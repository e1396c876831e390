/**
 * The closed-loop driver of the throughput and latency scenarios: publishers and subscribers on one or more
 * topics, each publisher held to a window of messages not yet delivered (or paced to a rate), and what arrived.
 */
import { performance } from 'node:perf_hooks';
import { Ctx, JSON_PAYLOAD, PAYLOAD_BYTES, jsonStamp, sleep, stampBatch, stampBatchJson } from './harness';
import { CpuUse, cpuDiag, cpuWindow } from './measure';
import { PublishTemplate, encodePuback } from './mqtt-wire';

const PUBACK_WINDOW = 64;

export interface Flow {
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
  /** Payloads are JSON_PAYLOAD text (`{"x":1,"s":"<stamp in hex>"}`), not the binary stamp: for brokers that decode them. */
  json?: boolean;
  /**
   * The filter every subscriber subscribes to instead of the publishers' topic(s), each getting every message:
   * what a rule republishes there.
   */
  subscribeTo?: string;
  /**
   * The messages end outside MQTT, at a rule's sink (subscribers: 0): called once with the function to call
   * whenever n of them reached it. A sink's count names no publisher: arrivals are credited to the publishers
   * with messages outstanding, in turn, and hold their windows as deliveries would. After the measurement the
   * flow drains as a shared one does (missingAfterDrain).
   */
  sink?(arrived: (n: number) => void): void;
}

export interface FlowResult extends CpuUse {
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

export async function runFlow(ctx: Ctx, f: Flow): Promise<FlowResult> {
  const { broker, opts } = ctx;
  const tag = `${broker.name}-${process.pid}-${Date.now()}`;
  const T = f.topics ?? 1;
  if ((f.subscribeTo === undefined && f.subscribers % T !== 0) || T > 10) throw new Error('subscribers must be a multiple of topics, and topics at most 10');
  if ((f.sink !== undefined) !== (f.subscribers === 0)) throw new Error('a flow has subscribers or a sink');
  const topicOf = (i: number): string => (T > 1 ? `${f.topic}/${i % T}` : f.topic);
  const subs = Array.from({ length: f.subscribers }, (_, s) => ctx.open(undefined, f.tls, f.subGateway?.(s) ?? 0));
  const pubs = Array.from({ length: f.publishers }, (_, p) => ctx.open(undefined, f.tls, f.pubGateway?.(p) ?? 0));
  const filter = (s: number): string => (f.shareGroup !== undefined ? `$share/${f.shareGroup}/${topicOf(s)}` : (f.subscribeTo ?? topicOf(s)));
  // SUBACK before any publish: on tributary-kafka it means the router routes to this subscriber from here on.
  await Promise.all(subs.map((c, i) => c.connect(`sub-${tag}-${i}`, 60).then(() => c.subscribe(filter(i), f.qos))));
  await Promise.all(pubs.map((c, i) => c.connect(`pub-${tag}-${i}`, 60)));

  const P = f.publishers;
  // Copies of each message the subscribers get in all: one per subscriber of its topic, or one per shared group (or sink).
  const copies = f.shareGroup !== undefined || f.sink !== undefined ? 1 : f.subscribeTo !== undefined ? f.subscribers : f.subscribers / T;
  const perSub = new Float64Array(f.subscribers);
  const json = f.json === true;
  const stamp = json ? stampBatchJson : stampBatch;
  const tpls = Array.from({ length: T }, (_, t) => new PublishTemplate(topicOf(t), f.qos, json ? JSON_PAYLOAD : PAYLOAD_BYTES));
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
    const buf = stamp(tpls[p % T]!, n, p, sent[p]!, nextId);
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
        if (json) {
          const s = jsonStamp(buf, off, plen);
          if (!s) return;
          buf = s;
          off = 0;
        } else if (plen < 16) return;
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

  let credit = 0; // the next publisher a sink's arrival is credited to
  f.sink?.((n) => {
    received += n;
    const now = performance.now();
    for (let k = 0; k < P && n > 0; k++, credit = (credit + 1) % P) {
      const d = Math.min(sent[credit]! - delivered[credit]!, n);
      if (d <= 0) continue;
      delivered[credit]! += d;
      n -= d;
      lastProgress[credit] = now;
      dirty.add(credit);
    }
    lost -= n; // arrived after the watchdog wrote them off: late, not lost
    kick();
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
    if (f.shareGroup !== undefined || f.sink !== undefined) {
      // Stop publishing and give the broker up to 3 s to deliver what is in flight, then compare raw
      // counts over the whole run: every message sent must have reached exactly one member (or the sink once).
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

function sum(a: Float64Array): number {
  return a.reduce((x, y) => x + y, 0);
}

export function flowDiag(r: FlowResult): Record<string, number> {
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
