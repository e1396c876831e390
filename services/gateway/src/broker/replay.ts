import type { ConsumedRecord } from '@tributary/backbone';
import { ProgressLog } from '@tributary/common';
import { decodeMessage, Message, QoS } from '@tributary/mqtt';
import type { Session } from '../session/session';
import type { Delivery, PersistedSession } from '../session/types';
import { deliveryFor } from './deliveries';
import { BrokerCore, MESSAGES_TOPIC } from './strategies';

/** A persisted session being brought back, with the positions its replay needs. */
export interface RestoredSession {
  session: Session;
  cursor: number;
  /** In-flight messages by offset: [packet id, qos, phase]. */
  inflight: Map<number, [number, QoS, 1 | 2]>;
  /**
   * The record still names an owner: taken over from a connection live elsewhere, whose last
   * record may predate PUBLISHes it sent, so what the replay sends past the cursor goes with
   * DUP = 1 (it may be a re-delivery). Single-node records name no owner.
   */
  maybeSent: boolean;
}

/** Rebuilds a persisted session in the registry (subscriptions, QoS 2 state, positions); `replay` brings its messages back. */
export function restoreSession(core: BrokerCore, p: PersistedSession, since: number): RestoredSession {
  const s = core.newSession(p.clientId, p.protocolVersion);
  s.expiryInterval = p.expiryInterval;
  s.disconnectedAt = since;
  // Writes issued but lost in a crash leave a cursor past the log's end: clamp it.
  s.lastOffset = Math.min(p.cursor, core.backbone.nextOffset?.(MESSAGES_TOPIC) ?? p.cursor) - 1;
  for (const id of p.awaitingRel) s.awaitingRel.add(id);
  for (const [filter, opts] of p.subscriptions) {
    s.subscriptions.set(filter, opts);
    core.router.subscribe(p.clientId, filter, opts);
  }
  const inflight = new Map<number, [number, QoS, 1 | 2]>();
  for (const [offset, packetId, qos, phase] of p.inflight) {
    if (phase === 2 || offset < 0) s.restoreInflight(pubrelOnly(), packetId, 2);
    else inflight.set(offset, [packetId, qos, phase]);
  }
  return { session: s, cursor: p.cursor, inflight, maybeSent: p.owner != null };
}

/**
 * Reads the messages topic from the oldest position of `restored` to its end: in-flight
 * messages are put back in their sessions' windows, and every later message matching a
 * (non-shared) subscription is delivered. Returns how many records were read.
 */
export async function replay(core: BrokerCore, restored: ReadonlyMap<string, RestoredSession>): Promise<number> {
  let from = Infinity;
  // In-flight entries by offset: one lookup per record, however many sessions are restored.
  const inflightAt = new Map<number, [Session, [number, QoS, 1 | 2]][]>();
  for (const r of restored.values()) {
    from = Math.min(from, replayStart(r));
    for (const [offset, entry] of r.inflight) {
      const list = inflightAt.get(offset);
      if (list) list.push([r.session, entry]);
      else inflightAt.set(offset, [[r.session, entry]]);
    }
  }
  if (from === Infinity) return 0;
  let replayed = 0;
  const end = core.backbone.nextOffset?.(MESSAGES_TOPIC);
  const progress = new ProgressLog(core.log, 'replaying the messages topic for restored sessions');
  const consumer = await core.backbone.consume({
    topic: MESSAGES_TOPIC,
    from: [{ partition: 0, offset: Math.max(0, from) }],
    eachBatch: (records: ConsumedRecord[]) => {
      progress.report(() => ({ sessions: restored.size, replayed, ...(end !== undefined ? { of: end - Math.max(0, from) } : {}) }));
      for (const rec of records) {
        if (!rec.value) continue;
        let msg: Message;
        try {
          msg = decodeMessage(rec.value, rec.offset);
        } catch (err) {
          core.log.warn({ offset: rec.offset, err: (err as Error).message }, 'undecodable record in the messages topic skipped');
          continue;
        }
        replayed++;
        for (const [session, entry] of inflightAt.get(rec.offset) ?? []) {
          session.restoreInflight({ msg, qos: entry[1], retain: false, subscriptionIds: undefined }, entry[0], entry[2]);
        }
        for (const route of core.router.routes(msg.topic)) {
          const r = restored.get(route.clientId);
          if (!r || rec.offset < r.cursor || r.inflight.has(rec.offset)) continue;
          const d = deliveryFor(route, msg);
          if (!d) continue;
          if (r.maybeSent) d.maybeSent = true;
          r.session.deliver(d);
        }
      }
    },
  });
  await consumer.caughtUp;
  await consumer.stop();
  return replayed;
}

/** The first messages-topic offset a restored session's replay needs (cursor or oldest in-flight message). */
export function replayStart(r: RestoredSession): number {
  let from = r.cursor;
  for (const offset of r.inflight.keys()) if (offset < from) from = offset;
  return from;
}

/** Resumed sessions share a replay pass when their start offsets are at most this many records apart. */
const REPLAY_SHARE_RANGE = 100_000;

/**
 * Replays for resumed sessions share one pass over the messages topic: those that arrive while
 * a pass runs go together in the next (a mass reconnect after a gateway died reads the topic a
 * few times, not once per client, and opens a few consumers, not thousands).
 */
export class ReplayBatcher {
  private readonly queue: { restored: RestoredSession; resolve: () => void; reject: (err: Error) => void }[] = [];
  private running = false;

  constructor(private readonly core: BrokerCore) {}

  /** Resolves once `restored` has been replayed. */
  replay(restored: RestoredSession): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ restored, resolve, reject });
      if (this.queue.length === 1 && !this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.queue.length) {
      // Sessions whose positions are close share a pass; one far behind (offline for days) gets
      // its own, so the others' CONNACKs do not wait for its long replay.
      this.queue.sort((x, y) => replayStart(y.restored) - replayStart(x.restored));
      const newest = replayStart(this.queue[0]!.restored);
      let n = 1;
      while (n < this.queue.length && newest - replayStart(this.queue[n]!.restored) <= REPLAY_SHARE_RANGE) n++;
      const batch = this.queue.splice(0, n);
      try {
        const replayed = await replay(this.core, new Map(batch.map((b) => [b.restored.session.clientId, b.restored])));
        this.core.log.debug({ sessions: batch.length, replayed }, 'replayed the messages topic for resumed sessions');
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
    }
    this.running = false;
  }
}

/** A PUBREL-phase placeholder: only the packet id matters once PUBREC was received. */
function pubrelOnly(): Delivery {
  const msg: Message = { topic: '', payload: Buffer.alloc(0), qos: 2, retain: false, from: '', timestamp: 0, properties: undefined, offset: -1 };
  return { msg, qos: 2, retain: false, subscriptionIds: undefined };
}
