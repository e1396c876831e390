import type { Backbone, ConsumedRecord, Consumer } from '@tributary/backbone';
import { isRetriable, type Logger } from '@tributary/common';
import type { SinkMetrics } from './metrics';
import type { Sink } from './sinks';
import { stringifiedBuffer, type Value, type ValueMap } from '@tributary/rulesql';

/** What a sink worker needs of its action's resource_opts. */
export interface BufferOptions {
  /** Requests per send (EMQX's batch_size; default 1). */
  batchSize: number;
  /** Batches sent and not yet answered, at most (EMQX's inflight_window); 1 = strictly in order. */
  inflightWindow: number;
  /** Requests older than this (ms) are dropped as `dropped.expired`; 0 = never (our default; EMQX's is 45 s). */
  requestTtlMs: number;
  /** At most this many requests wait in the buffer; past it the oldest are dropped as `dropped.queue_full`. */
  maxBufferMessages: number;
  /** While the sink is down, the longest wait between two tries (EMQX's health_check_interval; at most 5 s). */
  maxRetryDelayMs: number;
  /** The buffer topic's retention in bytes (EMQX's max_buffer_bytes); the backbone deletes older segments past it. */
  maxBufferBytes: number;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** The backbone topic holding a sink's requests until it delivered them: `sink.<type>.<name>`. */
export function bufferTopic(sinkId: string): string {
  return `sink.${sinkId.replace(':', '.')}`;
}

/** A selected row as buffer-record bytes: JSON, with Buffers tagged so bytes come back as bytes. */
export function encodeRequest(data: ValueMap): Buffer {
  return Buffer.from(JSON.stringify(data, (_k, v: unknown) => {
    const bytes = stringifiedBuffer(v);
    return bytes ? { $bytes: bytes.toString('base64') } : v;
  }));
}

export function decodeRequest(bytes: Buffer): ValueMap {
  return JSON.parse(bytes.toString('utf8'), (_k, v: unknown): Value => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === '$bytes' && typeof (v as { $bytes: unknown }).$bytes === 'string') return Buffer.from((v as { $bytes: string }).$bytes, 'base64');
    }
    return v as Value;
  }) as ValueMap;
}

/** A sink found unavailable: one batch (the prober) retries with back-off, the others wait for it. */
interface Outage {
  prober: readonly ValueMap[];
  delay: number;
  over: Promise<void>;
  end(): void;
}

/**
 * The durable buffer in front of one sink: a rule's request is appended to the sink's backbone
 * topic (that append is what the rule waits for), and this worker delivers the topic through a
 * consumer group of its own, committing only what the sink accepted. Up to `inflightWindow`
 * batches are in flight at once (EMQX's inflight_window; with 1, requests go out strictly in
 * order, with more they may be answered out of order, as in EMQX). A sink that is down loses
 * nothing: its requests wait on disk (or in Kafka), survive a restart of the process, and go out
 * once it is back. While it is down one batch probes it, retried with a back-off of 100 ms
 * doubling to 5 s (one warning per outage), and the other in-flight batches wait for that probe
 * instead of hammering the remote. Only past `maxBufferMessages` (the oldest first) or
 * `requestTtlMs` are requests dropped, counted and logged once per episode.
 */
export class SinkBuffer {
  private consumer: Consumer | undefined;
  private stopped = false;
  /** The next offset of the buffer topic as this process last appended (for the queue bound). */
  private appendedEnd = -1;
  private consumedEnd = -1;
  private outage: Outage | undefined;
  private dropping = false;
  private wake: (() => void) | undefined;
  readonly topic: string;

  constructor(
    private readonly backbone: Backbone,
    readonly sink: Sink,
    private readonly options: BufferOptions,
    readonly metrics: SinkMetrics,
    private readonly log: Logger,
  ) {
    this.topic = bufferTopic(sink.id);
  }

  async start(): Promise<void> {
    await this.backbone.ensureTopics([{ name: this.topic, cleanup: 'delete', retentionBytes: this.options.maxBufferBytes }]);
    this.consumer = await this.backbone.consume({ topic: this.topic, group: this.topic, from: 'earliest', maxBatch: Math.max(100, 2 * this.options.batchSize * Math.min(this.options.inflightWindow, 100)), eachBatch: (records) => this.deliver(records) });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.outage?.end();
    await this.consumer?.stop();
  }

  /** The remote answered a health check: a batch waiting out its back-off tries again now. */
  retryNow(): void {
    if (this.outage) this.wake?.();
  }

  /** Buffers requests durably; resolves once they are on the backbone (the rule's action then succeeded). */
  async enqueue(rows: readonly ValueMap[]): Promise<void> {
    if (rows.length === 0) return;
    const now = Date.now();
    const positions = await this.backbone.append(
      this.topic,
      rows.map((r) => ({ key: null, value: encodeRequest(r), timestamp: now })),
    );
    const last = positions[positions.length - 1];
    if (last && last.offset + 1 > this.appendedEnd) this.appendedEnd = last.offset + 1;
    this.metrics.matched += rows.length;
    this.metrics.received += rows.length;
    this.refreshQueuing();
  }

  private refreshQueuing(): void {
    this.metrics.queuing = this.appendedEnd >= 0 && this.consumedEnd >= 0 ? Math.max(0, this.appendedEnd - this.consumedEnd) : this.metrics.queuing;
  }

  /** One consumed batch: cut into sink batches, at most inflightWindow of them in flight; resolves when all are answered. */
  private async deliver(records: ConsumedRecord[]): Promise<void> {
    const { batchSize, requestTtlMs, maxBufferMessages, inflightWindow } = this.options;
    const running = new Set<Promise<void>>();
    let failure: unknown;
    let i = 0;
    while (i < records.length && failure === undefined) {
      // The queue bound: what lies more than maxBufferMessages behind the newest request is dropped, oldest first.
      const behind = this.appendedEnd - records[i]!.offset;
      if (this.appendedEnd >= 0 && behind > maxBufferMessages) {
        const skip = Math.min(records.length - i, behind - maxBufferMessages);
        this.metrics.droppedQueueFull += skip;
        if (!this.dropping) this.log.warn({ sink: this.sink.id, dropped: skip, max_buffer_messages: maxBufferMessages }, 'sink buffer full: dropping its oldest requests');
        this.dropping = true;
        i += skip;
        this.advance(records[i - 1]!);
        continue;
      }
      this.dropping = false;
      const batch: ValueMap[] = [];
      const end = Math.min(records.length, i + batchSize);
      const now = Date.now();
      for (let j = i; j < end; j++) {
        const r = records[j]!;
        if (requestTtlMs > 0 && now - r.timestamp > requestTtlMs) {
          this.metrics.droppedExpired++;
          continue;
        }
        if (r.value === null) continue;
        try {
          batch.push(decodeRequest(r.value));
        } catch {
          this.metrics.droppedOther++;
        }
      }
      const last = records[end - 1]!;
      i = end;
      if (batch.length === 0) {
        this.advance(last);
        continue;
      }
      while (running.size >= inflightWindow) await Promise.race(running);
      const sending: Promise<void> = this.sendWithRetry(batch).then(
        () => {
          running.delete(sending);
          this.advance(last);
        },
        (err: unknown) => {
          running.delete(sending);
          failure ??= err;
        },
      );
      running.add(sending);
    }
    await Promise.all(running);
    // Stopping: the consumed batch is not committed, and it is read again after the restart.
    if (failure !== undefined) throw failure;
  }

  private advance(r: ConsumedRecord): void {
    if (r.offset + 1 > this.consumedEnd) this.consumedEnd = r.offset + 1;
    if (this.appendedEnd < this.consumedEnd) this.appendedEnd = this.consumedEnd;
    this.refreshQueuing();
  }

  /** Sends until the sink takes the batch or refuses it for good; throws only when stopping (the batch is then not committed). */
  private async sendWithRetry(batch: ValueMap[]): Promise<void> {
    let retried = false;
    for (;;) {
      if (this.stopped) throw new Error('sink buffer stopping');
      const outage = this.outage;
      if (outage && outage.prober !== batch) {
        await outage.over;
        continue;
      }
      this.metrics.inflight += batch.length;
      try {
        await this.sink.send(batch);
        this.metrics.inflight -= batch.length;
        this.metrics.success += batch.length;
        if (retried) this.metrics.retriedSuccess += batch.length;
        this.endOutage(batch, 'sink is back: delivering its buffered requests');
        return;
      } catch (err) {
        this.metrics.inflight -= batch.length;
        if (!isRetriable(err)) {
          this.metrics.failed += batch.length;
          if (retried) this.metrics.retriedFailed += batch.length;
          this.log.warn({ sink: this.sink.id, requests: batch.length, err: (err as Error).message }, 'sink refused requests; they are dropped');
          this.endOutage(batch, 'sink answers again');
          return;
        }
        retried = true;
        this.metrics.retried += batch.length;
        if (!this.outage) {
          this.log.warn({ sink: this.sink.id, err: (err as Error).message }, 'sink unavailable: its requests stay buffered and are retried');
          let end!: () => void;
          const over = new Promise<void>((resolve) => (end = resolve));
          this.outage = { prober: batch, delay: Math.min(RETRY_MIN_MS, this.options.maxRetryDelayMs), over, end };
        }
        if (this.outage.prober === batch) await this.backOff(this.outage);
      }
    }
  }

  /** The prober got an answer: the batches waiting for it go on. */
  private endOutage(batch: readonly ValueMap[], message: string): void {
    const outage = this.outage;
    if (!outage || outage.prober !== batch) return;
    this.outage = undefined;
    this.log.info({ sink: this.sink.id }, message);
    outage.end();
  }

  private async backOff(outage: Outage): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, outage.delay);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
    outage.delay = Math.min(outage.delay * 2, RETRY_MAX_MS, this.options.maxRetryDelayMs);
  }
}
