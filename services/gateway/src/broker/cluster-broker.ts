import { randomUUID } from 'node:crypto';
import type { ConsumedRecord, Consumer, Table } from '@tributary/backbone';
import type { SessionEndReason } from '@tributary/hooks';
import { SessionError } from '@tributary/common';
import { decodeMessage, encodeMessage, Message, QoS } from '@tributary/mqtt';
import {
  ACK_HEADER,
  BUNDLE_HEADER,
  BundledDelivery,
  decodeBundle,
  downlinkTopic,
  epochOf,
  GATEWAYS_TABLE,
  GatewayLease,
  parseAck,
  parseSharedPicks,
  RouteAck,
  sameClaim,
  SESSIONS_TABLE,
  supersedes,
} from '@tributary/router';
import { gatewayLeaseCodec, RecordReader, sessionCodec } from '@tributary/records';
import { NEVER_EXPIRES, Session } from '../session/session';
import type { PersistedSession, SessionOwner, Will } from '../session/types';
import { Broker, BrokerDeps, OpenedSession, OpenSessionRequest, replayStart, RestoredSession } from './broker';
import { deliveryFor } from './deliveries';

export interface ClusterOptions {
  /** This gateway's name (node.name): owner of its sessions, names its downlink topic. */
  gateway: string;
  /** Lease duration (ms); renewed every third of it. */
  leaseMs: number;
  /** Longest wait for the router to confirm a claim or subscription change (ms). */
  ackTimeoutMs: number;
}

/** Ownership of one local session. */
interface Claim {
  epoch: number;
  claimedAt: number;
  /** Confirmation counter: bumped when the router must acknowledge the record. */
  ack: number;
  /** Encoded will (base64 Avro) for the router to publish if this gateway dies. */
  will: { message: string; delaySeconds: number } | undefined;
  /** Deliveries that arrived while the session was being resumed (replayed first). */
  held: [Message, string | undefined][] | undefined;
  waiters: { ack: number; resolve: (a: RouteAck | undefined) => void; timer: NodeJS.Timeout }[];
  /** Another gateway claimed the session: this one must not write it again. */
  fenced: boolean;
  /** Fenced by the router's release after this gateway's lease lapsed (it publishes the will). */
  releasedByRouter: boolean;
}

/**
 * The broker of one gateway among several (`tributary gateway`, Kafka backbone). Publishing is
 * the same durable append; routing is the router service's: this gateway receives, on its own
 * downlink topic, every message that matches one of its sessions, and routes it to them with its
 * local subscription table. Sessions are claimed in the sessions table with a fencing epoch; a
 * claim by another gateway (takeover) disconnects the local connection with 0x8E. A session
 * resumed here is replayed from its cursor in the messages topic, so every QoS 1/2 message
 * published while it was away arrives, wherever it was connected before.
 */
export class ClusterBroker extends Broker {
  readonly incarnation = randomUUID();
  private readonly claims = new Map<string, Claim>();
  /** Opens in progress per client id (each waits for the one before). */
  private readonly opening = new Map<string, Promise<void>>();
  private readonly replayQueue: { restored: RestoredSession; resolve: () => void; reject: (err: Error) => void }[] = [];
  private replaying = false;
  private table!: Table;
  private records!: RecordReader<PersistedSession>;
  private leases!: Table;
  private downlink: Consumer | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();

  constructor(
    deps: BrokerDeps,
    private readonly cluster: ClusterOptions,
  ) {
    super(deps);
  }

  override async start(): Promise<void> {
    const b = this.deps.backbone;
    const topic = downlinkTopic(this.cluster.gateway);
    await b.ensureTopics([{ name: topic, cleanup: 'delete', retentionMs: 3_600_000 }]);
    this.leases = await b.table(GATEWAYS_TABLE);
    await this.renewLease();
    this.leaseTimer = setInterval(() => {
      this.renewLease().catch((err: Error) => this.log.warn({ err: err.message }, 'gateway lease renewal failed'));
    }, Math.max(100, Math.floor(this.cluster.leaseMs / 3)));
    this.leaseTimer.unref();
    this.table = await b.table(SESSIONS_TABLE);
    this.records = new RecordReader(sessionCodec, this.table.name, this.log);
    this.table.onRemoteChange = (clientId, value, offset) => this.remoteChange(clientId, value, offset);
    this.downlink = await b.consume({ topic, from: 'latest', maxBatch: 2000, eachBatch: (records) => this.fromRouter(records) });
    this.deps.retained.follow();
    await super.start();
    this.log.info({ gateway: this.cluster.gateway, incarnation: this.incarnation, downlink: topic }, 'gateway joined the cluster');
  }

  /** Sessions are restored where their clients reconnect, not at start-up. */
  protected override async restoreSessions(): Promise<void> {}

  protected override get schedulesDelayed(): boolean {
    return false;
  }

  private renewLease(): Promise<void> {
    const now = Date.now();
    const lease: GatewayLease = { incarnation: this.incarnation, startedAt: this.startedAt, until: now + this.cluster.leaseMs };
    return this.leases.set(this.cluster.gateway, gatewayLeaseCodec.encode(lease));
  }

  override async stop(): Promise<void> {
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    await super.stop();
    this.table.onRemoteChange = undefined;
    await this.downlink?.stop();
    // Every session was released by its connection's close: the lease can go.
    await this.leases.delete(this.cluster.gateway);
  }

  /**
   * Claims the session in the sessions table (epoch + 1), waits until the router routes with the
   * claim, and for a resumed session replays what it missed; then the caller sends CONNACK.
   * Opens of one client id run one after the other, so the second is a plain takeover.
   */
  override openSession(req: OpenSessionRequest): Promise<OpenedSession> {
    const before = this.opening.get(req.clientId) ?? Promise.resolve();
    const open = before.then(() => this.openNow(req));
    const settled = open.then(
      () => undefined,
      () => undefined,
    );
    this.opening.set(req.clientId, settled);
    void settled.then(() => {
      if (this.opening.get(req.clientId) === settled) this.opening.delete(req.clientId);
    });
    return open;
  }

  private openNow(req: OpenSessionRequest): Promise<OpenedSession> {
    const previous = this.claims.get(req.clientId);
    if (this.sessions.has(req.clientId) && previous && !previous.fenced) {
      // Takeover on this gateway: the base broker kicks the old connection (or discards the
      // session on a clean start); the claim carries over with a new epoch.
      const opened = super.openSession(req) as OpenedSession;
      this.claims.set(req.clientId, newClaim(previous.epoch + 1, req.will, false));
      return this.confirm(opened.session).then(() => opened);
    }
    return this.resume(req);
  }

  private async resume(req: OpenSessionRequest): Promise<OpenedSession> {
    const id = req.clientId;
    // Read the record only once this copy has every write made before: a client that just
    // left another gateway must be resumed from where it left, not from an older state.
    if (this.table.sync) await waitAtMost(this.table.sync().catch(() => undefined), this.cluster.ackTimeoutMs);
    const now = Date.now();
    const stored = this.stored(id);
    const claim = newClaim(epochOf(stored) + 1, req.will, true);
    this.claims.set(id, claim);
    try {
      let restored: RestoredSession | undefined;
      const alive = stored && stored.expiryInterval > 0 && (stored.expiryInterval === NEVER_EXPIRES || (stored.disconnectedAt ?? now) + stored.expiryInterval * 1000 > now);
      if (stored && alive && !req.cleanStart && stored.cursor !== undefined) restored = this.restoreSession(stored, now);
      else this.sessions.set(id, new Session(id, req.protocolVersion, this.limits, this));
      const session = this.sessions.get(id)!;
      session.expiryInterval = req.expiryInterval;
      session.client = req.client;
      if (restored) {
        // The replay must reach where the router's routing with this claim begins: wait for its acknowledgement.
        await this.confirm(session);
        this.check(claim, id);
        await this.replayBatched(restored);
        this.log.debug({ clientId: id, cursor: restored.cursor }, 'session resumed');
      } else {
        // A new session has nothing routed to it yet: the claim is written (it fences any other
        // owner) and CONNACK need not wait; SUBACK waits for the router instead.
        await this.deps.sessions.save(this.record(session));
      }
      this.check(claim, id);
      const held = claim.held ?? [];
      claim.held = undefined;
      for (const [msg, shared] of held) this.deliverLocal(msg, shared);
      this.hooks.notify(restored ? 'session.resumed' : 'session.created', req.client);
      return { session, present: restored !== undefined };
    } catch (err) {
      // Nothing half-open stays behind: the client may retry here or anywhere.
      if (this.claims.get(id) === claim) {
        const s = this.sessions.get(id);
        if (s) this.release(s);
        this.claims.delete(id);
      }
      throw err;
    }
  }

  /**
   * Replays for resumed sessions share one pass over the messages topic: those that arrive while
   * a pass runs go together in the next (a mass reconnect after a gateway died reads the topic a
   * few times, not once per client, and opens a few consumers, not thousands).
   */
  private replayBatched(restored: RestoredSession): Promise<void> {
    return new Promise((resolve, reject) => {
      this.replayQueue.push({ restored, resolve, reject });
      if (this.replayQueue.length === 1 && !this.replaying) void this.runReplays();
    });
  }

  private async runReplays(): Promise<void> {
    this.replaying = true;
    while (this.replayQueue.length) {
      // Sessions whose positions are close share a pass; one far behind (offline for days) gets
      // its own, so the others' CONNACKs do not wait for its long replay.
      this.replayQueue.sort((x, y) => replayStart(y.restored) - replayStart(x.restored));
      const newest = replayStart(this.replayQueue[0]!.restored);
      let n = 1;
      while (n < this.replayQueue.length && newest - replayStart(this.replayQueue[n]!.restored) <= REPLAY_SHARE_RANGE) n++;
      const batch = this.replayQueue.splice(0, n);
      try {
        const replayed = await this.replay(new Map(batch.map((b) => [b.restored.session.clientId, b.restored])));
        this.log.debug({ sessions: batch.length, replayed }, 'replayed the messages topic for resumed sessions');
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
    }
    this.replaying = false;
  }

  private check(claim: Claim, clientId: string): void {
    if (claim.fenced || this.claims.get(clientId) !== claim) throw new SessionError('SESSION_TAKEN_OVER', 'the session was claimed by another connection meanwhile');
  }

  /** The latest stored record of a client (this table follows every gateway's writes). */
  private stored(clientId: string): PersistedSession | undefined {
    const raw = this.table.get(clientId);
    return raw && this.records.read(clientId, raw, this.table.offsetOf(clientId));
  }

  override confirmSubscriptions(session: Session): Promise<void> {
    return this.confirm(session).then(() => undefined);
  }

  /**
   * Writes the session record with a new confirmation number and resolves with the router's
   * acknowledgement, or undefined after cluster.route_ack_timeout (no router running: its
   * restart routes everything from its committed position, so nothing is lost by going on).
   */
  private confirm(session: Session): Promise<RouteAck | undefined> {
    const claim = this.claims.get(session.clientId);
    if (!claim || claim.fenced) return Promise.resolve(undefined);
    const ack = ++claim.ack;
    const acked = new Promise<RouteAck | undefined>((resolve) => {
      const timer = setTimeout(() => {
        claim.waiters = claim.waiters.filter((w) => w.timer !== timer);
        this.log.warn({ clientId: session.clientId, timeout: this.cluster.ackTimeoutMs }, 'no route acknowledgement from the router in time; going on');
        resolve(undefined);
      }, this.cluster.ackTimeoutMs);
      claim.waiters.push({ ack, resolve, timer });
    });
    return this.deps.sessions.save(this.record(session)).then(() => acked);
  }

  /** The record of a claimed session: its state plus ownership, the will and the confirmation number. */
  protected override record(session: Session): PersistedSession {
    const base = session.snapshot();
    const claim = this.claims.get(session.clientId);
    if (!claim) return base;
    return { ...base, ...this.ownership(claim), ack: claim.ack, will: claim.will, disconnectedAt: null };
  }

  private ownership(claim: Claim): Pick<PersistedSession, 'owner' | 'incarnation' | 'epoch' | 'claimedAt'> {
    return { owner: this.cluster.gateway, incarnation: this.incarnation, epoch: claim.epoch, claimedAt: claim.claimedAt };
  }

  override persist(session: Session): Promise<void> {
    return this.claims.get(session.clientId)?.fenced ? Promise.resolve() : super.persist(session);
  }

  /**
   * A connection ended. Unless another process took the session over, its record goes offline
   * (same claim, no owner); a delayed will stays in it for the router to publish when due, so it
   * is cancelled by a reconnect to any gateway and survives this gateway's restart. The session
   * leaves this gateway's memory either way.
   */
  override connectionClosed(session: Session, owner: SessionOwner, will: Will | undefined): void {
    const claim = this.claims.get(session.clientId);
    if (session.owner !== owner || !claim) {
      super.connectionClosed(session, owner, will);
      return;
    }
    session.detach();
    for (const d of session.takeShared()) this.dispatchShared(d.shared!, d.msg, session.clientId);
    const now = Date.now();
    const delay = will ? Math.min(will.delaySeconds, session.persistent ? session.expiryInterval : 0) : 0;
    if (!claim.fenced) {
      const offline: PersistedSession = { ...session.snapshot(), ...this.ownership(claim), owner: null, disconnectedAt: now };
      if (will && delay > 0) Object.assign(offline, { will: encodeWill(will), willAt: now + delay * 1000 });
      void this.deps.sessions.save(offline);
    }
    this.release(session);
    // Published here when due now; never when the router released the session (it publishes that will).
    if (will && delay <= 0 && !claim.releasedByRouter) this.publishWill(will);
  }

  /** Forgets a session here without touching its stored record. */
  private release(session: Session): void {
    this.forget(session);
    const claim = this.claims.get(session.clientId);
    if (claim) for (const w of claim.waiters) (clearTimeout(w.timer), w.resolve(undefined));
    this.claims.delete(session.clientId);
  }

  protected override discard(session: Session, reason: SessionEndReason): void {
    this.claims.delete(session.clientId);
    super.discard(session, reason);
  }

  /**
   * Another process wrote a client's record. A record that supersedes the local claim (a newer
   * claim elsewhere, or the router's release after this gateway's lease lapsed) fences the
   * session: the connection gets 0x8E. A stale write, or a removal, is answered by restating the claim.
   */
  private remoteChange(clientId: string, value: Buffer | null, offset: number): void {
    const claim = this.claims.get(clientId);
    const session = this.sessions.get(clientId);
    if (!claim || !session || claim.fenced) return;
    const rec = value === null ? undefined : this.records.read(clientId, value, offset);
    const mine = { ...this.ownership(claim), clientId, expiryInterval: 0, subscriptions: [], disconnectedAt: null };
    if (rec && supersedes(rec, mine) && !sameClaim(rec, mine)) {
      claim.fenced = true;
      claim.releasedByRouter = !rec.owner;
      this.log.info({ clientId, by: rec.owner ?? 'router (lease lapsed)', epoch: epochOf(rec) }, 'session claimed elsewhere: disconnecting');
      if (session.owner) session.owner.kick(0x8e);
      else this.release(session);
    } else if (!rec || !sameClaim(rec, mine)) {
      void this.deps.sessions.save(this.record(session));
    }
  }

  /** The base broker routes published messages itself; scaled out, the router does. */
  protected override route(): void {}

  /**
   * One batch of this gateway's downlink: route acknowledgements and deliveries. A session that
   * falls behind reads its QoS 1/2 messages back from the messages topic (its backlog) instead
   * of holding up the downlink; while a connected session's queue is filling, reading the
   * downlink waits as the gateway's publishers do (flow control, at most a fraction of a second
   * per session before it is marked slow), so a burst such as a restarted router catching up
   * is delivered rather than sent to the backlog.
   */
  private async fromRouter(records: ConsumedRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      const ackHeader = rec.headers[ACK_HEADER];
      if (ackHeader !== undefined) {
        const ack = parseAck(ackHeader);
        if (ack && rec.key !== null) this.acknowledged(rec.key, ack);
        continue;
      }
      if (rec.value === null) continue;
      if (rec.headers[BUNDLE_HEADER] === undefined) {
        this.log.warn({ offset: rec.offset }, 'downlink record in an unknown format skipped (a router of another version?)');
        continue;
      }
      const deliveries: BundledDelivery[] = [];
      try {
        decodeBundle(rec.value, (d) => deliveries.push(d));
      } catch (err) {
        this.log.warn({ offset: rec.offset, err: (err as Error).message }, 'undecodable downlink record: the deliveries before the damage are kept');
      }
      for (const d of deliveries) {
        let msg: Message;
        try {
          msg = decodeMessage(d.value, d.offset);
        } catch (err) {
          this.log.warn({ offset: d.offset, err: (err as Error).message }, 'undecodable message in a downlink bundle skipped');
          continue;
        }
        this.deliverLocal(msg, d.shared);
        if (this.flow.engaged) await this.flow.whenClear();
      }
    }
  }

  private acknowledged(clientId: string, ack: RouteAck): void {
    const claim = this.claims.get(clientId);
    if (!claim || ack.epoch !== claim.epoch) return;
    // Everything routed to the session before `from` is already ahead of this marker in the
    // downlink: a message below it arriving later is a router's re-run after a restart.
    const session = this.sessions.get(clientId);
    if (session && ack.from > session.lastOffset + 1) session.lastOffset = ack.from - 1;
    const waiting = claim.waiters;
    claim.waiters = [];
    for (const w of waiting) {
      if (w.ack <= ack.ack) {
        clearTimeout(w.timer);
        w.resolve(ack);
      } else claim.waiters.push(w);
    }
  }

  /**
   * Delivers a routed message to the local sessions it matches. A message at or below a
   * session's last offset was delivered already (the router re-routes its last batch after a
   * restart): dropped, so QoS 2 stays exactly once.
   */
  private deliverLocal(msg: Message, sharedHeader: string | undefined): void {
    const offset = msg.offset;
    const picks = sharedHeader === undefined ? undefined : parseSharedPicks(sharedHeader).map(([key, clientId]) => {
      const s = this.sessions.get(clientId);
      return { key, session: s, last: s ? s.lastOffset : 0 };
    });
    for (const route of this.router.routes(msg.topic)) {
      const s = this.sessions.get(route.clientId);
      if (!s || !this.live(s, msg, sharedHeader) || offset <= s.lastOffset) continue;
      const d = deliveryFor(route, msg);
      if (d) s.deliver(d);
    }
    if (!picks) return;
    for (const { key, session, last } of picks) {
      const group = this.router.sharedGroups(msg.topic).find((g) => g.key === key);
      const options = session && group?.members.get(session.clientId);
      if (!session || !group || !options) {
        // The picked member left (or unsubscribed) meanwhile: another member here takes it.
        if (group) this.dispatchShared(group, msg);
        continue;
      }
      if (!this.live(session, msg, sharedHeader) || offset <= last) continue;
      const ids = options.subscriptionId !== undefined ? [options.subscriptionId] : undefined;
      session.deliver({ msg, qos: Math.min(msg.qos, options.qos) as QoS, retain: options.retainAsPublished && msg.retain, subscriptionIds: ids, shared: group });
    }
  }

  /** False while the session is being resumed: the message is held and delivered after the replay. */
  private live(session: Session, msg: Message, sharedHeader: string | undefined): boolean {
    const held = this.claims.get(session.clientId)?.held;
    if (held === undefined) return true;
    if (held[held.length - 1]?.[0] !== msg) {
      // Bounded like the session's queue: the oldest goes first.
      if (held.length >= this.limits.maxQueue) {
        held.shift();
        this.metrics.dropped('queue_full');
      }
      held.push([msg, sharedHeader]);
    }
    return false;
  }

}

/** Resumed sessions share a replay pass when their start offsets are at most this many records apart. */
const REPLAY_SHARE_RANGE = 100_000;

function waitAtMost(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

function newClaim(epoch: number, will: Will | undefined, resuming: boolean): Claim {
  return { epoch, claimedAt: Date.now(), ack: 0, will: encodeWill(will), held: resuming ? [] : undefined, waiters: [], fenced: false, releasedByRouter: false };
}

function encodeWill(will: Will | undefined): Claim['will'] {
  return will ? { message: encodeMessage(will.message).toString('base64'), delaySeconds: will.delaySeconds } : undefined;
}


