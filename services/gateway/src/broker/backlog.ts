import type { Backbone, ConsumedRecord, Consumer } from '@tributary/backbone';
import { type Logger, resolvesWithin } from '@tributary/common';
import { decodeMessage, Message } from '@tributary/mqtt';
import type { Router } from '@tributary/router';
import type { Session } from '../session/session';
import { deliveryFor } from './deliveries';

/**
 * How long a reader waits for room in the queue before it parks. The embedded consumer buffers
 * what is written meanwhile, so it parks soon; a Kafka consumer buffers nothing while it waits,
 * but costs a group join to open, so it waits longer.
 */
const PARK_MS: Record<Backbone['kind'], number> = { embedded: 200, memory: 200, kafka: 30_000 };


export interface BacklogDeps {
  backbone: Backbone;
  /** The messages topic's name. */
  topic: string;
  router: Router;
  log: Logger;
}

/**
 * Reads a session's backlog back from the messages log: from its read position, every record
 * that matches the session's (non-shared) subscriptions at QoS 1/2 goes into its queue, waiting
 * for room before each, until the reader reaches the last offset routed to the session; then
 * the session is live again. It stops when the session loses its connection (the position stays
 * in the session, and in its stored cursor) or ends.
 */
export class BacklogReader {
  private consumer: Consumer | undefined;
  private done = false;

  /** Starts reading at once; `onDone` runs once the reader finished (caught up, parked, disconnected, failed). */
  constructor(
    private readonly session: Session,
    private readonly deps: BacklogDeps,
    private readonly onDone: (r: BacklogReader) => void,
  ) {
    const backlog = session.backlog!;
    backlog.parked = false;
    // While it waits for room, what is written meanwhile stays in the files, not in memory (measured
    // in slow-subscriber-fanout: the default 100,000 held ~100 MB of the writer's batches).
    deps.backbone
      .consume({ topic: deps.topic, from: [{ partition: 0, offset: backlog.from }], maxBatch: 256, maxBuffered: 1024, eachBatch: (records) => this.batch(records) })
      .then(
        (consumer) => {
          this.consumer = consumer;
          if (this.done) void consumer.stop();
        },
        (err: Error) => {
          deps.log.error({ err, clientId: session.clientId }, 'cannot read the backlog of a session from the log');
          void this.finish();
        },
      );
  }

  get active(): boolean {
    return !this.done;
  }

  stop(): Promise<void> {
    return this.finish();
  }

  private async batch(records: ConsumedRecord[]): Promise<void> {
    const s = this.session;
    const id = s.clientId;
    for (let i = 0; i < records.length && !this.done; i++) {
      const b = s.backlog;
      if (!b || !s.owner || s.ended) return void this.finish();
      const rec = records[i]!;
      if (rec.offset < b.from) continue;
      if (!s.hasRoom) {
        // A subscriber that stays far behind does not keep a consumer (and the records it
        // buffers) open: the reader parks and the session starts another once its queue drains.
        if (!(await resolvesWithin(s.whenDrained(), PARK_MS[this.deps.backbone.kind]))) {
          b.parked = true;
          return void this.finish();
        }
        if (s.backlog !== b || !s.owner || s.ended) return void this.finish();
      }
      // The record key is the MQTT topic: only records this session subscribes to are decoded.
      if (rec.value && rec.key !== null) {
        for (const route of this.deps.router.routes(rec.key)) {
          if (route.clientId !== id) continue;
          let msg: Message;
          try {
            msg = decodeMessage(rec.value, rec.offset);
          } catch (err) {
            this.deps.log.warn({ offset: rec.offset, err: (err as Error).message }, 'undecodable record in the messages topic skipped');
            break;
          }
          const d = deliveryFor(route, msg);
          // QoS 0 deliveries followed the queue policy when they were routed.
          if (d && d.qos > 0) s.fromBacklog(d);
          break;
        }
      }
      if (s.backlogRead(rec.offset)) return void this.finish();
    }
  }

  private finish(): Promise<void> {
    if (!this.done) {
      this.done = true;
      this.onDone(this);
    }
    // Before consume() returned there is no consumer yet: the constructor stops it.
    return this.consumer ? this.consumer.stop() : Promise.resolve();
  }
}
