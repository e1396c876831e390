import type { Backbone, ConsumedRecord } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import { ClientInfo, HookMessage, HookRegistry, SessionEndReason } from '@tributary/hooks';
import { checkTopicName, decodeMessage, Message, messageRecord, QoS } from '@tributary/mqtt';
import type { GatewayConfig } from '../config';
import { EXCLUSIVE_PREFIX, Router, SharedGroup, SharedStrategy, SubscriptionOptions } from '@tributary/router';
import { NEVER_EXPIRES, Session, SessionLimits } from '../session/session';
import type { SessionStore } from '../session/store';
import type { Delivery, DropReason, PersistedSession, SessionHost, SessionOwner, Will } from '../session/types';
import { BacklogReader } from './backlog';
import { registerAutoSubscribe } from '../addons/auto-subscribe';
import { DelayedPublisher, registerDelayed } from '../addons/delayed';
import { EnhancedAuthRegistry } from '../addons/enhanced-auth';
import { registerRewrite } from '../addons/rewrite';
import { deliveryFor } from './deliveries';
import { FlowControl } from './flow';
import { brokerMessage, hookMessage } from './hook-message';
import { Metrics } from './metrics';
import type { RetainedStore } from './retained';

export const MESSAGES_TOPIC = 'messages';

/** Flow control's check interval: how long a pressured session may hold publishers (or the downlink) back without progress. */
const SLOW_MS = 250;

export interface BrokerDeps {
  config: GatewayConfig;
  backbone: Backbone;
  sessions: SessionStore;
  retained: RetainedStore;
  logger: Logger;
  router?: Router;
  metrics?: Metrics;
  /** The hook registry add-ons and plugins register on (a new one when absent). */
  hooks?: HookRegistry;
}

/** The connection a PUBLISH came from, as the publish pipeline needs it. */
export interface PublishOrigin {
  readonly username: string | undefined;
  /** A hook answered asynchronously: later packets of this client wait until `op` settles (per-client order). */
  hold?(op: Promise<unknown>): void;
}

export interface OpenSessionRequest {
  clientId: string;
  protocolVersion: number;
  cleanStart: boolean;
  /** Seconds (0 = the session ends with the connection). */
  expiryInterval: number;
  /** The client's Receive Maximum (65535 when absent). */
  receiveMaximum: number;
  /** The will, kept with the session record so another service can publish it if this process dies. */
  will?: Will;
  /** Who connects, for the session.* hooks. */
  client: ClientInfo;
}

export interface OpenedSession {
  session: Session;
  /** Session Present in CONNACK. */
  present: boolean;
}

/** A persisted session being brought back, with the positions its replay needs. */
export interface RestoredSession {
  session: Session;
  cursor: number;
  /** In-flight messages by offset: [packet id, qos, phase]. */
  inflight: Map<number, [number, QoS, 1 | 2]>;
}

/**
 * The publish pipeline and the session registry: a PUBLISH is appended to the backbone's
 * messages topic, and once durable it is stored as retained (if flagged) and routed to every
 * matching session. Sessions are created, resumed, taken over and expired here.
 */
export class Broker implements SessionHost {
  readonly router: Router;
  readonly metrics: Metrics;
  /** Where add-ons and plugins extend the broker (libs/hooks). */
  readonly hooks: HookRegistry;
  /** MQTT 5.0 enhanced-authentication providers by method, on client.authenticate. */
  readonly enhancedAuth: EnhancedAuthRegistry;
  protected delayed: DelayedPublisher | undefined;
  protected readonly sessions = new Map<string, Session>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  private readonly willTimers = new Map<string, { timer: NodeJS.Timeout; will: Will }>();
  private readonly dirty = new Set<Session>();
  private flushScheduled = false;
  /** Pauses publishers while a connected subscriber's queue is filling (flow.ts). */
  readonly flow: FlowControl;
  /** Sessions whose QoS 1/2 messages wait in the log, and their readers (while connected). */
  private readonly backlogs = new Map<Session, BacklogReader | undefined>();
  protected readonly limits: SessionLimits;
  protected readonly log: Logger;

  constructor(protected readonly deps: BrokerDeps) {
    this.router = deps.router ?? new Router();
    this.metrics = deps.metrics ?? new Metrics();
    const mqtt = deps.config.mqtt;
    this.flow = new FlowControl({ slowMs: SLOW_MS, minMessages: Math.ceil(mqtt.max_mqueue_len / 4), minBytes: mqtt.max_send_buffer / 4 }, this.metrics);
    this.log = deps.logger;
    this.limits = { maxInflight: mqtt.max_inflight, maxQueue: mqtt.max_mqueue_len, storeQos0: mqtt.mqueue_store_qos0, maxBacklog: mqtt.max_session_backlog, maxAwaitingRel: mqtt.max_awaiting_rel };
    this.hooks = deps.hooks ?? new HookRegistry({ logger: this.log, timeoutMs: deps.config.hooks.callback_timeout });
    this.enhancedAuth = new EnhancedAuthRegistry(this.hooks);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get retainedCount(): number {
    return this.deps.retained.size;
  }

  session(clientId: string): Session | undefined {
    return this.sessions.get(clientId);
  }

  /** Restores persistent sessions and their undelivered messages, and delayed messages, from the backbone. */
  async start(): Promise<void> {
    await this.restoreSessions();
    const c = this.deps.config;
    registerRewrite(this.hooks, c.rewrite);
    registerAutoSubscribe(this.hooks, c.auto_subscribe.topics, c.mqtt.max_topic_levels, this, this.log);
    if (c.delayed.enable) {
      this.delayed = await DelayedPublisher.open(this.deps.backbone, (m) => this.publish(m), c.delayed.max_delayed_messages, this.log, this.schedulesDelayed);
      registerDelayed(this.hooks, this.delayed, this.metrics, c.delayed.max_delayed_messages, this.log);
    }
  }

  /** Scaled out, delayed messages are published by the retain service; gateways only store them. */
  protected get schedulesDelayed(): boolean {
    return true;
  }

  protected async restoreSessions(): Promise<void> {
    const now = Date.now();
    const restored = new Map<string, RestoredSession>();
    for (const p of await this.deps.sessions.loadAll()) {
      const since = p.disconnectedAt ?? now;
      if (p.expiryInterval !== NEVER_EXPIRES && since + p.expiryInterval * 1000 <= now) {
        void this.deps.sessions.remove(p.clientId);
        continue;
      }
      const r = this.restoreSession(p, since);
      this.scheduleExpiry(r.session);
      restored.set(p.clientId, r);
    }
    const replayed = await this.replay(restored);
    if (restored.size) this.log.info({ sessions: restored.size, replayed }, 'restored persistent sessions');
  }

  /** Rebuilds a persisted session (subscriptions, QoS 2 state, positions); `replay` brings its messages back. */
  protected restoreSession(p: PersistedSession, since: number): RestoredSession {
    const s = new Session(p.clientId, p.protocolVersion, this.limits, this);
    s.expiryInterval = p.expiryInterval;
    s.disconnectedAt = since;
    // Writes issued but lost in a crash leave a cursor past the log's end: clamp it.
    s.lastOffset = Math.min(p.cursor, this.deps.backbone.nextOffset?.(MESSAGES_TOPIC) ?? p.cursor) - 1;
    for (const id of p.awaitingRel) s.awaitingRel.add(id);
    for (const [filter, opts] of p.subscriptions) {
      s.subscriptions.set(filter, opts);
      this.router.subscribe(p.clientId, filter, opts);
    }
    const inflight = new Map<number, [number, QoS, 1 | 2]>();
    for (const [offset, packetId, qos, phase] of p.inflight) {
      if (phase === 2 || offset < 0) s.restoreInflight(pubrelOnly(), packetId, 2);
      else inflight.set(offset, [packetId, qos, phase]);
    }
    this.sessions.set(p.clientId, s);
    return { session: s, cursor: p.cursor, inflight };
  }

  /**
   * Reads the messages topic from the oldest position of `restored` to its end: in-flight
   * messages are put back in their sessions' windows, and every later message matching a
   * (non-shared) subscription is delivered. Returns how many records were read.
   */
  protected async replay(restored: ReadonlyMap<string, RestoredSession>): Promise<number> {
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
    const consumer = await this.deps.backbone.consume({
      topic: MESSAGES_TOPIC,
      from: [{ partition: 0, offset: Math.max(0, from) }],
      eachBatch: (records: ConsumedRecord[]) => {
        for (const rec of records) {
          if (!rec.value) continue;
          let msg: Message;
          try {
            msg = decodeMessage(rec.value, rec.offset);
          } catch (err) {
            this.log.warn({ offset: rec.offset, err: (err as Error).message }, 'undecodable record in the messages topic skipped');
            continue;
          }
          replayed++;
          for (const [session, entry] of inflightAt.get(rec.offset) ?? []) {
            session.restoreInflight({ msg, qos: entry[1], retain: false, subscriptionIds: undefined }, entry[0], entry[2]);
          }
          for (const route of this.router.routes(msg.topic)) {
            const r = restored.get(route.clientId);
            if (!r || rec.offset < r.cursor || r.inflight.has(rec.offset)) continue;
            const d = deliveryFor(route, msg);
            if (d) r.session.deliver(d);
          }
        }
      },
    });
    await consumer.caughtUp;
    await consumer.stop();
    return replayed;
  }

  /**
   * Creates or resumes the session of a connecting client (attached by the caller after CONNACK). An existing connection with the
   * same client id is closed (v5: 0x8E) [MQTT-3.1.4-3]; a clean start discards the old session.
   */
  openSession(req: OpenSessionRequest): OpenedSession | Promise<OpenedSession> {
    this.cancelWill(req.clientId);
    this.clearExpiry(req.clientId);
    let session = this.sessions.get(req.clientId);
    if (session?.owner) {
      const old = session.owner;
      session.owner = undefined;
      if (session.client && this.hooks.has('session.takenover')) this.hooks.notify('session.takenover', session.client);
      old.kick(0x8e);
      // kick() closed the old connection, which scheduled its delayed will; this connection was opened
      // before the delay elapsed, so that will must not be sent [MQTT-3.1.2-8], [MQTT-3.1.3-9].
      // (A will without delay was published by the close, as for any other closed connection.)
      this.cancelWill(req.clientId);
    }
    let present = true;
    if (session && req.cleanStart) {
      this.discard(session, 'discarded');
      session = undefined;
    }
    if (!session) {
      present = false;
      session = new Session(req.clientId, req.protocolVersion, this.limits, this);
      this.sessions.set(req.clientId, session);
    }
    session.client = req.client;
    this.hooks.notify(present ? 'session.resumed' : 'session.created', req.client);
    const wasPersistent = session.persistent;
    session.expiryInterval = req.expiryInterval;
    if (wasPersistent && !session.persistent) void this.deps.sessions.remove(session.clientId);
    // The caller sends CONNACK, then attaches: nothing may precede CONNACK [MQTT-3.2.0-1].
    return { session, present };
  }

  /**
   * The connection of `owner` ended. Unless another connection took the session over, the
   * session is detached (and expires later) or discarded; the will fires after its delay.
   */
  connectionClosed(session: Session, owner: SessionOwner, will: Will | undefined): void {
    if (session.owner === owner) {
      session.detach();
      // Unacknowledged shared-subscription messages go to another member of their group.
      for (const d of session.takeShared()) this.dispatchShared(d.shared!, d.msg, session.clientId);
      if (session.persistent) this.scheduleExpiry(session);
      else this.discard(session, 'normal');
    }
    if (will) this.scheduleWill(session.clientId, will, session.persistent ? session.expiryInterval : 0);
  }

  /** Saves a persistent session now; resolves when durable (used before CONNACK, SUBACK, PUBREC). */
  persist(session: Session): Promise<void> {
    if (!session.persistent || session.ended) return Promise.resolve();
    this.dirty.delete(session);
    return this.deps.sessions.save(this.record(session));
  }

  /** What is stored for a session (the cluster broker adds ownership). */
  protected record(session: Session): PersistedSession {
    return session.snapshot();
  }

  /**
   * Before SUBACK/UNSUBACK: resolves once the subscriptions are stored (persistent sessions)
   * and, scaled out, once the router routes with them. Undefined when there is nothing to wait for.
   */
  confirmSubscriptions(session: Session): Promise<void> | undefined {
    return session.persistent ? this.persist(session) : undefined;
  }

  /**
   * Publishes a message: the message.publish chain (rewrite, delayed publish, plugins, mappings
   * ...), then the durable append, retain and route. Resolves when it is durable, and when what
   * the hooks asked the acknowledgement to wait for is. Not async: with no hook interested in
   * the topic it adds no promise of its own to the hot path.
   */
  publish(msg: Message, origin?: PublishOrigin): Promise<unknown> {
    if (!this.hooks.wants('message.publish', msg.topic)) return this.append(msg);
    let waits: Promise<unknown>[] | undefined;
    const screened = this.hooks.publish(hookMessage(msg, origin?.username), { waitFor: (p) => void (waits ??= []).push(p) });
    const go = (h: HookMessage | null): Promise<unknown> => {
      const appended = h === null ? undefined : this.appendScreened(msg, h);
      if (!waits) return appended ?? Promise.resolve();
      if (appended) waits.push(appended);
      return Promise.all(waits);
    };
    if (!(screened instanceof Promise)) return go(screened);
    const done = screened.then(go);
    origin?.hold?.(done);
    return done;
  }

  /** Appends what the chain returned; the message keeps its identity (the publisher's channel tracks it). */
  private appendScreened(msg: Message, h: HookMessage): Promise<unknown> | undefined {
    if (h.topic !== msg.topic || h.payload !== msg.payload || h.qos !== msg.qos || h.retain !== msg.retain || h.properties !== msg.properties) {
      const payload = typeof h.payload === 'string' ? Buffer.from(h.payload) : h.payload;
      const problem = checkTopicName(h.topic, this.deps.config.mqtt.max_topic_levels);
      if (problem || !Buffer.isBuffer(payload) || !(h.qos === 0 || h.qos === 1 || h.qos === 2)) {
        this.log.warn({ topic: h.topic, from: msg.from, problem: problem ?? 'payload must be a Buffer and qos 0, 1 or 2' }, 'a message.publish hook returned an invalid message; dropped');
        this.messageDropped(brokerMessage(h), 'invalid_topic');
        return undefined;
      }
      Object.assign(msg, { topic: h.topic, payload, qos: h.qos, retain: h.retain, properties: h.properties });
    }
    return this.append(msg);
  }

  /** The durable append to the messages topic, then retain and route. */
  protected append(msg: Message): Promise<unknown> {
    const backbone = this.deps.backbone;
    const offset = backbone.nextOffset?.(MESSAGES_TOPIC);
    const durable = backbone.append(MESSAGES_TOPIC, [messageRecord(msg)]);
    if (offset === undefined) {
      return durable.then(([pos]) => {
        msg.offset = pos ? pos.offset : -1;
        return this.retainAndRoute(msg);
      });
    }
    // Routed before the write completes when the offset is already known (embedded): delivery
    // latency does not include disk I/O. Acknowledgements still wait for `durable`.
    msg.offset = offset;
    const retained = this.retainAndRoute(msg);
    return retained ? Promise.all([durable, retained]) : durable;
  }

  protected retainAndRoute(msg: Message): Promise<unknown> | undefined {
    const retained = msg.retain && this.deps.config.mqtt.retain_available ? this.deps.retained.set(msg) : undefined;
    this.route(msg);
    return retained;
  }

  /** Counts a message nobody gets and tells message.dropped. */
  protected messageDropped(msg: Message, reason: 'no_subscribers' | 'invalid_topic'): void {
    this.metrics.dropped('no_subscribers');
    if (this.hooks.wants('message.dropped', msg.topic)) this.hooks.notify('message.dropped', hookMessage(msg), reason);
  }

  get delayedCount(): number {
    return this.delayed?.size ?? 0;
  }

  protected route(msg: Message): void {
    const routes = this.router.routes(msg.topic);
    const groups = this.router.sharedGroups(msg.topic);
    for (let i = 0; i < groups.length; i++) this.dispatchShared(groups[i]!, msg);
    if (routes.length === 0) {
      if (groups.length === 0) this.messageDropped(msg, 'no_subscribers');
      return;
    }
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      const d = deliveryFor(route, msg);
      if (!d) continue;
      const s = this.sessions.get(route.clientId);
      if (s) s.deliver(d);
    }
  }

  /** Hands `msg` to one member of a shared-subscription group (preferring connected ones). */
  protected dispatchShared(group: SharedGroup, msg: Message, exclude?: string): void {
    const member = group.pick(this.sharedStrategy, msg, this.isOnline, exclude);
    const options = member === undefined ? undefined : group.members.get(member);
    const session = member === undefined ? undefined : this.sessions.get(member);
    if (!options || !session) return;
    const ids = options.subscriptionId !== undefined ? [options.subscriptionId] : undefined;
    // Retain As Published applies; retained messages themselves are never sent to shared subscriptions.
    session.deliver({ msg, qos: Math.min(msg.qos, options.qos) as QoS, retain: options.retainAsPublished && msg.retain, subscriptionIds: ids, shared: group });
  }

  /** A shared message goes to a connected member that keeps up, when there is one. */
  private readonly isOnline = (clientId: string): boolean => {
    const s = this.sessions.get(clientId);
    return s?.owner !== undefined && !s.congested;
  };

  protected get sharedStrategy(): SharedStrategy {
    return this.deps.config.mqtt.shared_subscription_strategy;
  }

  subscribe(session: Session, filter: string, options: SubscriptionOptions): { existed: boolean; refused?: boolean } {
    const existed = session.subscriptions.has(filter);
    // An exclusive filter held by another client is refused (EMQX: quota exceeded).
    if (!this.router.subscribe(session.clientId, filter, options)) return { existed, refused: true };
    session.subscriptions.set(filter, options);
    if (session.client) this.hooks.notify('session.subscribed', session.client, filter, options);
    return { existed };
  }

  /** Delivers the retained messages matching a new subscription [MQTT-3.8.4-4]. */
  deliverRetained(session: Session, filter: string, options: SubscriptionOptions): void {
    const target = filter.startsWith(EXCLUSIVE_PREFIX) ? filter.slice(EXCLUSIVE_PREFIX.length) : filter;
    for (const msg of this.deps.retained.match(target)) {
      const qos = Math.min(msg.qos, options.qos) as QoS;
      const ids = options.subscriptionId !== undefined ? [options.subscriptionId] : undefined;
      session.deliver({ msg, qos, retain: true, subscriptionIds: ids }, false);
    }
  }

  unsubscribe(session: Session, filter: string): boolean {
    const had = session.subscriptions.delete(filter);
    this.router.unsubscribe(session.clientId, filter);
    if (had) {
      this.changed(session);
      if (session.client) this.hooks.notify('session.unsubscribed', session.client, filter);
    }
    return had;
  }

  /** Publishes a will now (after its delay, or at once). */
  publishWill(will: Will): void {
    const msg = { ...will.message, timestamp: Date.now(), offset: -1 };
    this.publish(msg, { username: will.username }).catch((err: Error) => this.log.error({ err, topic: msg.topic }, 'will publish failed'));
  }

  async stop(): Promise<void> {
    this.flow.stop();
    await Promise.all([...this.backlogs.values()].map((r) => r?.stop()));
    this.delayed?.stop();
    for (const t of this.expiryTimers.values()) clearTimeout(t);
    for (const { timer, will } of this.willTimers.values()) {
      clearTimeout(timer);
      // Delayed wills fire now rather than being lost with the process.
      this.publishWill(will);
    }
    this.willTimers.clear();
    this.expiryTimers.clear();
    for (const s of this.sessions.values()) if (s.persistent && !s.ended) void this.deps.sessions.save(this.record(s));
    await this.deps.sessions.flush();
  }

  // SessionHost
  changed(session: { clientId: string }): void {
    this.dirty.add(session as Session);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const s of this.dirty) if (s.persistent && !s.ended) void this.deps.sessions.save(this.record(s));
      this.dirty.clear();
    });
  }

  dropped(reason: DropReason, d: Delivery, session: Session): void {
    this.metrics.dropped(reason);
    if (session.client && this.hooks.wants('delivery.dropped', d.msg.topic)) this.hooks.notify('delivery.dropped', session.client, hookMessage(d.msg), reason);
  }

  delivered(d: Delivery, session: Session): void {
    this.metrics['messages.sent']++;
    if (session.client && this.hooks.wants('message.delivered', d.msg.topic)) this.hooks.notify('message.delivered', session.client, hookMessage(d.msg));
  }

  acked(d: Delivery, session: Session): void {
    if (session.client && this.hooks.wants('message.acked', d.msg.topic)) this.hooks.notify('message.acked', session.client, hookMessage(d.msg));
  }

  /**
   * A connected session's queue passed half its bound. If another subscriber of the same message
   * keeps up, this one is behind its peers: marked slow at once (its QoS 1/2 messages go to the
   * log), so it never holds publishers back. Otherwise (it is the only one, or all are behind)
   * flow control paces the publishers to it.
   */
  pressure(session: Session, on: boolean, msg?: Message): void {
    if (on && msg && this.peerKeepsUp(session, msg)) {
      this.metrics['flow.sessions.slow']++;
      session.markSlow();
      return;
    }
    this.flow.pressure(session, on);
  }

  private peerKeepsUp(session: Session, msg: Message): boolean {
    const routes = this.router.routes(msg.topic);
    const low = this.limits.maxQueue / 4;
    for (let i = 0; i < routes.length; i++) {
      const id = routes[i]!.clientId;
      if (id === session.clientId) continue;
      const peer = this.sessions.get(id);
      if (peer?.owner && !peer.pressured && !peer.slow && peer.queueLength < low) return true;
    }
    return false;
  }

  backlogged(session: Session): void {
    if (this.backlogs.get(session)?.active) return;
    if (!this.backlogs.has(session)) this.metrics['flow.sessions.backlogged']++;
    this.backlogs.set(session, undefined);
    if (!session.owner) return;
    this.log.debug({ clientId: session.clientId, from: session.backlog?.from }, 'subscriber behind: reading its messages from the log');
    const deps = { backbone: this.deps.backbone, topic: MESSAGES_TOPIC, router: this.router, log: this.log };
    // The entry stays while the session has a backlog; a finished reader leaves it empty.
    const reader = new BacklogReader(session, deps, (r) => {
      if (this.backlogs.get(session) === r) this.backlogs.set(session, undefined);
    });
    this.backlogs.set(session, reader);
  }

  backlogEnded(session: Session): void {
    const r = this.backlogs.get(session);
    this.backlogs.delete(session);
    void r?.stop();
  }

  backlogOverflow(session: Session): void {
    this.log.warn({ clientId: session.clientId, max: this.limits.maxBacklog }, 'session backlog past mqtt.max_session_backlog: its oldest messages are dropped');
  }

  /** Gauges of flow control, for /status and metrics. */
  flowStats(): Record<string, number> {
    let messages = 0;
    for (const s of this.backlogs.keys()) messages += s.backlog?.count ?? 0;
    return {
      'sessions.backlog.count': this.backlogs.size,
      'sessions.backlog.messages': messages,
      'publishers.paused.count': this.flow.pausedCount,
    };
  }

  /** Ends a session and removes its stored record. */
  protected discard(session: Session, reason: SessionEndReason): void {
    this.forget(session);
    void this.deps.sessions.remove(session.clientId);
    if (session.client) {
      if (reason === 'discarded') this.hooks.notify('session.discarded', session.client);
      this.hooks.notify('session.terminated', session.client, reason);
    }
  }

  /** Ends a session in this process only: its routes, state and timers go; its stored record stays. */
  protected forget(session: Session): void {
    session.ended = true;
    for (const filter of session.subscriptions.keys()) this.router.unsubscribe(session.clientId, filter);
    session.clear();
    this.dirty.delete(session);
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    this.clearExpiry(session.clientId);
  }

  protected scheduleExpiry(session: Session): void {
    this.clearExpiry(session.clientId);
    if (session.expiryInterval === NEVER_EXPIRES) return;
    const due = (session.disconnectedAt ?? Date.now()) + session.expiryInterval * 1000 - Date.now();
    const timer = setTimeout(() => {
      this.expiryTimers.delete(session.clientId);
      if (!session.owner && !session.ended) this.discard(session, 'expired');
    }, Math.max(0, Math.min(due, 2 ** 31 - 1)));
    timer.unref();
    this.expiryTimers.set(session.clientId, timer);
  }

  protected clearExpiry(clientId: string): void {
    const t = this.expiryTimers.get(clientId);
    if (t) clearTimeout(t);
    this.expiryTimers.delete(clientId);
  }

  /** The will waits min(Will Delay, Session Expiry) [MQTT-3.1.3-9]; a reconnect cancels it. */
  protected scheduleWill(clientId: string, will: Will, expirySeconds: number): void {
    const delay = Math.min(will.delaySeconds, expirySeconds);
    if (delay <= 0) {
      this.publishWill(will);
      return;
    }
    this.cancelWill(clientId);
    const due = Date.now() + delay * 1000;
    const fire = (): void => {
      // setTimeout holds at most ~24.8 days; longer delays re-arm.
      const left = due - Date.now();
      if (left > 0) return void this.willTimers.set(clientId, { timer: setTimeout(fire, Math.min(left, 2 ** 31 - 1)), will });
      this.willTimers.delete(clientId);
      this.publishWill(will);
    };
    this.willTimers.set(clientId, { timer: setTimeout(fire, Math.min(delay * 1000, 2 ** 31 - 1)), will });
  }

  protected cancelWill(clientId: string): void {
    const w = this.willTimers.get(clientId);
    if (w) clearTimeout(w.timer);
    this.willTimers.delete(clientId);
  }
}


/** The first messages-topic offset a restored session's replay needs (cursor or oldest in-flight message). */
export function replayStart(r: RestoredSession): number {
  let from = r.cursor;
  for (const offset of r.inflight.keys()) if (offset < from) from = offset;
  return from;
}

/** A PUBREL-phase placeholder: only the packet id matters once PUBREC was received. */
function pubrelOnly(): Delivery {
  const msg: Message = { topic: '', payload: Buffer.alloc(0), qos: 2, retain: false, from: '', timestamp: 0, properties: undefined, offset: -1 };
  return { msg, qos: 2, retain: false, subscriptionIds: undefined };
}
