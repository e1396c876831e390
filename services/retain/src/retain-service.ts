import type { Backbone, ConsumedRecord, Consumer } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import { DelayedPublisher, MESSAGES_TOPIC, RetainedStore } from '@tributary/gateway';
import { decodeMessage, Message, messageRecord, RETAIN_HEADER } from '@tributary/mqtt';

export interface RetainServiceOptions {
  backbone: Backbone;
  logger: Logger;
  /** delayed.enable / delayed.max_delayed_messages. */
  delayed: { enable: boolean; max: number };
  /** How often expired retained messages are removed (ms). */
  sweepMs?: number;
}

/**
 * The retained-message store of a scaled-out installation (`tributary retain`): reads the
 * messages topic in its own consumer group and writes every retained message (or, for an empty
 * payload, its removal) to the compacted `retained` topic that gateways follow. Offsets are
 * committed after those writes, so a restart neither loses nor reorders a retained update.
 * Expired retained messages are removed. It also publishes `$delayed` messages when due:
 * gateways only store them, so each is published once.
 */
export class RetainService {
  private store: RetainedStore | undefined;
  private delayed: DelayedPublisher | undefined;
  private consumer: Consumer | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  readonly stats = { 'retain.updates': 0, 'retain.expired': 0, 'retain.invalid': 0 };

  constructor(private readonly opts: RetainServiceOptions) {}

  get retainedCount(): number {
    return this.store?.size ?? 0;
  }

  get delayedCount(): number {
    return this.delayed?.size ?? 0;
  }

  async start(): Promise<void> {
    const { backbone, logger } = this.opts;
    this.store = await RetainedStore.open(backbone);
    if (this.opts.delayed.enable) {
      const publish = (msg: Message): Promise<unknown> => backbone.append(MESSAGES_TOPIC, [messageRecord(msg)]);
      this.delayed = await DelayedPublisher.open(backbone, publish, this.opts.delayed.max, logger);
    }
    // From the earliest record on the first start: retained messages published before this
    // service first ran are still applied, in order.
    this.consumer = await backbone.consume({ topic: MESSAGES_TOPIC, group: 'retain', from: 'earliest', maxBatch: 2000, eachBatch: (r) => this.apply(r) });
    this.sweeper = setInterval(() => this.sweep(), this.opts.sweepMs ?? 60_000);
    this.sweeper.unref();
    logger.info({ retained: this.store.size, delayed: this.delayedCount }, 'retain service started');
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.delayed?.stop();
    await this.consumer?.stop();
  }

  private apply(records: ConsumedRecord[]): Promise<void> | undefined {
    const writes: Promise<void>[] = [];
    for (const r of records) {
      if (r.headers[RETAIN_HEADER] !== 'true' || r.value === null) continue;
      let msg: Message;
      try {
        msg = decodeMessage(r.value, r.offset);
      } catch (err) {
        this.stats['retain.invalid']++;
        this.opts.logger.warn({ offset: r.offset, err: (err as Error).message }, 'undecodable record in the messages topic skipped');
        continue;
      }
      this.stats['retain.updates']++;
      writes.push(this.store!.set(msg));
    }
    return writes.length ? Promise.all(writes).then(() => undefined) : undefined;
  }

  private sweep(): void {
    const n = this.store!.removeExpired();
    this.stats['retain.expired'] += n;
  }
}
