import type { ClientInfo, PacketProperties } from '@tributary/hooks';
import { remainingExpiry } from '@tributary/mqtt';
import { Deque } from './deque';
import { IncomingVerdict, IncomingWindow } from './incoming';
import type { Delivery, Inflight, PersistedSession, SessionHost, SessionOwner, SubscriptionOptions, Will } from './types';

export interface SessionLimits {
  /** Outgoing in-flight window (further limited by the client's Receive Maximum). */
  maxInflight: number;
  maxQueue: number;
  storeQos0: boolean;
  /** mqtt.max_session_backlog: QoS 1/2 messages a connected session may fall behind by, read back from the log. */
  maxBacklog: number;
  /** mqtt.max_awaiting_rel: incoming QoS 2 messages awaiting PUBREL. */
  maxAwaitingRel: number;
}

/**
 * A connected session that fell behind: its QoS 1/2 messages from `from` on are not queued in
 * memory but read back from the messages log (in order) as its queue drains.
 */
export interface Backlog {
  /** The next messages-topic offset to read. */
  from: number;
  /** Matching QoS 1/2 messages routed since the backlog began and not read back yet. */
  count: number;
  /** Messages dropped past max_session_backlog in this episode (the first drop is logged). */
  dropped: number;
  /** The reader stopped while the queue stayed full; it starts again once the queue drains. */
  parked: boolean;
}

/**
 * A queued message must not keep alive the much larger buffer its payload was sliced from (a
 * 64 KB socket read, a segment file read): then a full queue of small messages would hold
 * megabytes. Such a payload is copied once, for every session that queues it.
 */
function compact(d: Delivery): Delivery {
  const p = d.msg.payload;
  if (p.buffer.byteLength > 2 * p.length + 512) {
    // Not from the shared 8 KB pool: a buffer of its own, so this check holds once copied.
    const own = Buffer.allocUnsafeSlow(p.length);
    p.copy(own);
    d.msg.payload = own;
  }
  return d;
}

/** A live QoS 1/2 delivery of a logged message (not shared, not a retained copy) can be read back from the log. */
function fromLog(d: Delivery): boolean {
  return d.qos > 0 && d.shared === undefined && d.msg.offset >= 0;
}

/** Session expiry value that means "never" (§3.1.2.11.2). */
export const NEVER_EXPIRES = 0xffffffff;

/**
 * The MQTT session: subscriptions, the outgoing in-flight window with packet ids, the bounded
 * queue behind it, and incoming QoS 2 state. It outlives connections: `attach` resumes it on a
 * new channel (resending in-flight messages with DUP), `detach` leaves it queueing offline.
 */
export class Session {
  readonly subscriptions = new Map<string, SubscriptionOptions>();
  /** The client of the latest connection (for hooks); undefined for a session restored and not yet reconnected. */
  client: ClientInfo | undefined;
  /** Incoming QoS 1/2 state and its limits (Receive Maximum, max_awaiting_rel). */
  private readonly incoming: IncomingWindow;
  // Idle connections are the common case: the per-session collections are created on first use.
  private _inflight: Map<number, Inflight> | undefined;
  private readonly queue = new Deque<Delivery>();
  private nextPacketId = 1;
  private window: number;
  owner: SessionOwner | undefined;
  protocolVersion: number;
  /** Seconds the session outlives its connection (0 = ends with it). */
  expiryInterval = 0;
  disconnectedAt: number | null = null;
  /** When this process created the session (ms since the epoch), for the HTTP API. */
  readonly createdAt = Date.now();
  will: Will | undefined;
  /** Highest messages-topic offset routed to this session. */
  lastOffset = -1;
  /** Set once the broker has discarded this session; later calls are no-ops. */
  ended = false;
  /** Set while the session reads its QoS 1/2 messages from the log instead of its queue. */
  backlog: Backlog | undefined;
  /** The queue passed half its bound while connected: the broker's flow control counts it. */
  pressured = false;
  /** Messages sent to clients so far (flow control compares sessions' progress). */
  sent = 0;
  /** Deliveries dropped, by reason (send_msg.dropped.* of GET /clients; the broker counts them). */
  droppedQueueFull = 0;
  droppedExpired = 0;
  droppedTooLarge = 0;
  /** Behind its peers, or pressured without progress: not counted by flow control until its queue drains (QoS 0 drops, QoS 1/2 go to the backlog). */
  slow = false;
  private drainWaiters: (() => void)[] | undefined;

  constructor(
    readonly clientId: string,
    protocolVersion: number,
    readonly limits: SessionLimits,
    private readonly host: SessionHost,
  ) {
    this.protocolVersion = protocolVersion;
    this.window = limits.maxInflight;
    this.incoming = new IncomingWindow(limits.maxAwaitingRel);
  }

  /** The outgoing in-flight window now (mqtt.max_inflight, or less by the client's Receive Maximum). */
  get inflightMax(): number {
    return this.window;
  }

  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** Whether a message this client publishes may come back to it. */
  get hasSubscriptions(): boolean {
    return this.subscriptions.size > 0;
  }

  /** DISCONNECT set a new Session Expiry Interval (seconds). */
  setExpiry(seconds: number): void {
    this.expiryInterval = seconds;
  }

  /** Incoming QoS 2 packet ids PUBREC'd and awaiting PUBREL. */
  get awaitingRel(): Set<number> {
    return this.incoming.awaitingRel;
  }

  get awaitingRelCount(): number {
    return this.incoming.awaitingRelCount;
  }

  /** An incoming QoS 1/2 PUBLISH: publish it, skip it, acknowledge it again, or refuse it (reason code). */
  beginIncoming(qos: 1 | 2, packetId: number): IncomingVerdict {
    return this.incoming.begin(qos, packetId);
  }

  /** An incoming publish is durable: QoS 2 now awaits PUBREL (kept with the session). */
  incomingStored(qos: 1 | 2, packetId: number): void {
    this.incoming.stored(qos, packetId);
    if (qos === 2) this.changed();
  }

  incomingFailed(qos: 1 | 2, packetId: number): void {
    this.incoming.failed(qos, packetId);
  }

  /** PUBREL: true when the id awaited it. */
  release(packetId: number): boolean {
    const known = this.incoming.release(packetId);
    if (known) this.changed();
    return known;
  }

  private get inflight(): Map<number, Inflight> {
    return (this._inflight ??= new Map());
  }

  get inflightCount(): number {
    return this._inflight?.size ?? 0;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Attaches a connection: resends unacknowledged messages in order [MQTT-4.4.0-1], then the queue. */
  attach(owner: SessionOwner, receiveMaximum: number, incomingMaximum = Infinity): void {
    this.owner = owner;
    this.incoming.connected(incomingMaximum);
    this.protocolVersion = owner.protocolVersion;
    this.window = Math.max(1, Math.min(this.limits.maxInflight, receiveMaximum));
    this.disconnectedAt = null;
    const now = Date.now();
    if (this._inflight) {
      for (const entry of this._inflight.values()) {
        entry.sentAt = now;
        if (entry.phase === 2) owner.sendPubrel(entry.packetId);
        else owner.sendPublish(entry.delivery, entry.packetId, true);
      }
    }
    this.pump();
    this.changed();
    if (this.backlog) this.host.backlogged(this);
  }

  detach(now = Date.now()): void {
    this.owner = undefined;
    this.disconnectedAt = now;
    this.unpressure();
    this.changed();
    this.drained();
  }

  /** True when the queue is at its bound, or its messages wait in the log: a live message would not be sent soon. */
  get congested(): boolean {
    return this.queue.length >= this.limits.maxQueue || this.backlog !== undefined;
  }

  /** Resolves once the queue is below half its bound, or the connection is gone. */
  whenDrained(): Promise<void> {
    if (!this.owner || this.queue.length < this.limits.maxQueue / 2) return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  private drained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = undefined;
    if (waiters) for (const w of waiters) w();
  }

  /**
   * Hands a message to the session: sent now when the window and the socket allow, else queued.
   * `live`: routed as it was published (false for retained copies, which have no log position).
   * While the session has a backlog, its live QoS 1/2 messages stay in the log and are read back.
   */
  deliver(d: Delivery, live = true): void {
    if (live && d.msg.offset > this.lastOffset) this.lastOffset = d.msg.offset;
    if (this.backlog && live && fromLog(d)) {
      this.backlog.count++;
      return;
    }
    const owner = this.owner;
    if (owner && this.queue.length === 0 && owner.writable) {
      if (d.qos === 0) {
        if (owner.sendPublish(d, 0, false)) this.delivered(d);
        else this.host.dropped('too_large', d, this);
        return;
      }
      if (this.inflightCount < this.window) {
        this.send(owner, d);
        return;
      }
    }
    if (d.qos === 0 && !owner && !this.limits.storeQos0) return this.host.dropped('qos0_msg', d, this);
    this.enqueue(d, live);
  }

  /**
   * A message read back from the log for this session's backlog (the reader waits for room in
   * the queue before each). Past max_session_backlog the oldest are dropped.
   */
  fromBacklog(d: Delivery): void {
    const b = this.backlog;
    if (!b) return;
    if (b.count > 0) b.count--;
    if (b.count >= this.limits.maxBacklog) {
      if (b.dropped++ === 0) this.host.backlogOverflow(this);
      this.host.dropped('queue_full', d, this);
      return;
    }
    const owner = this.owner;
    if (owner && this.queue.length === 0 && this.inflightCount < this.window && owner.writable) this.send(owner, d);
    else this.queue.push(compact(d));
  }

  /**
   * The backlog reader has read `offset`. Live delivery resumes once it read the last routed
   * offset and the queue has room to spare (otherwise the reader follows the log's head a while
   * longer: a subscriber just keeping pace would else leave and re-enter the backlog many times
   * a second, each time opening a reader).
   */
  backlogRead(offset: number): boolean {
    const b = this.backlog;
    if (!b) return true;
    b.from = offset + 1;
    return this.endBacklog();
  }

  private endBacklog(): boolean {
    const b = this.backlog!;
    if (b.from <= this.lastOffset || this.queue.length >= this.limits.maxQueue / 4) return false;
    this.backlog = undefined;
    this.host.backlogEnded(this);
    return true;
  }

  /** True when the backlog reader may add a message now (the queue is below half its bound). */
  get hasRoom(): boolean {
    return this.queue.length < this.limits.maxQueue / 2;
  }

  /** The socket drained: send what waits. */
  resume(): void {
    this.pump();
  }

  /** Flow control gave up waiting for this session: it is no longer counted, and drops or reads from the log. */
  markSlow(): void {
    this.pressured = false;
    this.slow = true;
  }

  private unpressure(): void {
    if (this.pressured) {
      this.pressured = false;
      this.host.pressure(this, false);
    }
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2), with its properties (5.0): the delivery is complete. Returns false for an unknown id. */
  complete(packetId: number, expectedPhase: 1 | 2, props?: PacketProperties): boolean {
    const entry = this._inflight?.get(packetId);
    if (!entry || entry.phase !== expectedPhase || (expectedPhase === 1 && entry.delivery.qos !== 1)) return false;
    this._inflight!.delete(packetId);
    this.host.acked(entry.delivery, this, props);
    this.changed();
    this.pump();
    return true;
  }

  /** Ends a delivery the client refused (5.0 PUBREC/PUBACK with an error reason code). */
  abandon(packetId: number): void {
    if (this._inflight?.delete(packetId)) {
      this.changed();
      this.pump();
    }
  }

  /** PUBREC: move a QoS 2 delivery to its second phase and send PUBREL. */
  received(packetId: number): boolean {
    const entry = this._inflight?.get(packetId);
    if (!entry || entry.delivery.qos !== 2) return false;
    if (entry.phase === 1) {
      entry.phase = 2;
      this.changed();
    }
    this.owner?.sendPubrel(packetId);
    return true;
  }

  /** Resends PUBLISH/PUBREL older than `olderThan` (3.x retry; 5.0 only resends on reconnect). */
  retry(olderThan: number, now: number): void {
    const owner = this.owner;
    if (!owner || !this._inflight) return;
    for (const entry of this._inflight.values()) {
      if (entry.sentAt > olderThan) continue;
      entry.sentAt = now;
      if (entry.phase === 2) owner.sendPubrel(entry.packetId);
      else owner.sendPublish(entry.delivery, entry.packetId, true);
    }
  }

  /** Restores an in-flight entry from persisted state (broker start-up). */
  restoreInflight(d: Delivery, packetId: number, phase: 1 | 2): void {
    this.inflight.set(packetId, { delivery: d, packetId, phase, sentAt: 0 });
    if (packetId >= this.nextPacketId) this.nextPacketId = (packetId % 0xffff) + 1;
  }

  /**
   * Removes the shared-subscription messages this client has not acknowledged (queued, or sent
   * without PUBACK/PUBREC) so the broker can hand them to another member of the group.
   */
  takeShared(): Delivery[] {
    const out: Delivery[] = [];
    if (this._inflight) {
      for (const [id, e] of this._inflight) {
        if (e.delivery.shared && e.phase === 1) {
          out.push(e.delivery);
          this._inflight.delete(id);
        }
      }
    }
    if (this.queue.length) {
      const keep = [...this.queue].filter((d) => !d.shared || (out.push(d), false));
      if (keep.length !== this.queue.length) {
        this.queue.clear();
        for (const d of keep) this.queue.push(d);
      }
    }
    if (out.length) this.changed();
    return out;
  }

  /** Drops everything (session discarded or taken over by a clean start). */
  clear(): void {
    this._inflight = undefined;
    this.incoming.clear();
    this.queue.clear();
    this.unpressure();
    if (this.backlog) {
      this.backlog = undefined;
      this.host.backlogEnded(this);
    }
    this.drained();
  }

  snapshot(): PersistedSession {
    const inflight: PersistedSession['inflight'] = [];
    // Read without creating the collections: most sessions never have any in flight.
    for (const e of this._inflight?.values() ?? []) {
      // Retained copies have no place in the messages topic; they are not redelivered after a restart.
      if (e.delivery.msg.offset >= 0 || e.phase === 2) inflight.push([e.delivery.msg.offset, e.packetId, e.delivery.qos, e.phase]);
    }
    let cursor = this.lastOffset + 1;
    // Messages waiting in the log for a backlog are undelivered from its read position on.
    if (this.backlog) cursor = Math.min(cursor, this.backlog.from);
    for (const d of this.queue) {
      if (d.msg.offset >= 0 && !d.retain) {
        cursor = Math.min(cursor, d.msg.offset);
        break;
      }
    }
    return {
      clientId: this.clientId,
      protocolVersion: this.protocolVersion,
      expiryInterval: this.expiryInterval,
      subscriptions: [...this.subscriptions],
      cursor,
      inflight,
      awaitingRel: this.incoming.awaitingRelIds(),
      disconnectedAt: this.owner ? null : (this.disconnectedAt ?? Date.now()),
    };
  }

  private changed(): void {
    if (this.persistent && !this.ended) this.host.changed(this);
  }

  private enqueue(d: Delivery, live: boolean): void {
    const max = this.limits.maxQueue;
    if (this.queue.length >= max) {
      if (live && this.owner && fromLog(d)) {
        // A connected session that fell behind reads its QoS 1/2 messages from the log from here on.
        this.backlog = { from: d.msg.offset, count: 1, dropped: 0, parked: false };
        this.unpressure();
        this.host.backlogged(this);
        return;
      }
      // Drop policy: a QoS 0 message is dropped rather than queued; otherwise the oldest goes.
      if (d.qos === 0) {
        this.host.dropped('queue_full', d, this);
        return;
      }
      const oldest = this.queue.shift();
      if (oldest) this.host.dropped('queue_full', oldest, this);
    }
    this.queue.push(compact(d));
    if (this.queue.length >= max / 2 && this.owner && !this.pressured && !this.slow && !this.backlog) {
      this.pressured = true;
      this.host.pressure(this, true, d.msg);
    }
  }

  /** Moves queued messages into the window while it has room. */
  private pump(): void {
    const owner = this.owner;
    if (!owner) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.inflightCount < this.window && owner.writable) {
      const d = this.queue.shift()!;
      const left = remainingExpiry(d.msg, now);
      if (left !== undefined && left <= 0) {
        this.host.dropped('expired', d, this);
        continue;
      }
      if (d.qos === 0) {
        if (owner.sendPublish(d, 0, false)) this.delivered(d);
        else this.host.dropped('too_large', d, this);
      } else this.send(owner, d);
    }
    const queued = this.queue.length;
    if (queued < this.limits.maxQueue / 4) {
      this.slow = false;
      this.unpressure();
      if (this.backlog) this.endBacklog();
    }
    if (queued < this.limits.maxQueue / 2) {
      if (this.drainWaiters) this.drained();
      if (this.backlog?.parked) {
        this.backlog.parked = false;
        this.host.backlogged(this);
      }
    }
  }

  private send(owner: SessionOwner, d: Delivery): void {
    const packetId = this.allocatePacketId();
    if (!owner.sendPublish(d, packetId, d.maybeSent === true)) {
      this.host.dropped('too_large', d, this);
      return;
    }
    this.inflight.set(packetId, { delivery: d, packetId, phase: 1, sentAt: Date.now() });
    this.delivered(d);
    this.changed();
  }

  private delivered(d: Delivery): void {
    this.sent++;
    this.host.delivered(d, this);
  }

  private allocatePacketId(): number {
    // The window is at most 65535, so a free id always exists.
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 0xffff ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }
}
