import type { Backbone, ConsumedRecord, Consumer, ProducerRecord, Table } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import { decodeMessage, Message, MESSAGE_HEADERS } from '@tributary/mqtt';
import {
  ACK_HEADER,
  downlinkTopic,
  epochOf,
  formatAck,
  formatSharedPicks,
  GATEWAYS_TABLE,
  GatewayLease,
  OFFSET_HEADER,
  RoutedSession,
  SESSIONS_TABLE,
  SHARED_HEADER,
} from './cluster';
import { Router } from './router';
import type { SharedStrategy } from './shared';

const NEVER_EXPIRES = 0xffffffff;

export interface RouterServiceOptions {
  backbone: Backbone;
  logger: Logger;
  /** The messages topic (logical name). */
  messagesTopic: string;
  strategy: SharedStrategy;
  /** How long a gateway's lease lasts without renewal (ms). */
  leaseMs: number;
  /** Consumer group of the messages topic (routers sharing it split the partitions). */
  group?: string;
}

export interface RouterStats {
  'router.sessions': number;
  'router.subscriptions': number;
  'router.messages': number;
  'router.deliveries': number;
  'router.unrouted': number;
  'router.acks': number;
  'router.orphaned': number;
  'router.wills': number;
  'router.expired': number;
}

/**
 * The router service (`tributary router`): keeps the subscription table of every connected
 * session from the compacted sessions table, reads the messages topic in a consumer group and
 * appends each message once to the downlink topic of every gateway with a matching subscriber
 * (shared subscriptions: to the gateway of the member it picks). Offsets are committed only
 * after those appends are durable, so a router killed mid-batch routes the batch again on
 * restart (gateways drop what they already delivered by offset).
 *
 * It also acknowledges session records (claims, subscription changes) with a marker in the
 * owner's downlink, and watches gateway leases: when a gateway's lease lapses or the gateway
 * restarts, its clients' wills are published and their sessions released or removed.
 */
export class RouterService {
  readonly stats: RouterStats = {
    'router.sessions': 0,
    'router.subscriptions': 0,
    'router.messages': 0,
    'router.deliveries': 0,
    'router.unrouted': 0,
    'router.acks': 0,
    'router.orphaned': 0,
    'router.wills': 0,
    'router.expired': 0,
  };
  private readonly router = new Router();
  private readonly view = new Map<string, RoutedSession>();
  private readonly acked = new Map<string, string>();
  private readonly willTimers = new Map<string, NodeJS.Timeout>();
  private sessions: Table | undefined;
  private gateways: Table | undefined;
  private consumer: Consumer | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  /** Next messages offset this router will route: route acks promise routing from here. -1 until known. */
  private position = -1;
  private readonly log: Logger;

  constructor(private readonly opts: RouterServiceOptions) {
    this.log = opts.logger;
  }

  async start(): Promise<void> {
    const b = this.opts.backbone;
    this.gateways = await b.table(GATEWAYS_TABLE);
    this.sessions = await b.table(SESSIONS_TABLE);
    for (const [clientId, value] of this.sessions.entries()) this.apply(clientId, parse(value), false);
    this.sessions.onRemoteChange = (clientId, value) => this.apply(clientId, value === null ? null : parse(value), true);
    // Gateways waiting on a claim made while no router ran get their acknowledgement now; the
    // position is unknown until the first batch, which is fine: it starts at or before any claim.
    for (const [clientId, s] of this.view) if (s.owner) this.sendAck(clientId, s);
    this.consumer = await b.consume({
      topic: this.opts.messagesTopic,
      group: this.opts.group ?? 'router',
      from: 'latest',
      maxBatch: 2000,
      eachBatch: (records) => this.route(records),
    });
    const every = Math.max(100, Math.min(1000, Math.floor(this.opts.leaseMs / 4)));
    this.ticker = setInterval(() => this.checkLeases(), every);
    this.ticker.unref();
    this.log.info({ sessions: this.view.size, lease: this.opts.leaseMs }, 'router started');
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    for (const t of this.willTimers.values()) clearTimeout(t);
    this.willTimers.clear();
    if (this.sessions) this.sessions.onRemoteChange = undefined;
    await this.consumer?.stop();
  }

  /** One batch of the messages topic: one downlink record per (message, gateway with a match). */
  private route(records: ConsumedRecord[]): Promise<void> | undefined {
    const out = new Map<string, ProducerRecord[]>();
    const targets = new Set<string>();
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      this.position = rec.offset + 1;
      this.stats['router.messages']++;
      const topic = rec.key;
      if (topic === null || rec.value === null) continue;
      targets.clear();
      for (const route of this.router.routes(topic)) {
        const owner = this.view.get(route.clientId)?.owner;
        if (owner) targets.add(owner);
      }
      let picks: Map<string, [string, string][]> | undefined;
      const groups = this.router.sharedGroups(topic);
      if (groups.length) {
        const msg: Message = decodeMessage(rec.value, rec.offset);
        for (const group of groups) {
          const member = group.pick(this.opts.strategy, msg, () => true);
          const owner = member === undefined ? undefined : this.view.get(member)?.owner;
          if (!owner) continue;
          picks ??= new Map();
          let list = picks.get(owner);
          if (!list) picks.set(owner, (list = []));
          list.push([group.key, member!]);
          targets.add(owner);
        }
      }
      if (targets.size === 0) {
        this.stats['router.unrouted']++;
        continue;
      }
      const offset = String(rec.offset);
      for (const gw of targets) {
        const shared = picks?.get(gw);
        const headers: Record<string, string> = { ...MESSAGE_HEADERS, [OFFSET_HEADER]: offset };
        if (shared) headers[SHARED_HEADER] = formatSharedPicks(shared);
        let list = out.get(gw);
        if (!list) out.set(gw, (list = []));
        list.push({ key: topic, value: rec.value, headers, timestamp: rec.timestamp });
        this.stats['router.deliveries']++;
      }
    }
    if (out.size === 0) return undefined;
    const writes: Promise<unknown>[] = [];
    for (const [gw, list] of out) writes.push(this.opts.backbone.append(downlinkTopic(gw), list));
    return Promise.all(writes).then(() => undefined);
  }

  /** Applies a session record (from this table's load or another process) to the routing view. */
  private apply(clientId: string, next: RoutedSession | null, live: boolean): void {
    const prev = this.view.get(clientId);
    // A fenced owner's late write (lower epoch) does not undo a newer claim.
    if (next && prev && epochOf(next) < epochOf(prev)) return;
    if (next && next.owner && epochOf(next) > epochOf(prev)) this.cancelWill(clientId);
    this.setRoutes(clientId, prev, next);
    if (next) this.view.set(clientId, next);
    else {
      this.view.delete(clientId);
      this.acked.delete(clientId);
    }
    this.count();
    if (live && next?.owner) this.sendAck(clientId, next);
  }

  private setRoutes(clientId: string, prev: RoutedSession | undefined, next: RoutedSession | null): void {
    const before = prev?.owner ? prev.subscriptions : [];
    const after = next?.owner ? next.subscriptions : [];
    const keep = new Set(after.map(([f]) => f));
    for (const [filter] of before) if (!keep.has(filter)) this.router.unsubscribe(clientId, filter);
    for (const [filter, options] of after) this.router.subscribe(clientId, filter, options);
  }

  /** Confirms to the owner that messages from `position` on are routed with this record. */
  private sendAck(clientId: string, s: RoutedSession): void {
    const ack = formatAck({ epoch: epochOf(s), ack: s.ack ?? 0, from: this.position });
    const id = `${epochOf(s)}:${s.ack ?? 0}`;
    if (this.acked.get(clientId) === id && this.position >= 0) return;
    this.acked.set(clientId, id);
    this.stats['router.acks']++;
    this.opts.backbone
      .append(downlinkTopic(s.owner!), [{ key: clientId, value: null, headers: { [ACK_HEADER]: ack } }])
      .catch((err: Error) => this.log.warn({ err: err.message, clientId }, 'route acknowledgement failed'));
  }

  private checkLeases(now = Date.now()): void {
    const leases = new Map<string, GatewayLease | null>();
    const leaseOf = (gw: string): GatewayLease | null => {
      let l = leases.get(gw);
      if (l === undefined) {
        const raw = this.gateways!.get(gw);
        l = raw ? (JSON.parse(raw.toString('utf8')) as GatewayLease) : null;
        leases.set(gw, l);
      }
      return l;
    };
    for (const [clientId, s] of this.view) {
      if (s.owner) {
        const lease = leaseOf(s.owner);
        const dead = lease === null
          ? now > this.startedAt + this.opts.leaseMs
          : lease.until < now || (lease.incarnation !== s.incarnation && lease.startedAt > (s.claimedAt ?? 0));
        if (dead) this.orphan(clientId, s, now);
      } else if (s.expiryInterval !== NEVER_EXPIRES && (s.disconnectedAt ?? now) + s.expiryInterval * 1000 <= now) {
        this.stats['router.expired']++;
        this.write(clientId, null);
      }
    }
  }

  /** The owner of `s` died: publish the will (after its delay) and release or remove the session. */
  private orphan(clientId: string, s: RoutedSession, now: number): void {
    this.stats['router.orphaned']++;
    this.log.info({ clientId, gateway: s.owner }, 'gateway lease lapsed: releasing its session');
    if (s.will) {
      const will = s.will;
      const delay = Math.min(will.delaySeconds, s.expiryInterval) * 1000;
      const publish = (): void => {
        this.willTimers.delete(clientId);
        this.stats['router.wills']++;
        const value = Buffer.from(will.message, 'base64');
        const msg = decodeMessage(value);
        this.opts.backbone
          .append(this.opts.messagesTopic, [{ key: msg.topic, value, headers: MESSAGE_HEADERS }])
          .catch((err: Error) => this.log.error({ err: err.message, clientId }, 'will publish failed'));
      };
      if (delay <= 0) publish();
      else this.willTimers.set(clientId, setTimeout(publish, delay));
    }
    const persistent = s.expiryInterval > 0;
    this.write(clientId, persistent ? { ...s, owner: null, incarnation: undefined, will: undefined, disconnectedAt: now, epoch: epochOf(s) + 1 } : null);
  }

  private write(clientId: string, next: RoutedSession | null): void {
    this.apply(clientId, next, false);
    const value = next ? Buffer.from(JSON.stringify(next)) : null;
    this.sessions!.apply([[clientId, value]]).catch((err: Error) => this.log.error({ err: err.message, clientId }, 'session update failed'));
  }

  private cancelWill(clientId: string): void {
    const t = this.willTimers.get(clientId);
    if (t) clearTimeout(t);
    this.willTimers.delete(clientId);
  }

  private count(): void {
    this.stats['router.sessions'] = this.view.size;
    this.stats['router.subscriptions'] = this.router.subscriptionCount;
  }

  /** Connected sessions (for /status). */
  get online(): number {
    let n = 0;
    for (const s of this.view.values()) if (s.owner) n++;
    return n;
  }
}

function parse(value: Buffer): RoutedSession {
  return JSON.parse(value.toString('utf8')) as RoutedSession;
}
