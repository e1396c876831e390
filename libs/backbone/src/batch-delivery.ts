import { BackboneError, type Logger } from '@tributary/common';
import type { ConsumedRecord, ConsumeOptions } from './backbone';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** The consumer whose eachBatch is running synchronously right now. */
let handling: object | undefined;

/**
 * Calls a consumer's eachBatch, marking the synchronous part of the call as inside it, so that
 * the consumer's stop() called from there does not wait for the handler that called it (a
 * deadlock). Only the synchronous part: a handler that awaited something first must not await its
 * own consumer's stop() (calling it without waiting is fine). *Why not AsyncLocalStorage:* on
 * Node 20 its first run() turns on promise hooks for the whole process, for good, and every
 * promise after that pays for them (12% of a rules process's CPU in a profile).
 */
export function callHandler(consumer: object, handler: () => Promise<void> | void): Promise<void> | void {
  const outer = handling;
  handling = consumer;
  try {
    return handler();
  } finally {
    handling = outer;
  }
}

/** True while `consumer`'s own eachBatch is running synchronously (see callHandler). */
export function insideHandlerOf(consumer: object): boolean {
  return handling === consumer;
}

/** A consumer's `caughtUp`: resolved once, or rejected if the consumer stops first (nobody has to listen). */
export class CaughtUpSignal {
  readonly promise: Promise<void>;
  done = false;
  private resolveFn!: () => void;
  private rejectFn!: (err: Error) => void;

  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    this.promise.catch(() => undefined);
  }

  resolve(): void {
    if (this.done) return;
    this.done = true;
    this.resolveFn();
  }

  /** At stop: rejects unless it already resolved. */
  stopped(topic: string): void {
    if (!this.done) this.rejectFn(new BackboneError('BACKBONE_NOT_RUNNING', `consumer of ${topic} stopped before it caught up`));
  }
}

/**
 * Hands batches to a consumer's eachBatch, again and again until it succeeds (at-least-once, in
 * order), backing off 100 ms doubling to 5 s between failures; stop() ends a back-off at once.
 */
export class BatchDelivery {
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private endPause: (() => void) | null = null;

  constructor(
    private readonly consumer: object,
    private readonly options: ConsumeOptions,
    private readonly logger: Logger,
  ) {}

  /** False if the consumer was stopped before the batch succeeded (it is then not committed). */
  async deliver(batch: ConsumedRecord[]): Promise<boolean> {
    let delay = RETRY_MIN_MS;
    for (;;) {
      try {
        await callHandler(this.consumer, () => this.options.eachBatch(batch));
        return true;
      } catch (err) {
        if (this.stopped) return false;
        this.logger.error(
          { err, topic: this.options.topic, group: this.options.group, offset: batch[0]?.offset, retryInMs: delay },
          'backbone: eachBatch failed; redelivering the batch',
        );
        await this.pause(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        if (this.stopped) return false;
      }
    }
  }

  /** Waits `ms` (ended early only by stop()). */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.endPause = () => {
        this.endPause = null;
        resolve();
      };
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.endPause?.();
      }, ms);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.endPause?.();
  }
}
