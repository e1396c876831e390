import { randomUUID } from 'node:crypto';
import type { Table } from '@tributary/backbone';
import { resolvesWithin, SessionError } from '@tributary/common';
import { encodeMessage } from '@tributary/mqtt';
import { gatewayLeaseCodec, RecordReader, sessionCodec } from '@tributary/records';
import { epochOf, GATEWAYS_TABLE, GatewayLease, RouteAck, sameClaim, SESSIONS_TABLE, supersedes } from '@tributary/router';
import { NEVER_EXPIRES, Session } from '../session/session';
import type { PersistedSession, SessionOwner, Will } from '../session/types';
import { ReplayBatcher, restoreSession, RestoredSession } from './replay';
import { RouterServiceRouting } from './routing-router';
import type { BrokerCore, OpenedSession, OpenSessionRequest, OwnershipStrategy } from './strategies';

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
  waiters: { ack: number; resolve: (a: RouteAck | undefined) => void; timer: NodeJS.Timeout }[];
  /** Another gateway claimed the session: this one must not write it again. */
  fenced: boolean;
  /** Fenced by the router's release after this gateway's lease lapsed (it publishes the will). */
  releasedByRouter: boolean;
}

/** The strategies of one gateway among several (`tributary gateway`, Kafka backbone). */
export function clusterStrategies(options: ClusterOptions): { routing: RouterServiceRouting; ownership: LeasedOwnership; publishesDelayed: false } {
  const routing = new RouterServiceRouting(options.gateway);
  return { routing, ownership: new LeasedOwnership(options, routing), publishesDelayed: false };
}

/**
 * Ownership when several gateways share the backbone. Sessions are claimed in the sessions table
 * with a fencing epoch, under this gateway's lease (renewed in the gateways table; the router
 * releases the sessions of a gateway whose lease lapsed). A claim by another gateway (takeover)
 * disconnects the local connection with 0x8E. A session resumed here is replayed from its cursor
 * in the messages topic, so every QoS 1/2 message published while it was away arrives, wherever it
 * was connected before. Sessions are restored where their clients reconnect, not at start-up.
 * Claims wait for the router's acknowledgements, which arrive in the downlink (RouterServiceRouting).
 */
export class LeasedOwnership implements OwnershipStrategy {
  readonly incarnation = randomUUID();
  private core!: BrokerCore;
  private readonly claims = new Map<string, Claim>();
  /** Opens in progress per client id (each waits for the one before). */
  private readonly opening = new Map<string, Promise<void>>();
  private replays!: ReplayBatcher;
  private table!: Table;
  private leases!: Table;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** Decodes the sessions table's values; an undecodable one is reported and skipped. */
  private records!: RecordReader<PersistedSession>;
  /** The lease write in flight: stop() waits for it, so it cannot land after the lease's removal. */
  private renewal: Promise<void> | undefined;
  private readonly startedAt = Date.now();

  constructor(
    private readonly cluster: ClusterOptions,
    private readonly routing: RouterServiceRouting,
  ) {
    routing.onAck = (clientId, ack) => this.acknowledged(clientId, ack);
  }

  async start(core: BrokerCore): Promise<void> {
    this.core = core;
    this.replays = new ReplayBatcher(core);
    this.leases = await core.backbone.table(GATEWAYS_TABLE);
    await this.renewLease();
    this.leaseTimer = setInterval(() => {
      this.renewal = this.renewLease().catch((err: Error) => core.log.warn({ err: err.message }, 'gateway lease renewal failed'));
    }, Math.max(100, Math.floor(this.cluster.leaseMs / 3)));
    this.leaseTimer.unref();
    this.table = await core.backbone.table(SESSIONS_TABLE);
    this.records = new RecordReader(sessionCodec, this.table.name, core.log);
    this.table.onRemoteChange = (clientId, value, offset) => this.remoteChange(clientId, value, offset);
    core.log.info({ gateway: this.cluster.gateway, incarnation: this.incarnation, downlink: this.routing.topic }, 'gateway joined the cluster');
  }

  private renewLease(): Promise<void> {
    const now = Date.now();
    const lease: GatewayLease = { incarnation: this.incarnation, startedAt: this.startedAt, until: now + this.cluster.leaseMs };
    return this.leases.set(this.cluster.gateway, gatewayLeaseCodec.encode(lease));
  }

  async stop(): Promise<void> {
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.table.onRemoteChange = undefined;
    await this.renewal;
    // Every session was released by its connection's close: the lease can go.
    await this.leases.delete(this.cluster.gateway);
  }

  /**
   * Claims the session in the sessions table (epoch + 1), waits until the router routes with the
   * claim, and for a resumed session replays what it missed; then the caller sends CONNACK.
   * Opens of one client id run one after the other, so the second is a plain takeover.
   */
  open(req: OpenSessionRequest): Promise<OpenedSession> {
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
    if (this.core.session(req.clientId) && previous && !previous.fenced) {
      // Takeover on this gateway: the core kicks the old connection (or discards the session on
      // a clean start); the claim carries over with a new epoch.
      const opened = this.core.openHere(req);
      this.claims.set(req.clientId, newClaim(previous.epoch + 1, req.will));
      return this.confirm(opened.session).then(() => opened);
    }
    return this.resume(req);
  }

  private async resume(req: OpenSessionRequest): Promise<OpenedSession> {
    const id = req.clientId;
    // Read the record only once this copy has every write made before: a client that just
    // left another gateway must be resumed from where it left, not from an older state.
    if (this.table.sync) await resolvesWithin(this.table.sync(), this.cluster.ackTimeoutMs);
    const now = Date.now();
    const stored = this.stored(id);
    const claim = newClaim(epochOf(stored) + 1, req.will);
    this.claims.set(id, claim);
    // Deliveries arriving while the session is being resumed wait for its replay.
    this.routing.hold(id);
    try {
      let restored: RestoredSession | undefined;
      const alive = stored && stored.expiryInterval > 0 && (stored.expiryInterval === NEVER_EXPIRES || (stored.disconnectedAt ?? now) + stored.expiryInterval * 1000 > now);
      if (stored && alive && !req.cleanStart && stored.cursor !== undefined) restored = restoreSession(this.core, stored, now);
      else this.core.newSession(id, req.protocolVersion);
      const session = this.core.session(id)!;
      session.expiryInterval = req.expiryInterval;
      session.client = req.client;
      if (restored) {
        // The replay must reach where the router's routing with this claim begins: wait for its acknowledgement.
        await this.confirm(session);
        this.check(claim, id);
        await this.replays.replay(restored);
        this.core.log.debug({ clientId: id, cursor: restored.cursor }, 'session resumed');
      } else {
        // A new session has nothing routed to it yet: the claim is written (it fences any other
        // owner) and CONNACK need not wait; SUBACK waits for the router instead.
        await this.core.store.save(this.record(session));
      }
      this.check(claim, id);
      this.routing.deliverHeld(id);
      this.core.hooks.notify(restored ? 'session.resumed' : 'session.created', req.client);
      return { session, present: restored !== undefined };
    } catch (err) {
      // Nothing half-open stays behind: the client may retry here or anywhere.
      if (this.claims.get(id) === claim) {
        const s = this.core.session(id);
        if (s) this.release(s);
        this.dropClaim(id);
      }
      throw err;
    }
  }

  private check(claim: Claim, clientId: string): void {
    if (claim.fenced || this.claims.get(clientId) !== claim) throw new SessionError('SESSION_TAKEN_OVER', 'the session was claimed by another connection meanwhile');
  }

  /** The latest stored record of a client (this table follows every gateway's writes). */
  private stored(clientId: string): PersistedSession | undefined {
    const raw = this.table.get(clientId);
    return raw && this.records.read(clientId, raw, this.table.offsetOf(clientId));
  }

  confirmSubscriptions(session: Session): Promise<void> {
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
        this.core.log.warn({ clientId: session.clientId, timeout: this.cluster.ackTimeoutMs }, 'no route acknowledgement from the router in time; going on');
        resolve(undefined);
      }, this.cluster.ackTimeoutMs);
      claim.waiters.push({ ack, resolve, timer });
    });
    return this.core.store.save(this.record(session)).then(() => acked);
  }

  /** The record of a claimed session: its state plus ownership, the will and the confirmation number. */
  record(session: Session): PersistedSession {
    const base = session.snapshot();
    const claim = this.claims.get(session.clientId);
    if (!claim) return base;
    return { ...base, ...this.ownership(claim), ack: claim.ack, will: claim.will, disconnectedAt: null };
  }

  private ownership(claim: Claim): Pick<PersistedSession, 'owner' | 'incarnation' | 'epoch' | 'claimedAt'> {
    return { owner: this.cluster.gateway, incarnation: this.incarnation, epoch: claim.epoch, claimedAt: claim.claimedAt };
  }

  mayWrite(session: Session): boolean {
    return !this.claims.get(session.clientId)?.fenced;
  }

  /**
   * A connection ended. Unless another process took the session over, its record goes offline
   * (same claim, no owner); a delayed will stays in it for the router to publish when due, so it
   * is cancelled by a reconnect to any gateway and survives this gateway's restart. The session
   * leaves this gateway's memory either way.
   */
  connectionClosed(session: Session, owner: SessionOwner, will: Will | undefined): void {
    const claim = this.claims.get(session.clientId);
    if (session.owner !== owner || !claim) {
      this.core.closeHere(session, owner, will);
      return;
    }
    session.detach();
    for (const d of session.takeShared()) this.core.dispatchShared(d.shared!, d.msg, session.clientId);
    const now = Date.now();
    const delay = will ? Math.min(will.delaySeconds, session.persistent ? session.expiryInterval : 0) : 0;
    if (!claim.fenced) {
      const offline: PersistedSession = { ...session.snapshot(), ...this.ownership(claim), owner: null, disconnectedAt: now };
      if (will && delay > 0) Object.assign(offline, { will: encodeWill(will), willAt: now + delay * 1000 });
      void this.core.store.save(offline);
    }
    this.release(session);
    // Published here when due now; never when the router released the session (it publishes that will).
    if (will && delay <= 0 && !claim.releasedByRouter) this.core.publishWill(will);
  }

  /** Forgets a session here without touching its stored record. */
  private release(session: Session): void {
    this.core.forget(session);
    const claim = this.claims.get(session.clientId);
    if (claim) for (const w of claim.waiters) (clearTimeout(w.timer), w.resolve(undefined));
    this.dropClaim(session.clientId);
  }

  discarded(session: Session): void {
    this.dropClaim(session.clientId);
  }

  /** The claim goes, and with it what was held for the session's resume. */
  private dropClaim(clientId: string): void {
    this.claims.delete(clientId);
    this.routing.dropHeld(clientId);
  }

  /**
   * Another process wrote a client's record. A record that supersedes the local claim (a newer
   * claim elsewhere, or the router's release after this gateway's lease lapsed) fences the
   * session: the connection gets 0x8E. A stale write, or a removal, is answered by restating the claim.
   */
  private remoteChange(clientId: string, value: Buffer | null, offset: number): void {
    const claim = this.claims.get(clientId);
    const session = this.core.session(clientId);
    if (!claim || !session || claim.fenced) return;
    const rec = value === null ? undefined : this.records.read(clientId, value, offset);
    const mine = { ...this.ownership(claim), clientId, expiryInterval: 0, subscriptions: [], disconnectedAt: null };
    if (rec && supersedes(rec, mine) && !sameClaim(rec, mine)) {
      claim.fenced = true;
      claim.releasedByRouter = !rec.owner;
      this.core.log.info({ clientId, by: rec.owner ?? 'router (lease lapsed)', epoch: epochOf(rec) }, 'session claimed elsewhere: disconnecting');
      if (session.owner) session.owner.kick(0x8e);
      else this.release(session);
    } else if (!rec || !sameClaim(rec, mine)) {
      void this.core.store.save(this.record(session));
    }
  }

  /** A route acknowledgement from the router (in the downlink). */
  private acknowledged(clientId: string, ack: RouteAck): void {
    const claim = this.claims.get(clientId);
    if (!claim || ack.epoch !== claim.epoch) return;
    // Everything routed to the session before `from` is already ahead of this marker in the
    // downlink: a message below it arriving later is a router's re-run after a restart.
    const session = this.core.session(clientId);
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
}

function newClaim(epoch: number, will: Will | undefined): Claim {
  return { epoch, claimedAt: Date.now(), ack: 0, will: encodeWill(will), waiters: [], fenced: false, releasedByRouter: false };
}

function encodeWill(will: Will | undefined): Claim['will'] {
  return will ? { message: encodeMessage(will.message).toString('base64'), delaySeconds: will.delaySeconds } : undefined;
}
