import type { Logger } from '@tributary/common';
import type { Consumer, ConsumeOptions } from './backbone';
import { BatchDelivery, CaughtUpSignal, insideHandlerOf } from './batch-delivery';

/** One member per group and topic at a time (the in-process backbones have one partition). */
export class GroupLocks {
  private readonly held = new Map<string, { holder: object; queue: Array<{ owner: object; grant: () => void }> }>();

  /** Null if `owner` got the lock now, otherwise a promise that resolves when it does. */
  acquire(key: string, owner: object): Promise<void> | null {
    const lock = this.held.get(key);
    if (lock === undefined) {
      this.held.set(key, { holder: owner, queue: [] });
      return null;
    }
    return new Promise((grant) => lock.queue.push({ owner, grant }));
  }

  /** Releases the lock (or leaves the queue) and hands the lock to the next waiter. */
  release(key: string, owner: object): void {
    const lock = this.held.get(key);
    if (lock === undefined) return;
    if (lock.holder !== owner) {
      lock.queue = lock.queue.filter((w) => w.owner !== owner);
      return;
    }
    const next = lock.queue.shift();
    if (next === undefined) this.held.delete(key);
    else {
      lock.holder = next.owner;
      next.grant();
    }
  }
}

export interface GroupConsumerDeps<C> {
  locks: GroupLocks;
  logger: Logger;
  onStopped: (c: C) => void;
}

/**
 * What the embedded and the memory consumers share: the group lock, the start (positioned at
 * once when the lock is free, so 'latest' means "after what exists now"), batch delivery,
 * caughtUp, and a stop that waits for the batch in progress. Each says where it starts
 * (`position`), how it reads (`run`, waiting on `sleep` for more) and what it closes (`release`).
 */
export abstract class GroupConsumer<C extends GroupConsumer<C>> implements Consumer {
  /** Rejects if the consumer is stopped before it caught up. */
  readonly caughtUp: Promise<void>;
  protected readonly caughtUpSignal = new CaughtUpSignal();
  protected readonly delivery: BatchDelivery;
  protected readonly maxBatch: number;
  /** [group, topic]: the lock's and the committed offset's key. */
  protected readonly key: string;
  protected stopped = false;
  private wake: (() => void) | null = null;
  private stopping: Promise<void> | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(
    protected readonly options: ConsumeOptions,
    private readonly groupDeps: GroupConsumerDeps<C>,
  ) {
    this.caughtUp = this.caughtUpSignal.promise;
    this.delivery = new BatchDelivery(this, options, groupDeps.logger);
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 500));
    this.key = JSON.stringify([options.group ?? '', options.topic]);
  }

  protected abstract position(): void;
  protected abstract run(): Promise<void>;
  /** Closes what the consumer holds, after its last batch finished. */
  protected abstract release(): Promise<void> | void;

  /** Fixes the start position now if the group lock is free. */
  begin(): void {
    const wait = this.options.group === undefined ? null : this.groupDeps.locks.acquire(this.key, this);
    if (wait === null) {
      this.position();
      this.running = this.run();
    } else {
      this.running = wait.then(() => {
        if (this.stopped) return;
        this.position();
        return this.run();
      });
    }
  }

  /**
   * Stops delivering; resolves after the batch in progress finished (and what `release` closes).
   * Called from inside this consumer's own eachBatch it resolves at once (the rest follows).
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    if (insideHandlerOf(this)) return Promise.resolve();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.delivery.stop();
    this.wakeUp();
    await this.running;
    await this.release();
    this.caughtUpSignal.stopped(this.options.topic);
    if (this.options.group !== undefined) this.groupDeps.locks.release(this.key, this);
    this.groupDeps.onStopped(this as unknown as C);
  }

  /** Waits until `wakeUp` (more to read, or stop). */
  protected sleep(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  protected wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
