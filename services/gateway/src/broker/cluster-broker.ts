import { randomUUID } from 'node:crypto';
import type { ConsumedRecord, Consumer, Table } from '@tributary/backbone';
import { decodeMessage, encodeMessage, Message, QoS } from '@tributary/mqtt';
import {
  ACK_HEADER,
  downlinkTopic,
  epochOf,
  GATEWAYS_TABLE,
  GatewayLease,
  OFFSET_HEADER,
  parseAck,
  parseSharedPicks,
  RouteAck,
  SESSIONS_TABLE,
  SHARED_HEADER,
} from '@tributary/router';
import { NEVER_EXPIRES, Session } from '../session/session';
import type { PersistedSession, SessionOwner, Will } from '../session/types';
import { Broker, BrokerDeps, deliveryFor, MESSAGES_TOPIC, OpenedSession, OpenSessionRequest, RestoredSession } from './broker';

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
  private table!: Table;
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
    this.table.onRemoteChange = (clientId, value) => this.remoteChange(clientId, value);
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
    return this.leases.set(this.cluster.gateway, Buffer.from(JSON.stringify(lease)));
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
   */
  override openSession(req: OpenSessionRequest): Promise<OpenedSession> {
    const previous = this.claims.get(req.clientId);
    if (this.sessions.has(req.clientId) && previous && !previous.fenced) {
      // Takeover on this gateway: the base broker kicks the old connection (or discards the
      // session on a clean start); the claim carries over with a new epoch.
      const opened = super.openSession(req) as OpenedSession;
      const claim = newClaim(previous.epoch + 1, req.will);
      claim.held = undefined;
      this.claims.set(req.clientId, claim);
      return this.confirm(opened.session).then(() => opened);
    }
    return this.resume(req);
  }

  private async resume(req: OpenSessionRequest): Promise<OpenedSession> {
    const now = Date.now();
    const stored = this.stored(req.clientId);
    const claim = newClaim(epochOf(stored) + 1, req.will);
    this.claims.set(req.clientId, claim);
    let restored: RestoredSession | undefined;
    const live = stored && stored.expiryInterval > 0 && (stored.expiryInterval === NEVER_EXPIRES || (stored.disconnectedAt ?? now) + stored.expiryInterval * 1000 > now);
    if (stored && live && !req.cleanStart && stored.cursor !== undefined) {
      restored = this.restoreSession(stored, now);
    } else {
      this.sessions.set(req.clientId, new Session(req.clientId, req.protocolVersion, this.limits, this));
    }
    const session = this.sessions.get(req.clientId)!;
    session.expiryInterval = req.expiryInterval;
    if (restored) {
      // The replay must reach where the router's routing with this claim begins: wait for its acknowledgement.
      await this.confirm(session);
      if (!claim.fenced) {
        const replayed = await this.replay(new Map([[req.clientId, restored]]));
        this.log.debug({ clientId: req.clientId, replayed, cursor: restored.cursor }, 'session resumed');
      }
    } else {
      // A new session has nothing routed to it yet: the claim is written (it fences any other
      // owner) and CONNACK need not wait; SUBACK waits for the router instead.
      await this.deps.sessions.save(this.record(session));
    }
    if (claim.fenced) throw new Error('the session was claimed by another connection meanwhile');
    const held = claim.held ?? [];
    claim.held = undefined;
    for (const [msg, shared] of held) this.deliverLocal(msg, shared);
    return { session, present: restored !== undefined };
  }

  /** The latest stored record of a client (this table follows every gateway's writes). */
  private stored(clientId: string): (PersistedSession & { epoch?: number }) | undefined {
    const raw = this.table.get(clientId);
    return raw ? (JSON.parse(raw.toString('utf8')) as PersistedSession) : undefined;
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

  protected override record(session: Session): PersistedSession {
    const base = session.snapshot();
    const claim = this.claims.get(session.clientId);
    if (!claim || (!session.owner && claim.held === undefined)) return base;
    return {
      ...base,
      owner: this.cluster.gateway,
      incarnation: this.incarnation,
      epoch: claim.epoch,
      claimedAt: claim.claimedAt,
      ack: claim.ack,
      will: claim.will,
      disconnectedAt: null,
    };
  }

  override persist(session: Session): Promise<void> {
    return this.claims.get(session.clientId)?.fenced ? Promise.resolve() : super.persist(session);
  }

  override connectionClosed(session: Session, owner: SessionOwner, will: Will | undefined): void {
    const claim = this.claims.get(session.clientId);
    if (session.owner !== owner || !claim) {
      super.connectionClosed(session, owner, will);
      return;
    }
    session.detach();
    for (const d of session.takeShared()) this.dispatchShared(d.shared!, d.msg, session.clientId);
    if (claim.fenced) {
      // Taken over by another gateway, which owns the record now.
      this.release(session);
    } else if (session.persistent) {
      // The record says offline (owner cleared by record()); the session leaves this gateway.
      this.claims.delete(session.clientId);
      const record: PersistedSession = { ...session.snapshot(), epoch: claim.epoch } as PersistedSession;
      void this.deps.sessions.save(record);
      this.release(session);
    } else {
      this.claims.delete(session.clientId);
      this.discard(session);
    }
    if (will && !claim.fenced) this.scheduleWill(session.clientId, will, session.persistent ? session.expiryInterval : 0);
    else if (will && will.delaySeconds === 0) this.publishWill(will);
  }

  /** Forgets a session here without touching its stored record. */
  private release(session: Session): void {
    session.ended = true;
    for (const filter of session.subscriptions.keys()) this.router.unsubscribe(session.clientId, filter);
    session.clear();
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    const claim = this.claims.get(session.clientId);
    if (claim) for (const w of claim.waiters) (clearTimeout(w.timer), w.resolve(undefined));
    this.claims.delete(session.clientId);
  }

  protected override discard(session: Session): void {
    this.claims.delete(session.clientId);
    super.discard(session);
  }

  /** Another process wrote a client's record: a newer claim elsewhere fences the local session. */
  private remoteChange(clientId: string, value: Buffer | null): void {
    const claim = this.claims.get(clientId);
    const session = this.sessions.get(clientId);
    if (!claim || !session || value === null) return;
    const rec = JSON.parse(value.toString('utf8')) as PersistedSession;
    const epoch = epochOf(rec);
    if (epoch > claim.epoch || (epoch === claim.epoch && rec.owner !== this.cluster.gateway)) {
      claim.fenced = true;
      this.log.info({ clientId, by: rec.owner ?? 'router (lease lapsed)', epoch }, 'session claimed elsewhere: disconnecting');
      if (session.owner) session.owner.kick(0x8e);
      else this.release(session);
    } else if (epoch < claim.epoch) {
      // A fenced owner's late write: restate this claim.
      void this.deps.sessions.save(this.record(session));
    }
  }

  /** The base broker routes published messages itself; scaled out, the router does. */
  protected override retainAndRoute(msg: Message): Promise<unknown> | undefined {
    if (msg.retain && this.deps.config.mqtt.retain_available) this.deps.retained.setLocal(msg);
    return this.mappings?.copy(msg);
  }

  /**
   * One batch of this gateway's downlink: route acknowledgements and deliveries. When a
   * session's queue fills up (a burst, e.g. a restarted router catching up), reading the
   * downlink waits for it to drain, up to MAX_STALL_MS; after that the session's queue drops
   * per its policy (mqtt.max_mqueue_len) rather than stalling every other session here.
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
      const msg = decodeMessage(rec.value, Number(rec.headers[OFFSET_HEADER] ?? -1));
      const congested = this.deliverLocal(msg, rec.headers[SHARED_HEADER]);
      if (congested) await waitAtMost(congested.whenDrained(), MAX_STALL_MS);
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
  private deliverLocal(msg: Message, sharedHeader: string | undefined): Session | undefined {
    let congested: Session | undefined;
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
      if (s.congested) congested = s;
    }
    if (!picks) return congested;
    for (const { key, session, last } of picks) {
      if (!session || !this.live(session, msg, sharedHeader) || offset <= last) continue;
      const group = this.router.sharedGroups(msg.topic).find((g) => g.key === key);
      const options = group?.members.get(session.clientId);
      if (!group || !options) continue;
      const ids = options.subscriptionId !== undefined ? [options.subscriptionId] : undefined;
      session.deliver({ msg, qos: Math.min(msg.qos, options.qos) as QoS, retain: options.retainAsPublished && msg.retain, subscriptionIds: ids, shared: group });
      if (session.congested) congested = session;
    }
    return congested;
  }

  /** False while the session is being resumed: the message is held and delivered after the replay. */
  private live(session: Session, msg: Message, sharedHeader: string | undefined): boolean {
    const held = this.claims.get(session.clientId)?.held;
    if (held === undefined) return true;
    if (held[held.length - 1]?.[0] !== msg) held.push([msg, sharedHeader]);
    return false;
  }

}

/** Longest time the downlink waits for one full session queue to drain. */
const MAX_STALL_MS = 10_000;

function waitAtMost(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

function newClaim(epoch: number, will: Will | undefined): Claim {
  return { epoch, claimedAt: Date.now(), ack: 0, will: encodeWill(will), held: [], waiters: [], fenced: false };
}

function encodeWill(will: Will | undefined): Claim['will'] {
  return will ? { message: encodeMessage(will.message).toString('base64'), delaySeconds: will.delaySeconds } : undefined;
}


