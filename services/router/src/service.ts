import { hookMessage, type HookRegistry } from '@tributary/hooks';
import type { Backbone, ConsumedRecord, Consumer, ProducerRecord, Table } from '@tributary/backbone';
import { type Logger, resolvesWithin } from '@tributary/common';
import { decodeMessage, encodeMessage, Message, messageRecord, PUBLISHER_HEADERS, publisherOf } from '@tributary/mqtt';
import { GatewayLease, gatewayLeaseCodec, RecordReader, SessionRecord, sessionCodec } from '@tributary/records';
import {
  ACK_HEADER,
  BUNDLE_HEADER,
  BUNDLE_MAX_BYTES,
  BundledDelivery,
  bundleSize,
  downlinkTopic,
  bundleVersion,
  encodeBundle,
  epochOf,
  formatAck,
  formatSharedPicks,
  GATEWAYS_TABLE,
  RETAINED_TABLE,
  SESSIONS_TABLE,
  supersedes,
} from './cluster';
import { Router } from './router';
import type { SharedGroup, SharedStrategy } from './shared';

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
  /** Scaled out, "no subscribers" is known here: message.dropped fires in this process. */
  hooks?: HookRegistry;
  /**
   * Tracing (services/observability): called for each message whose record carries a
   * `traceparent` header, with the gateways it goes to (none: no subscriber); the function it
   * returns is called once the downlink appends are durable (with the error if they failed).
   */
  traceRoute?: (topic: string, traceparent: string, gateways: readonly string[]) => (err?: Error) => void;
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
  'router.invalid': number;
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
    'router.invalid': 0,
  };
  private readonly router = new Router();
  /** Every session record, whole: the router writes them back (release, will) with all their fields. */
  private readonly view = new Map<string, SessionRecord>();
  private readonly acked = new Map<string, string>();
  /** When this router last read each gateway's lease (its own clock: no clock-skew between hosts). */
  private readonly leases = new Map<string, GatewayLease & { seenAt: number }>();
  private sessions: Table | undefined;
  private gateways: Table | undefined;
  /** A sync of the gateways table before releasing sessions is in progress. */
  private verifying = false;
  private consumer: Consumer | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  /** Kafka did not answer this process for a third of a lease (up to 2 s): lease checks wait. */
  private backboneSilent = false;
  /** When Kafka answered again after a silence (0: never silent). */
  private silentUntil = 0;
  /** Next messages offset this router will route: route acks promise routing from here. -1 until known. */
  private position = -1;
  private readonly log: Logger;
  private readonly leaseRecords: RecordReader<GatewayLease>;
  private readonly sessionRecords: RecordReader<SessionRecord>;

  constructor(private readonly opts: RouterServiceOptions) {
    this.log = opts.logger;
    this.leaseRecords = new RecordReader(gatewayLeaseCodec, GATEWAYS_TABLE, this.log);
    this.sessionRecords = new RecordReader(sessionCodec, SESSIONS_TABLE, this.log);
  }

  async start(): Promise<void> {
    const b = this.opts.backbone;
    this.gateways = await b.table(GATEWAYS_TABLE);
    const gateways = this.gateways;
    const seen = (gw: string, value: Buffer | null, offset: number | undefined): void => {
      const lease = value === null ? undefined : this.read(this.leaseRecords, gw, value, offset);
      if (lease) this.leases.set(gw, { ...lease, seenAt: Date.now() });
      else this.leases.delete(gw);
    };
    for (const [gw, value] of gateways.entries()) seen(gw, value, gateways.offsetOf(gw));
    gateways.onRemoteChange = seen;
    const sessions = (this.sessions = await b.table(SESSIONS_TABLE));
    for (const [clientId, value] of sessions.entries()) this.apply(clientId, this.read(this.sessionRecords, clientId, value, sessions.offsetOf(clientId)) ?? null, false);
    sessions.onRemoteChange = (clientId, value, offset) => {
      const next = value === null ? null : this.read(this.sessionRecords, clientId, value, offset);
      if (next !== undefined) this.apply(clientId, next, true);
    };
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
    if (this.sessions) this.sessions.onRemoteChange = undefined;
    if (this.gateways) this.gateways.onRemoteChange = undefined;
    await this.consumer?.stop();
  }

  /** A record another process wrote; undefined (reported by the reader, counted) when it does not decode. */
  private read<T>(reader: RecordReader<T>, key: string, value: Buffer, offset: number | undefined): T | undefined {
    const record = reader.read(key, value, offset);
    if (record === undefined) this.stats['router.invalid']++;
    return record;
  }

  /** message.dropped for a message no session subscribes to (decoded only when a hook wants it). */
  private dropped(rec: ConsumedRecord): void {
    try {
      const msg = decodeMessage(rec.value!, rec.offset);
      // The publisher's identity, when its gateway wrote the publisher headers (a rule wants them).
      const publisher = publisherOf(rec.headers);
      if (publisher) {
        msg.username = publisher.username;
        msg.publisher = publisher;
      }
      this.opts.hooks!.notify('message.dropped', hookMessage(msg), 'no_subscribers');
    } catch (err) {
      this.log.warn({ offset: rec.offset, err: (err as Error).message }, 'undecodable record in the messages topic skipped');
    }
  }

  /** One batch of the messages topic: to every gateway with a match, its deliveries as one bundle record. */
  private route(records: ConsumedRecord[]): Promise<void> | undefined {
    const out = new Map<string, BundledDelivery[]>();
    const targets = new Set<string>();
    const traceRoute = this.opts.traceRoute;
    let traced: ((err?: Error) => void)[] | undefined;
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
        let msg: Message;
        try {
          msg = decodeMessage(rec.value, rec.offset);
        } catch (err) {
          this.stats['router.invalid']++;
          this.log.warn({ offset: rec.offset, err: (err as Error).message }, 'undecodable record in the messages topic skipped');
          continue;
        }
        for (const group of groups) {
          const member = this.pick(group, msg);
          const owner = member === undefined ? undefined : this.view.get(member)?.owner;
          if (!owner) continue;
          picks ??= new Map();
          let list = picks.get(owner);
          if (!list) picks.set(owner, (list = []));
          list.push([group.key, member!]);
          targets.add(owner);
        }
      }
      if (traceRoute !== undefined && rec.headers.traceparent !== undefined) {
        const end = traceRoute(topic, rec.headers.traceparent, [...targets]);
        if (targets.size === 0) end();
        else (traced ??= []).push(end);
      }
      if (targets.size === 0) {
        this.stats['router.unrouted']++;
        if (this.opts.hooks?.wants('message.dropped', topic)) this.dropped(rec);
        continue;
      }
      for (const gw of targets) {
        const shared = picks?.get(gw);
        let list = out.get(gw);
        if (!list) out.set(gw, (list = []));
        list.push({ offset: rec.offset, value: rec.value, shared: shared && formatSharedPicks(shared), username: rec.headers[PUBLISHER_HEADERS.username] });
        this.stats['router.deliveries']++;
      }
    }
    if (out.size === 0) return undefined;
    const writes: Promise<unknown>[] = [];
    for (const [gw, list] of out) writes.push(this.opts.backbone.append(downlinkTopic(gw), bundles(list)));
    const done = Promise.all(writes);
    if (traced === undefined) return done.then(() => undefined);
    const spans = traced;
    return done.then(
      () => spans.forEach((end) => end()),
      (err: Error) => {
        spans.forEach((end) => end(err));
        throw err;
      },
    );
  }

  /**
   * The member of a `$share` group that gets `msg`. Random and round-robin choices are derived
   * from the message's offset, so a batch routed again after a restart goes to the same members
   * (each drops what it already has) instead of a second one.
   */
  private pick(group: SharedGroup, msg: Message): string | undefined {
    const strategy = this.opts.strategy;
    if (strategy !== 'random' && strategy !== 'round_robin' && strategy !== 'round_robin_per_group') return group.pick(strategy, msg, () => true);
    const ids = [...group.members.keys()].sort();
    return ids.length ? ids[(strategy === 'random' ? mix(msg.offset) : msg.offset) % ids.length] : undefined;
  }

  /** Applies a session record (from this table's load or another process) to the routing view. */
  private apply(clientId: string, next: SessionRecord | null, live: boolean): void {
    const prev = this.view.get(clientId);
    if (next && !supersedes(next, prev)) {
      // A fenced owner's late write. A claim's owner restates its own record; an offline or
      // released record has no owner to do it, so the router does.
      if (live && prev && !prev.owner) this.write(clientId, prev);
      return;
    }
    if (!sameRoutes(prev, next)) this.setRoutes(clientId, prev, next);
    if (next) this.view.set(clientId, next);
    else {
      this.view.delete(clientId);
      this.acked.delete(clientId);
    }
    this.count();
    if (live && next?.owner) this.sendAck(clientId, next);
  }

  private setRoutes(clientId: string, prev: SessionRecord | undefined, next: SessionRecord | null): void {
    const before = prev?.owner ? prev.subscriptions : [];
    const after = next?.owner ? next.subscriptions : [];
    const keep = new Set(after.map(([f]) => f));
    for (const [filter] of before) if (!keep.has(filter)) this.router.unsubscribe(clientId, filter);
    for (const [filter, options] of after) this.router.subscribe(clientId, filter, options);
  }

  /** Confirms to the owner that messages from `position` on are routed with this record. */
  private sendAck(clientId: string, s: SessionRecord): void {
    const ack = formatAck({ epoch: epochOf(s), ack: s.ack ?? 0, from: this.position });
    const id = `${epochOf(s)}:${s.ack ?? 0}`;
    if (this.acked.get(clientId) === id && this.position >= 0) return;
    this.acked.set(clientId, id);
    this.stats['router.acks']++;
    this.opts.backbone
      .append(downlinkTopic(s.owner!), [{ key: clientId, value: null, headers: { [ACK_HEADER]: ack } }])
      .catch((err: Error) => this.log.warn({ err: err.message, clientId }, 'route acknowledgement failed'));
  }

  /**
   * Once per tick: sessions of gateways whose lease lapsed (or that restarted) are released,
   * offline wills whose delay elapsed are published, expired offline sessions are removed.
   */
  private checkLeases(now = Date.now()): void {
    // While this process cannot hear Kafka (paused, unreachable), neither can the gateways renew
    // their leases: none is judged then, and each gets a whole lease once Kafka answers again.
    if ((this.opts.backbone.sinceContact?.() ?? 0) > Math.min(2000, this.opts.leaseMs / 3)) {
      this.backboneSilent = true;
      return;
    }
    if (this.backboneSilent) {
      this.backboneSilent = false;
      for (const lease of this.leases.values()) lease.seenAt = Math.max(lease.seenAt, now);
      this.silentUntil = now;
      this.log.info('kafka answers again: gateway leases restart from now');
      return;
    }
    let dead: string[] | undefined;
    for (const [clientId, s] of this.view) {
      if (s.owner) {
        if (this.ownerDead(s, now)) (dead ??= []).push(clientId);
      } else if (s.will && (s.willAt ?? 0) <= now) {
        this.publishWill(clientId, s);
      } else if (s.expiryInterval !== NEVER_EXPIRES && (s.disconnectedAt ?? now) + s.expiryInterval * 1000 <= now) {
        this.stats['router.expired']++;
        this.write(clientId, null);
      }
    }
    if (dead) this.releaseIfStillDead(dead);
  }

  private ownerDead(s: SessionRecord, now: number): boolean {
    const lease = this.leases.get(s.owner!);
    return lease === undefined
      ? now > Math.max(this.startedAt, this.silentUntil) + this.opts.leaseMs
      : now - lease.seenAt > this.opts.leaseMs || (lease.incarnation !== s.incarnation && lease.startedAt > (s.claimedAt ?? 0));
  }

  /**
   * A lease looks lapsed: first make sure this copy of the gateways table has every renewal
   * written so far (a Kafka broker lost while the others answer can hold the table's partition
   * for seconds, and the renewals with it). Released only if the table is in sync and the lease
   * still lapsed; if it cannot be brought in sync in time, nobody is judged and every lease
   * starts over once it can (as after a silence).
   */
  private releaseIfStillDead(clientIds: readonly string[]): void {
    const sync = this.gateways?.sync?.bind(this.gateways);
    const release = (): void => {
      const now = Date.now();
      for (const clientId of clientIds) {
        const s = this.view.get(clientId);
        if (s?.owner && this.ownerDead(s, now)) this.orphan(clientId, s, now);
      }
    };
    if (!sync) return release();
    if (this.verifying) return;
    this.verifying = true;
    void resolvesWithin(sync(), Math.max(500, this.opts.leaseMs / 2))
      .then((inSync) => {
        if (inSync) return release();
        if (!this.backboneSilent) this.log.warn('the gateways table cannot be brought in sync: no gateway lease is judged until it can');
        this.backboneSilent = true;
      })
      .finally(() => (this.verifying = false));
  }

  /**
   * The owner of `s` died: the session is released (a new epoch, which also fences the gateway
   * should it only be slow) and its will published after the will delay (capped by the session
   * expiry) unless the client comes back first; the will stays in the record until then.
   */
  private orphan(clientId: string, s: SessionRecord, now: number): void {
    this.stats['router.orphaned']++;
    this.log.info({ clientId, gateway: s.owner }, 'gateway lease lapsed: releasing its session');
    const willAt = s.will ? now + Math.min(s.will.delaySeconds, s.expiryInterval) * 1000 : undefined;
    this.write(clientId, { ...s, owner: null, incarnation: undefined, claimedAt: now, disconnectedAt: now, epoch: epochOf(s) + 1, willAt });
    const released = this.view.get(clientId);
    if (released?.will && willAt! <= now) this.publishWill(clientId, released);
  }

  private publishWill(clientId: string, s: SessionRecord): void {
    this.stats['router.wills']++;
    const will = s.will!;
    this.write(clientId, { ...s, will: undefined, willAt: undefined });
    let msg: Message;
    try {
      // Stamped now: a Message Expiry Interval counts from publication.
      msg = { ...decodeMessage(Buffer.from(will.message, 'base64')), timestamp: Date.now() };
    } catch (err) {
      this.stats['router.invalid']++;
      this.log.warn({ clientId, err: (err as Error).message }, 'undecodable will skipped');
      return;
    }
    const b = this.opts.backbone;
    b.append(this.opts.messagesTopic, [messageRecord(msg)])
      // A retained will is stored as gateways store retained messages: in the compacted `retained` topic they follow.
      .then(() => (msg.retain ? b.append(RETAINED_TABLE, [{ key: msg.topic, value: msg.payload.length ? encodeMessage(msg) : null }]) : undefined))
      .catch((err: Error) => this.log.error({ err: err.message, clientId }, 'will publish failed'));
  }

  private write(clientId: string, next: SessionRecord | null): void {
    this.apply(clientId, next, false);
    const value = next ? sessionCodec.encode(next) : null;
    this.sessions!.apply([[clientId, value]]).catch((err: Error) => this.log.error({ err: err.message, clientId }, 'session update failed'));
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

const BUNDLE_HEADERS = { 1: Object.freeze({ [BUNDLE_HEADER]: '1' }), 2: Object.freeze({ [BUNDLE_HEADER]: '2' }) } as const;

function bundleRecord(entries: BundledDelivery[]): ProducerRecord {
  const version = bundleVersion(entries);
  return { key: null, value: encodeBundle(entries, version), headers: BUNDLE_HEADERS[version] };
}

/** Deliveries as bundle records of at most BUNDLE_MAX_BYTES each (Kafka's default record limit is 1 MB). */
function bundles(list: BundledDelivery[]): ProducerRecord[] {
  const out: ProducerRecord[] = [];
  let from = 0;
  let size = 0;
  for (let i = 0; i < list.length; i++) {
    const n = bundleSize(list[i]!);
    if (i > from && size + n > BUNDLE_MAX_BYTES) {
      out.push(bundleRecord(list.slice(from, i)));
      from = i;
      size = 0;
    }
    size += n;
  }
  out.push(bundleRecord(list.slice(from)));
  return out;
}

/** Same owner and subscriptions: a cursor-only update, nothing to change in the trie. */
function sameRoutes(prev: SessionRecord | undefined, next: SessionRecord | null): boolean {
  if (!prev || !next || !prev.owner !== !next.owner) return false;
  return !prev.owner || JSON.stringify(prev.subscriptions) === JSON.stringify(next.subscriptions);
}

/** A well-spread hash of an offset (the "random" strategy, made repeatable). */
function mix(n: number): number {
  let h = Math.imul(n ^ (n >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}
