import { Partitioners, type CompressionTypes, type ICustomPartitioner, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import type { ProducerRecord, RecordPosition } from '../backbone';
import { BackboneError, TributaryError } from '@tributary/common';

/** One append() call waiting to be sent. */
interface PendingAppend {
  topic: string;
  messages: Message[];
  bytes: number;
  /** When append() was called (ms): what the stall timeout counts from. */
  at: number;
  resolve: (positions: RecordPosition[]) => void;
  reject: (err: Error) => void;
}

export interface BatcherSettings {
  /** 0: send at the end of the current event-loop turn; >0: wait this long to gather more. */
  lingerMs: number;
  /** A produce request is closed once it holds this many bytes (one append call is never split). */
  maxBatchBytes: number;
  /** How long the broker may wait for all in-sync replicas (acks=-1) before failing the request. */
  ackTimeoutMs: number;
  compression: CompressionTypes;
  /** An append not acknowledged this long fails with BACKBONE_STALLED, and so does every append until Kafka answers again. */
  stallTimeoutMs: number;
  /** A stall episode began (once per episode) and ended (`ms`: how long appends waited or failed). */
  onStall?: (event: 'stalled' | 'recovered', ms: number) => void;
}

/** Where a message was partitioned: a property of the message object (a WeakMap per message cost the GC its ephemeron table). */
const PINNED = Symbol('tributary.partition');

/** The partition pinned to each message sent (see pinningPartitioner). */
export class PartitionPins {
  get(m: Message): number | undefined {
    return (m as { [PINNED]?: number })[PINNED];
  }

  set(m: Message, partition: number): void {
    (m as { [PINNED]?: number })[PINNED] = partition;
  }
}

/**
 * Remembers the partition chosen for each message, so offsets can be matched to records, and
 * so a retried request keeps every message where it first went (round-robin for null keys
 * would otherwise move them). Keyed records use kafkajs's DefaultPartitioner: murmur2 of the
 * key bytes modulo the partition count, the same partition the Java client picks (a topic of
 * one partition skips the hash).
 */
export function pinningPartitioner(pins: PartitionPins): ICustomPartitioner {
  return () => {
    const inner = Partitioners.DefaultPartitioner();
    return (args) => {
      const known = pins.get(args.message);
      if (known !== undefined) return known;
      const only = args.partitionMetadata.length === 1 ? args.partitionMetadata[0]!.partitionId : undefined;
      const partition = only ?? inner(args);
      pins.set(args.message, partition);
      return partition;
    };
  };
}

const RECORD_OVERHEAD = 24;

function toMessage(r: ProducerRecord, now: number): { message: Message; bytes: number } {
  let bytes = RECORD_OVERHEAD + (r.value?.length ?? 0) + (r.key === null ? 0 : Buffer.byteLength(r.key));
  if (r.headers !== undefined) {
    for (const k in r.headers) bytes += Buffer.byteLength(k) + Buffer.byteLength(r.headers[k] ?? '') + 4;
  }
  const message: Message = { key: r.key, value: r.value, timestamp: String(r.timestamp ?? now) };
  if (r.headers !== undefined) message.headers = r.headers;
  return { message, bytes };
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new TributaryError('INTERNAL_ERROR', String(err), { cause: err }));

/**
 * Gathers append() calls and sends them with one `sendBatch` per event-loop turn (or linger).
 * One request is in flight at a time: what arrives meanwhile forms the next request, so batches
 * grow under load, and a retried request can never be overtaken by a later one (per-key order
 * holds even across retries, on top of the idempotent producer's sequence numbers).
 */
export class AppendBatcher {
  private queue: PendingAppend[] = [];
  private scheduled = false;
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  /** The request in flight (its calls), so abort() can fail them. */
  private inFlight: PendingAppend[] = [];
  /** Since when appends fail at once because Kafka stalled (0: not stalled). */
  private stalledAt = 0;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly producer: Producer,
    private readonly partitionOf: PartitionPins,
    private readonly settings: BatcherSettings,
  ) {}

  add(topic: string, records: readonly ProducerRecord[]): Promise<RecordPosition[]> {
    const now = Date.now();
    const messages: Message[] = [];
    let bytes = 0;
    for (const r of records) {
      const m = toMessage(r, now);
      messages.push(m.message);
      bytes += m.bytes;
    }
    return new Promise((resolve, reject) => {
      // Kafka stalled past the timeout: fail at once (nothing queues up) until the request in
      // flight, which keeps being retried, comes back.
      if (this.stalledAt !== 0) return reject(this.stallError());
      this.queue.push({ topic, messages, bytes, at: now, resolve, reject });
      this.schedule();
      this.watchStall();
    });
  }

  /** True while appends fail because Kafka stalled past the timeout. */
  get stalled(): boolean {
    return this.stalledAt !== 0;
  }

  private stallError(): BackboneError {
    return new BackboneError('BACKBONE_STALLED', `Kafka acknowledged no append for ${this.settings.stallTimeoutMs / 1000} s (backbone.kafka.stall_timeout)`);
  }

  /** One timer while anything waits: when the oldest append waited stallTimeoutMs, the episode begins. */
  private watchStall(): void {
    if (this.stallTimer !== undefined || this.stalledAt !== 0) return;
    const first = this.inFlight[0]?.at ?? this.queue[0]?.at;
    if (first === undefined) return;
    const due = Math.max(0, first + this.settings.stallTimeoutMs - Date.now());
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      this.checkStall();
    }, due);
    this.stallTimer.unref();
  }

  private checkStall(): void {
    const first = this.inFlight[0]?.at ?? this.queue[0]?.at;
    if (first === undefined) return;
    const now = Date.now();
    if (now - first < this.settings.stallTimeoutMs) return this.watchStall();
    // Everything waiting fails; the request in flight stays in kafkajs (retried, idempotent) and
    // ends the episode when it returns. Its records may still be written: at-least-once.
    this.stalledAt = first;
    const err = this.stallError();
    for (const c of [...this.inFlight, ...this.queue.splice(0)]) c.reject(err);
    this.inFlight = [];
    this.settings.onStall?.('stalled', now - first);
  }

  private stallEnded(): void {
    if (this.stalledAt === 0) return;
    const ms = Date.now() - this.stalledAt;
    this.stalledAt = 0;
    this.settings.onStall?.('recovered', ms);
  }

  /** Resolves when everything added so far has been sent (or failed). */
  flushed(): Promise<void> {
    if (!this.draining && !this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Fails everything queued or in flight (stop() with the cluster unreachable). */
  abort(err: Error): void {
    for (const c of [...this.inFlight, ...this.queue.splice(0)]) c.reject(err);
    this.inFlight = [];
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  private schedule(): void {
    // While a request is in flight, the drain loop picks the queue up when it returns.
    if (this.scheduled || this.draining) return;
    this.scheduled = true;
    const run = (): void => {
      this.scheduled = false;
      void this.drain();
    };
    if (this.settings.lingerMs > 0) setTimeout(run, this.settings.lingerMs);
    else setImmediate(run);
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) await this.send(this.take());
    } finally {
      // No await between the empty-queue check and this: an add() now schedules a new drain.
      this.draining = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** The next request: whole append calls, in order, up to maxBatchBytes (at least one call). */
  private take(): PendingAppend[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const next = this.queue[n]!;
      if (n > 0 && bytes + next.bytes > this.settings.maxBatchBytes) break;
      bytes += next.bytes;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async send(calls: PendingAppend[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const c of calls) {
      let list = byTopic.get(c.topic);
      if (list === undefined) byTopic.set(c.topic, (list = []));
      for (const m of c.messages) list.push(m);
    }
    let response: RecordMetadata[];
    this.inFlight = calls;
    this.watchStall();
    try {
      response = await this.producer.sendBatch({
        acks: -1,
        timeout: this.settings.ackTimeoutMs,
        compression: this.settings.compression,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    } catch (err) {
      for (const c of calls) c.reject(asError(err));
      return;
    } finally {
      this.inFlight = [];
      // The stall clock goes on with what is queued (a timer set for this request re-arms).
      this.stallEnded();
    }
    // Within one request a partition gets one record batch: its records are baseOffset + i, in order.
    const next = new Map<string, number>();
    for (const r of response) next.set(`${r.partition}:${r.topicName}`, Number(r.baseOffset));
    for (const c of calls) {
      try {
        c.resolve(
          c.messages.map((m) => {
            const partition = this.partitionOf.get(m);
            const key = `${partition ?? -1}:${c.topic}`;
            const offset = next.get(key);
            if (partition === undefined || offset === undefined) throw new TributaryError('INTERNAL_ERROR', `backbone: no offset for a record sent to ${c.topic}`);
            next.set(key, offset + 1);
            return { partition, offset };
          }),
        );
      } catch (err) {
        c.reject(asError(err));
      }
    }
  }
}
