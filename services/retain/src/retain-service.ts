import type { Backbone } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import { DelayedPublisher, MESSAGES_TOPIC, RetainedStore } from '@tributary/gateway';
import { Message, messageRecord } from '@tributary/mqtt';

export interface RetainServiceOptions {
  backbone: Backbone;
  logger: Logger;
  /** delayed.enable / delayed.max_delayed_messages. */
  delayed: { enable: boolean; max: number };
  /** How often expired retained messages are removed (ms). */
  sweepMs?: number;
}

/**
 * The stored-message service of a scaled-out installation (`tributary retain`). Retained
 * messages live in the compacted `retained` topic, which gateways write (before the publisher's
 * PUBACK, like the messages record) and follow; this service removes the ones whose Message
 * Expiry Interval passed, so the topic does not keep them forever, and publishes `$delayed`
 * messages when due (gateways only store them), so each is published once.
 */
export class RetainService {
  private store: RetainedStore | undefined;
  private delayed: DelayedPublisher | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  readonly stats = { 'retain.expired': 0 };

  constructor(private readonly opts: RetainServiceOptions) {}

  get retainedCount(): number {
    return this.store?.size ?? 0;
  }

  get delayedCount(): number {
    return this.delayed?.size ?? 0;
  }

  async start(): Promise<void> {
    const { backbone, logger } = this.opts;
    this.store = await RetainedStore.open(backbone, 0, logger);
    this.store.follow();
    if (this.opts.delayed.enable) {
      // Published like a gateway would: the messages record, and the retained table for a retained one.
      const publish = async (msg: Message): Promise<void> => {
        await backbone.append(MESSAGES_TOPIC, [messageRecord(msg)]);
        if (msg.retain) await this.store!.set(msg);
      };
      this.delayed = await DelayedPublisher.open(backbone, publish, this.opts.delayed.max, logger);
    }
    this.sweeper = setInterval(() => this.sweep(), this.opts.sweepMs ?? 60_000);
    this.sweeper.unref();
    this.sweep();
    logger.info({ retained: this.store.size, delayed: this.delayedCount }, 'retain service started');
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.delayed?.stop();
  }

  private sweep(): void {
    this.store!.removeExpired().then(
      (n) => (this.stats['retain.expired'] += n),
      (err: Error) => this.opts.logger.warn({ err: err.message }, 'expiring retained messages failed; next sweep retries'),
    );
  }
}
