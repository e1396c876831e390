import type { Backbone } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import type { GatewayConfig } from '../config';
import { brokerMessage, HookMessage, HookRegistry, hookMessage, PacketProperties, SessionEndReason } from '@tributary/hooks';
import { checkTopicName, Message, messageRecord, Publisher, QoS } from '@tributary/mqtt';
import { EXCLUSIVE_PREFIX, Router, SharedGroup, SharedStrategy, SubscriptionOptions } from '@tributary/router';
import { Session, SessionLimits } from '../session/session';
import type { SessionStore } from '../session/store';
import type { Delivery, DropReason, SessionHost, SessionOwner, Will } from '../session/types';
import { BacklogReader } from './backlog';
import { registerAutoSubscribe } from '../addons/auto-subscribe';
import { DelayedPublisher, registerDelayed } from '../addons/delayed';
import { EnhancedAuthRegistry } from '../addons/enhanced-auth';
import { registerRewrite } from '../addons/rewrite';
import { FlowControl } from './flow';
import { ClientAttrsInit, compileClientAttrsInit } from '../channel/client-attrs';

import { Metrics } from './metrics';
import { LocalOwnership } from './ownership-local';
import type { RetainedStore } from './retained';
import { LocalRouting } from './routing-local';
import { BrokerCore, MESSAGES_TOPIC, OpenedSession, OpenSessionRequest, OwnershipStrategy, RoutingStrategy } from './strategies';
import { ExpiryTimers, WillTimers } from './timers';

export { MESSAGES_TOPIC } from './strategies';
export type { OpenedSession, OpenSessionRequest } from './strategies';
export { replay, replayStart, restoreSession, type RestoredSession } from './replay';

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
  /** Where published messages are routed (default: in this process, LocalRouting). */
  routing?: RoutingStrategy;
  /** Who owns sessions (default: this process alone, restored at start, LocalOwnership). */
  ownership?: OwnershipStrategy;
  /** Whether this broker publishes delayed messages when due (default true); scaled out the retain service does and gateways only store them. */
  publishesDelayed?: boolean;
}

/** The connection a PUBLISH came from, as the publish pipeline needs it (and the record headers, see setPublisherHeaders). */
export interface PublishOrigin extends Publisher {
  readonly username: string | undefined;
  /** A hook answered asynchronously: later packets of this client wait until `op` settles (per-client order). */
  hold?(op: Promise<unknown>): void;
}

/**
 * The publish pipeline and the session registry: a PUBLISH is appended to the backbone's
 * messages topic, and once durable it is stored as retained (if flagged) and routed to every
 * matching session. Sessions are created, resumed, taken over and expired here. Where messages
 * are routed and who owns sessions are the injected strategies (strategies.ts): the single node
 * and a gateway among several are this one class.
 */
export class Broker implements SessionHost {
  readonly router: Router;
  readonly metrics: Metrics;
  /** Where add-ons and plugins extend the broker (libs/hooks). */
  readonly hooks: HookRegistry;
  /** MQTT 5.0 enhanced-authentication providers by method, on client.authenticate. */
  readonly enhancedAuth: EnhancedAuthRegistry;
  /** Pauses publishers while a connected subscriber's queue is filling (flow.ts). */
  readonly flow: FlowControl;
  /** mqtt.client_attrs_init compiled: the attributes of each CONNECT (undefined without entries). */
  readonly clientAttrsInit: ClientAttrsInit | undefined;
  private readonly routing: RoutingStrategy;
  private readonly ownership: OwnershipStrategy;
  private delayed: DelayedPublisher | undefined;
  private readonly sessions = new Map<string, Session>();
  /** Grows whenever a session is added or removed: the HTTP API's sorted client index rebuilds only then. */
  sessionsVersion = 0;
  private readonly expiry = new ExpiryTimers();
  private readonly wills = new WillTimers((will) => this.publishWill(will));
  private readonly dirty = new Set<Session>();
  private flushScheduled = false;
  /** Sessions whose QoS 1/2 messages wait in the log, and their readers (while connected). */
  private readonly backlogs = new Map<Session, BacklogReader | undefined>();
  private readonly limits: SessionLimits;
  private readonly log: Logger;
  /** What the strategies see of this broker. */
  private readonly core: BrokerCore;

  constructor(private readonly deps: BrokerDeps) {
    this.router = deps.router ?? new Router();
    this.metrics = deps.metrics ?? new Metrics();
    const mqtt = deps.config.mqtt;
    this.flow = new FlowControl({ slowMs: SLOW_MS, minMessages: Math.ceil(mqtt.max_mqueue_len / 4), minBytes: mqtt.max_send_buffer / 4 }, this.metrics);
    this.log = deps.logger;
    this.limits = { maxInflight: mqtt.max_inflight, maxQueue: mqtt.max_mqueue_len, storeQos0: mqtt.mqueue_store_qos0, maxBacklog: mqtt.max_session_backlog, maxAwaitingRel: mqtt.max_awaiting_rel };
    this.hooks = deps.hooks ?? new HookRegistry({ logger: this.log, timeoutMs: deps.config.hooks.callback_timeout });
    this.enhancedAuth = new EnhancedAuthRegistry(this.hooks);
    this.clientAttrsInit = compileClientAttrsInit(mqtt.client_attrs_init, this.log);
    this.routing = deps.routing ?? new LocalRouting();
    this.ownership = deps.ownership ?? new LocalOwnership();
    this.core = this.coreForStrategies();
  }

  private coreForStrategies(): BrokerCore {
    const { backbone, sessions: store, retained } = this.deps;
    const { router, metrics, hooks, flow, log, limits } = this;
    return {
      backbone, store, retained, router, metrics, hooks, flow, log, limits,
      session: (clientId) => this.sessions.get(clientId),
      newSession: (clientId, protocolVersion) => {
        const s = new Session(clientId, protocolVersion, this.limits, this);
        this.sessions.set(clientId, s);
        this.sessionsVersion++;
        return s;
      },
      openHere: (req) => this.openHere(req),
      closeHere: (session, owner, will) => this.closeHere(session, owner, will),
      dispatchShared: (group, msg, exclude) => this.dispatchShared(group, msg, exclude),
      messageDropped: (msg, reason) => this.messageDropped(msg, reason),
      noLocal: (clientId, msg) => this.noLocal(clientId, msg),
      forget: (session) => this.forget(session),
      scheduleExpiry: (session) => this.scheduleExpiry(session),
      persist: (session) => this.persist(session),
      publishWill: (will) => this.publishWill(will),
    };
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get retainedCount(): number {
    return this.deps.retained.size;
  }

  get delayedCount(): number {
    return this.delayed?.size ?? 0;
  }

  session(clientId: string): Session | undefined {
    return this.sessions.get(clientId);
  }

  /** The sessions of this process (connected or not), for the HTTP API; read-only. */
  allSessions(): IterableIterator<Session> {
    return this.sessions.values();
  }

  /** The configuration the broker runs with (read-only), for the HTTP API. */
  get settings(): GatewayConfig {
    return this.deps.config;
  }

  /** The retained store, for the HTTP API's /retainer routes. */
  get retainedStore(): RetainedStore {
    return this.deps.retained;
  }

  /** The delayed messages stored, for GET /mqtt/delayed/messages (empty when delayed publish is off). */
  delayedMessages(): { key: string; due: number; msg: Message }[] {
    return this.delayed?.list() ?? [];
  }

  /**
   * Kicks a client (DELETE /clients/:clientid): a connected one gets DISCONNECT 0x98 (v5,
   * administrative action); its session ends either way. False when there is no such session.
   */
  kick(clientId: string): boolean {
    const session = this.sessions.get(clientId);
    if (!session) return false;
    session.owner?.kick(0x98);
    this.wills.cancel(clientId);
    if (!session.ended) this.discard(session, 'normal');
    return true;
  }

  /** Starts the strategies (the single node restores its persistent sessions here), then the add-ons and delayed messages. */
  async start(): Promise<void> {
    await this.ownership.start(this.core);
    await this.routing.start(this.core);
    const c = this.deps.config;
    registerRewrite(this.hooks, c.rewrite);
    registerAutoSubscribe(this.hooks, c.auto_subscribe.topics, c.mqtt.max_topic_levels, this, this.log);
    if (c.delayed.enable) {
      this.delayed = await DelayedPublisher.open(this.deps.backbone, (m) => this.publish(m), c.delayed.max_delayed_messages, this.log, this.deps.publishesDelayed ?? true);
      registerDelayed(this.hooks, this.delayed, this.metrics, c.delayed.max_delayed_messages, this.log);
    }
  }

  /** Creates or resumes the session of a connecting client (attached by the caller after CONNACK); see the ownership strategy. */
  openSession(req: OpenSessionRequest): OpenedSession | Promise<OpenedSession> {
    return this.ownership.open(req);
  }

  /**
   * Creates or resumes a session in this process. An existing connection with the same client
   * id is closed (v5: 0x8E) [MQTT-3.1.4-3]; a clean start discards the old session.
   */
  private openHere(req: OpenSessionRequest): OpenedSession {
    this.wills.cancel(req.clientId);
    this.expiry.clear(req.clientId);
    let session = this.sessions.get(req.clientId);
    if (session?.owner) {
      const old = session.owner;
      session.owner = undefined;
      if (session.client && this.hooks.has('session.takenover')) this.hooks.notify('session.takenover', session.client);
      old.kick(0x8e);
      // kick() closed the old connection, which scheduled its delayed will; this connection was opened
      // before the delay elapsed, so that will must not be sent [MQTT-3.1.2-8], [MQTT-3.1.3-9].
      // (A will without delay was published by the close, as for any other closed connection.)
      this.wills.cancel(req.clientId);
    }
    let present = true;
    if (session && req.cleanStart) {
      this.discard(session, 'discarded');
      session = undefined;
    }
    if (!session) {
      present = false;
      session = this.core.newSession(req.clientId, req.protocolVersion);
    }
    session.client = req.client;
    this.hooks.notify(present ? 'session.resumed' : 'session.created', req.client);
    const wasPersistent = session.persistent;
    session.expiryInterval = req.expiryInterval;
    if (wasPersistent && !session.persistent) void this.deps.sessions.remove(session.clientId);
    // The caller sends CONNACK, then attaches: nothing may precede CONNACK [MQTT-3.2.0-1].
    return { session, present };
  }

  /** The connection of `owner` ended; see the ownership strategy. */
  connectionClosed(session: Session, owner: SessionOwner, will: Will | undefined): void {
    this.ownership.connectionClosed(session, owner, will);
  }

  /**
   * Unless another connection took the session over, the session is detached (and expires
   * later) or discarded; the will fires after its delay.
   */
  private closeHere(session: Session, owner: SessionOwner, will: Will | undefined): void {
    if (session.owner === owner) {
      session.detach();
      // Unacknowledged shared-subscription messages go to another member of their group.
      for (const d of session.takeShared()) this.dispatchShared(d.shared!, d.msg, session.clientId);
      if (session.persistent) this.scheduleExpiry(session);
      else this.discard(session, 'normal');
    }
    if (will) this.wills.schedule(session.clientId, will, session.persistent ? session.expiryInterval : 0);
  }

  /** Saves a persistent session now; resolves when durable (used before CONNACK, SUBACK, PUBREC). */
  persist(session: Session): Promise<void> {
    if (!session.persistent || session.ended || !this.ownership.mayWrite(session)) return Promise.resolve();
    this.dirty.delete(session);
    return this.deps.sessions.save(this.ownership.record(session));
  }

  /**
   * Before SUBACK/UNSUBACK: resolves once the subscriptions are stored (persistent sessions)
   * and, scaled out, once the router routes with them. Undefined when there is nothing to wait for.
   */
  confirmSubscriptions(session: Session): Promise<void> | undefined {
    return this.ownership.confirmSubscriptions(session);
  }

  /**
   * Publishes a message: the message.publish chain (rewrite, delayed publish, plugins, mappings
   * ...), then the durable append, retain and route. Resolves when it is durable, and when what
   * the hooks asked the acknowledgement to wait for is. Not async: with no hook interested in
   * the topic it adds no promise of its own to the hot path.
   */
  publish(msg: Message, origin?: PublishOrigin): Promise<unknown> {
    if (!this.hooks.wants('message.publish', msg.topic)) return this.append(msg, origin);
    let waits: Promise<unknown>[] | undefined;
    const screened = this.hooks.publish(hookMessage(msg, origin?.username), { waitFor: (p) => void (waits ??= []).push(p) });
    const go = (h: HookMessage | null): Promise<unknown> => {
      const appended = h === null ? undefined : this.appendScreened(msg, h, origin);
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
  private appendScreened(msg: Message, h: HookMessage, origin: PublishOrigin | undefined): Promise<unknown> | undefined {
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
    return this.append(msg, origin);
  }

  /** The durable append to the messages topic, then retain and route. */
  private append(msg: Message, origin: PublishOrigin | undefined): Promise<unknown> {
    const backbone = this.deps.backbone;
    // The publisher's username for the message hooks after publish (from_username, message.dropped's username), only while one listens.
    if (origin !== undefined && this.messageHooked()) {
      msg.username = origin.username;
      msg.publisher = origin;
    }
    const offset = backbone.nextOffset?.(MESSAGES_TOPIC);
    if (offset === undefined) {
      return backbone.append(MESSAGES_TOPIC, [messageRecord(msg, origin)]).then(([pos]) => {
        msg.offset = pos ? pos.offset : -1;
        return this.retainAndRoute(msg);
      });
    }
    // The offset is known: no positions needed, so the append may share its batch's promise.
    const records = [messageRecord(msg, origin)];
    const durable = backbone.appendShared ? backbone.appendShared(MESSAGES_TOPIC, records) : backbone.append(MESSAGES_TOPIC, records);
    // Routed before the write completes when the offset is already known (embedded): delivery
    // latency does not include disk I/O. Acknowledgements still wait for `durable`.
    msg.offset = offset;
    const retained = this.retainAndRoute(msg);
    return retained ? Promise.all([durable, retained]) : durable;
  }

  private retainAndRoute(msg: Message): Promise<unknown> | undefined {
    const retained = msg.retain && this.deps.config.mqtt.retain_available ? this.deps.retained.set(msg) : undefined;
    this.routing.route(msg);
    return retained;
  }

  private messageHooked(): boolean {
    const h = this.hooks;
    return h.has('message.delivered') || h.has('message.acked') || h.has('delivery.dropped') || h.has('message.dropped');
  }

  /** Counts a message nobody gets and tells message.dropped. */
  private messageDropped(msg: Message, reason: 'no_subscribers' | 'invalid_topic'): void {
    this.metrics.dropped('no_subscribers');
    if (this.hooks.wants('message.dropped', msg.topic)) this.hooks.notify('message.dropped', hookMessage(msg), reason);
  }

  /** Hands `msg` to one member of a shared-subscription group (preferring connected ones). */
  private dispatchShared(group: SharedGroup, msg: Message, exclude?: string): void {
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

  private get sharedStrategy(): SharedStrategy {
    return this.deps.config.mqtt.shared_subscription_strategy;
  }

  /** `props`: the SUBSCRIBE's properties, for session.subscribed. */
  subscribe(session: Session, filter: string, options: SubscriptionOptions, props?: PacketProperties): { existed: boolean; refused?: boolean } {
    const existed = session.subscriptions.has(filter);
    // An exclusive filter held by another client is refused (EMQX: quota exceeded).
    if (!this.router.subscribe(session.clientId, filter, options)) return { existed, refused: true };
    session.subscriptions.set(filter, options);
    if (session.client) this.hooks.notify('session.subscribed', session.client, filter, options, props);
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

  /** `props`: the UNSUBSCRIBE's properties, for session.unsubscribed. */
  unsubscribe(session: Session, filter: string, props?: PacketProperties): boolean {
    const options = session.subscriptions.get(filter);
    const had = session.subscriptions.delete(filter);
    this.router.unsubscribe(session.clientId, filter);
    if (had) {
      this.changed(session);
      if (session.client) this.hooks.notify('session.unsubscribed', session.client, filter, options, props);
    }
    return had;
  }

  /** Publishes a will now (after its delay, or at once). */
  publishWill(will: Will): void {
    const msg = { ...will.message, timestamp: Date.now(), offset: -1 };
    this.publish(msg, { username: will.username }).catch((err: Error) => this.log.error({ err, topic: msg.topic }, 'will publish failed'));
  }

  /** Stops flow control, backlog readers and timers (delayed wills fire now), saves every persistent session, then the strategies. */
  async stop(): Promise<void> {
    this.flow.stop();
    await Promise.all([...this.backlogs.values()].map((r) => r?.stop()));
    this.delayed?.stop();
    this.expiry.clearAll();
    this.wills.fireAll();
    for (const s of this.sessions.values()) if (s.persistent && !s.ended) void this.deps.sessions.save(this.ownership.record(s));
    await this.deps.sessions.flush();
    await this.routing.stop();
    await this.ownership.stop();
  }

  // SessionHost
  changed(session: { clientId: string }): void {
    this.dirty.add(session as Session);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const s of this.dirty) if (s.persistent && !s.ended) void this.deps.sessions.save(this.ownership.record(s));
      this.dirty.clear();
    });
  }

  dropped(reason: DropReason, d: Delivery, session: Session): void {
    this.metrics.dropped(reason);
    if (reason === 'queue_full') session.droppedQueueFull++;
    else if (reason === 'expired') session.droppedExpired++;
    else if (reason === 'too_large') session.droppedTooLarge++;
    if (session.client && this.hooks.wants('delivery.dropped', d.msg.topic)) this.hooks.notify('delivery.dropped', session.client, hookMessage(d.msg), reason);
  }

  /** A No Local subscription skipped its own client's message: delivery.dropped no_local (nothing counted). */
  noLocal(clientId: string, msg: Message): void {
    const session = this.sessions.get(clientId);
    if (session?.client && this.hooks.wants('delivery.dropped', msg.topic)) this.hooks.notify('delivery.dropped', session.client, hookMessage(msg), 'no_local');
  }

  delivered(d: Delivery, session: Session): void {
    this.metrics['messages.sent']++;
    if (session.client && this.hooks.wants('message.delivered', d.msg.topic)) this.hooks.notify('message.delivered', session.client, hookMessage(d.msg));
  }

  acked(d: Delivery, session: Session, props?: PacketProperties): void {
    if (session.client && this.hooks.wants('message.acked', d.msg.topic)) this.hooks.notify('message.acked', session.client, hookMessage(d.msg), props);
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
  private discard(session: Session, reason: SessionEndReason): void {
    this.ownership.discarded(session);
    this.forget(session);
    void this.deps.sessions.remove(session.clientId);
    if (session.client) {
      if (reason === 'discarded') this.hooks.notify('session.discarded', session.client);
      this.hooks.notify('session.terminated', session.client, reason);
    }
  }

  /** Ends a session in this process only: its routes, state and timers go; its stored record stays. */
  private forget(session: Session): void {
    session.ended = true;
    for (const filter of session.subscriptions.keys()) this.router.unsubscribe(session.clientId, filter);
    session.clear();
    this.dirty.delete(session);
    if (this.sessions.get(session.clientId) === session) {
      this.sessions.delete(session.clientId);
      this.sessionsVersion++;
    }
    this.expiry.clear(session.clientId);
  }

  private scheduleExpiry(session: Session): void {
    this.expiry.schedule(session, (s) => {
      if (!s.owner && !s.ended) this.discard(s, 'expired');
    });
  }
}
