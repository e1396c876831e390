import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Backbone, createKafkaBackbone, EmbeddedBackbone } from '@tributary/backbone';
import { commonConfigFragment, ConfigError, Logger, Service, ServiceHost, StartupError } from '@tributary/common';
import { advertisedUrl, ApiKeys, ApiServer, Cluster, NodeSnapshot, NodeSnapshots, NodeStatusSource } from '@tributary/api';
import { AuthService, bannedRoutes, LimitsService } from '@tributary/auth';
import { BackboneSessionStore, Broker, brokerRoutes, clusterStrategies, CommandsBridge, Gateway, MESSAGES_TOPIC, registerMappings, registerSysEvents, RetainedStore, SysPublisher, TopicMappings, Traces } from '@tributary/gateway';
import { HookRegistry, PluginHost, PluginMessage } from '@tributary/hooks';
import { Observability } from '@tributary/observability';
import { messageRecord, newMessage, setPublisherHeaders } from '@tributary/mqtt';
import { GATEWAYS_TABLE, RouterService, SESSIONS_TABLE } from '@tributary/router';
import { RetainService } from '@tributary/retain';
import { EventsService, isRulesApiPath, Republisher, RuleInterest, RuleStore, RulesService, rulesRoutes } from '@tributary/rules';
import type { TributaryConfig } from './config';

/** The services a node can run; each one's dependencies are in TributaryNode.service(). */
export type ServiceName = 'backbone' | 'broker' | 'auth' | 'sys' | 'mappings' | 'plugins' | 'commands' | 'events' | 'gateway' | 'rules' | 'api' | 'router' | 'retain';

/**
 * What each role runs, in start order (the host still puts a service's dependencies first; it
 * stops them in reverse). A new role is one line here, e.g. `rules: { command: 'rules', help:
 * '...', services: ['backbone', 'rules', 'api'] }` once its service exists; the CLI command and
 * its help line come from this table.
 */
export const ROLES = {
  all: { command: 'start', help: 'run every service in one process (embedded backbone by default)', services: ['backbone', 'broker', 'auth', 'sys', 'mappings', 'plugins', 'commands', 'events', 'rules', 'gateway', 'api'] },
  gateway: { command: 'gateway', help: 'scaled out over Kafka: MQTT listeners and sessions (run any number)', services: ['backbone', 'broker', 'auth', 'sys', 'mappings', 'plugins', 'commands', 'events', 'gateway', 'api'] },
  router: { command: 'router', help: 'scaled out over Kafka: subscription table, routes messages to gateways', services: ['backbone', 'plugins', 'events', 'router', 'api'] },
  retain: { command: 'retain', help: 'scaled out over Kafka: expires retained messages, publishes delayed ones', services: ['backbone', 'retain', 'api'] },
  api: { command: 'api', help: 'scaled out over Kafka: the HTTP API and dashboard for the whole installation, without MQTT listeners', services: ['backbone', 'api'] },
  rules: { command: 'rules', help: 'scaled out over Kafka: the rule engine, its sinks and sources (one or more)', services: ['backbone', 'rules', 'api'] },
} as const satisfies Record<string, { command: string; help: string; services: readonly ServiceName[] }>;

/** What one process runs: everything (`start`), or one service of a scaled-out installation. */
export type NodeRole = keyof typeof ROLES;

/** Something with its own start and stop (the gateway, the HTTP API, the router...). */
interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A service around a component `create` makes when the service starts (it is built from what
 * started before). A component that fails half-way (the gateway with one listener bound) is
 * stopped before the error goes on: the host only stops what started.
 */
function around(name: ServiceName, dependsOn: readonly ServiceName[], create: () => Startable): Service {
  let component: Startable | undefined;
  return {
    name,
    dependsOn,
    start: async () => {
      const created = create();
      try {
        await created.start();
      } catch (err) {
        await created.stop().catch(() => undefined);
        throw err;
      }
      component = created;
    },
    stop: async () => component?.stop(),
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
}

export const VERSION: string = (require('../../package.json') as { version: string }).version;

/**
 * One Tributary process. `all` (`tributary start`) is a complete single node: backbone, broker,
 * MQTT gateway and HTTP API. Scaled out over Kafka, `gateway`, `router` and `retain` each run
 * one service (plus the HTTP API for /status), and `api` the HTTP API alone, answering for the
 * gateways (their client routes over the nodes table, services/api cluster.ts). A ServiceHost starts the role's services (ROLES)
 * in dependency order and stops them in reverse: api, gateway, commands, broker, backbone, so
 * clients get DISCONNECT 0x8B before the broker persists their sessions.
 */
export class TributaryNode implements NodeStatusSource {
  backbone: Backbone | undefined;
  broker: Broker | undefined;
  gateway: Gateway | undefined;
  api: ApiServer | undefined;
  commands: CommandsBridge | undefined;
  router: RouterService | undefined;
  retain: RetainService | undefined;
  sys: SysPublisher | undefined;
  plugins: PluginHost | undefined;
  auth: AuthService | undefined;
  /** This process in the installation's `nodes` table, for the API's cluster view. */
  private snapshots: NodeSnapshots | undefined;
  /** Bans (limits.bans), flapping detection and overload protection. */
  limits: LimitsService | undefined;
  /** The router's own hook registry (a broker has its own: broker.hooks). */
  hooks: HookRegistry | undefined;
  /** The rule engine (services/rules): in `start` and `tributary rules`. */
  rules: RulesService | undefined;
  /** The event records gateways write for rules (`events` topic). */
  events: EventsService | undefined;
  /** The process's one copy of the rules table (the events and rules services share it). */
  private ruleStore: Promise<RuleStore> | undefined;
  /** Prometheus, the monitor sampler and tracing (services/observability). */
  observability: Observability | undefined;
  running = false;
  readonly version = VERSION;
  private readonly startedAt = Date.now();
  private readonly host: ServiceHost;

  constructor(
    readonly config: TributaryConfig,
    private readonly log: Logger,
    readonly role: NodeRole = 'all',
  ) {
    this.host = new ServiceHost(log);
  }

  get nodeName(): string {
    return this.config.node.name;
  }

  /** The services running now, in the order they started. */
  get services(): readonly string[] {
    return this.host.running;
  }

  private get dataDir(): string {
    return resolve(this.config.node.data_dir);
  }

  async start(): Promise<void> {
    const c = this.config;
    const dataDir = this.dataDir;
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (err) {
      throw new StartupError('DATA_DIR_UNAVAILABLE', `node.data_dir ${dataDir} cannot be created: ${(err as Error).message}`, { cause: err });
    }
    const role = this.role;
    if (role !== 'all' && c.backbone.type !== 'kafka') {
      throw new ConfigError(`tributary ${role} runs against Kafka: set backbone.type = kafka (TRIBUTARY_BACKBONE__TYPE=kafka) and backbone.kafka.brokers`);
    }
    if (role !== 'all' && c.backbone.kafka.partitions !== 1) {
      throw new ConfigError('backbone.kafka.partitions must be 1 when services run as separate processes (session cursors are single-partition offsets for now)');
    }
    if (role === 'gateway' && c.node.name === commonConfigFragment.schema.node.name.default) {
      this.log.warn({ name: c.node.name }, 'node.name is the default: every gateway needs its own (it names its lease and downlink topic)');
    }
    this.log.info({ role, dataDir, backbone: c.backbone.type, version: VERSION }, 'starting tributary');
    this.observability = new Observability({ config: c, node: this, logger: this.log.child({ service: 'observability' }) });
    for (const name of ROLES[role].services) {
      const service = this.service(name);
      if (service) this.host.add(service);
    }
    await this.host.start();
    this.running = true;
    this.warnIfOpen();
    const listeners = this.gateway?.listeners.map((l) => `${l.name}@${l.host}:${l.port}`);
    this.log.info(listeners ? { listeners, dataDir } : {}, 'tributary started');
  }

  /** Anyone who can reach a listener may connect while the authentication chain is empty: say so for listeners beyond loopback. */
  private warnIfOpen(): void {
    if (!this.gateway || (this.auth?.authenticators.length ?? 0) > 0) return;
    const open = this.gateway.listeners.filter((l) => !isLoopback(l.host)).map((l) => `${l.name}@${l.host}:${l.port}`);
    if (open.length) this.log.warn({ listeners: open }, 'authentication is off: any client that reaches these listeners may connect; configure the authentication chain (docs/security.md)');
  }

  /** The service `name` for this node's configuration, or undefined where the configuration turns it off. */
  private service(name: ServiceName): Service | undefined {
    const c = this.config;
    const log = this.log.child({ service: name });
    const broker = (): Broker => this.broker!;
    switch (name) {
      case 'backbone':
        return { name, start: () => this.startBackbone(), stop: async () => this.backbone?.stop() };
      case 'broker':
        return { name, dependsOn: ['backbone'], start: () => this.startBroker(log), stop: async () => this.broker?.stop() };
      case 'auth':
        // Before the listeners open (the gateway depends on it): no client connects unauthenticated.
        return around(name, ['broker'], () => {
          const kick = (clientId: string, rc: number): void => broker().session(clientId)?.owner?.kick(rc);
          const auth = (this.auth = new AuthService({ config: c, backbone: this.backbone!, hooks: broker().hooks, logger: log, nodeName: c.node.name, dataDir: this.dataDir, kick }));
          const limits = (this.limits = new LimitsService({ config: c, backbone: this.backbone!, hooks: broker().hooks, logger: log, kick }));
          return {
            start: async () => {
              await limits.start();
              await auth.start();
            },
            stop: async () => {
              await auth.stop();
              await limits.stop();
            },
          };
        });
      case 'sys':
        return {
          name,
          dependsOn: ['broker'],
          start: async () => {
            const sys = c.sys_topics;
            this.sys = new SysPublisher({
              node: c.node.name,
              version: VERSION,
              msgInterval: sys.sys_msg_interval,
              heartbeatInterval: sys.sys_heartbeat_interval,
              stats: () => this.stats(),
              metrics: () => this.metrics(),
              publish: (m) => broker().publish(m),
            });
            registerSysEvents(broker().hooks, this.sys, sys.sys_event_messages);
            this.sys.start();
          },
          // Only its timers: the broker still publishes clients' disconnected events while it stops.
          stop: async () => this.sys?.stop(),
        };
      case 'mappings':
        if (!c.bridge.kafka.mappings.length) return undefined;
        return {
          name,
          dependsOn: ['broker'],
          start: async () => {
            const mappings = new TopicMappings(this.backbone!, c.bridge.kafka.mappings, log);
            await mappings.start();
            registerMappings(broker().hooks, mappings, c.bridge.kafka.mappings.map((m) => m.filter));
          },
          // Nothing to release; the broker keeps copying what it publishes while it stops (wills).
          stop: async () => undefined,
        };
      case 'plugins': {
        // Hooks fire where the event happens: in the broker's process, and in the router's for
        // what only it knows ("no subscribers", scaled out). Before the listeners open (the
        // gateway depends on it), so plugins' hooks see every client.
        const inBroker = (ROLES[this.role].services as readonly ServiceName[]).includes('broker');
        return around(name, [inBroker ? 'broker' : 'backbone'], () => {
          const registry = inBroker ? broker().hooks : (this.hooks = new HookRegistry({ logger: log, timeoutMs: c.hooks.callback_timeout }));
          const publish = (m: PluginMessage): Promise<void> => {
            const msg = newMessage(m.topic, typeof m.payload === 'string' ? Buffer.from(m.payload) : m.payload, m.qos ?? 0, m.retain ?? false, '', m.properties);
            // The router has no broker: its plugins' messages go straight to the messages topic, which it routes.
            return (inBroker ? broker().publish(msg) : this.backbone!.append(MESSAGES_TOPIC, [messageRecord(msg)])).then(() => undefined);
          };
          const host = new PluginHost({ registry, logger: log, configs: c.plugin_config, publish });
          this.plugins = host;
          return { start: () => host.start(c.plugins), stop: () => host.stop() };
        });
      }
      case 'commands':
        if (!c.bridge.kafka.commands.enable) return undefined;
        return around(name, ['broker'], () => (this.commands = new CommandsBridge(this.backbone!, broker(), c.bridge.kafka.commands.topic, log)));
      case 'gateway':
        return around(name, ['broker', 'auth', 'plugins'], () => (this.gateway = new Gateway(c, broker(), log)));
      case 'events': {
        // Before the listeners open: the first clients' events reach the rules selecting them.
        // Scaled out, the router writes the events only it sees (message_dropped no_subscribers) from its own hooks.
        const inBroker = (ROLES[this.role].services as readonly ServiceName[]).includes('broker');
        return {
          name,
          dependsOn: inBroker ? ['broker'] : ['plugins'],
          start: async () => {
            const interest = new RuleInterest(await this.openRuleStore(), log);
            // Message rules see the publisher's username and address: record headers, written only while some rule selects from topics.
            // Scaled out, events another process reports (deliveries on another gateway, message_dropped by the router) name the publisher from them too.
            const scaledOut = c.backbone.type === 'kafka' && this.role !== 'all';
            const headers = (): void => setPublisherHeaders(interest.wantsMessages || (scaledOut && interest.wantsPublishers), c.node.name);
            interest.onChange(headers);
            headers();
            this.events = new EventsService({ hooks: inBroker ? broker().hooks : this.hooks!, backbone: this.backbone!, node: c.node.name, interest, log });
            await this.events.start();
          },
          stop: async () => this.events?.stop(),
        };
      }
      case 'rules': {
        const inBroker = (ROLES[this.role].services as readonly ServiceName[]).includes('broker');
        return {
          name,
          dependsOn: [inBroker ? 'broker' : 'backbone'],
          start: async () => {
            const republisher: Republisher = inBroker ? { publish: (m) => broker().publish(m) } : await this.backboneRepublisher(log);
            const rules = new RulesService({ backbone: this.backbone!, config: c, node: c.node.name, republisher, store: await this.openRuleStore(), log });
            try {
              await rules.start();
            } catch (err) {
              await rules.stop().catch(() => undefined);
              throw err;
            }
            this.rules = rules;
          },
          stop: async () => this.rules?.stop(),
        };
      }
      case 'api':
        if (!c.dashboard.listeners.http.enable) return undefined;
        return around(name, ['backbone'], () => {
          const apiKeys = ApiKeys.load(c.api_key.bootstrap_file);
          const hasBroker = (ROLES[this.role].services as readonly ServiceName[]).includes('broker');
          const cluster = new Cluster({ self: this.nodeName, peers: () => this.peers(), log });
          const traces = this.traces();
          const routes = [
            ...(this.auth?.routes() ?? []),
            ...(this.limits ? bannedRoutes(() => this.limits!.bans) : []),
            // The api role has no broker: the same routes answer from the gateways (their cluster view).
            ...(hasBroker || this.role === 'api' ? brokerRoutes({ nodeName: this.nodeName, broker: () => this.broker, gateway: () => this.gateway, cluster }) : []),
            ...(traces?.routes() ?? []),
            ...(this.observability?.routes() ?? []),
            ...(this.rules ? rulesRoutes(this.rules, this.nodeName, cluster) : []),
          ];
          // Scaled out, the routes a process does not run are answered by one that does.
          const forward = (path: string): 'gateway' | 'rules' | undefined => (!this.rules && isRulesApiPath(path) ? 'rules' : this.role === 'api' ? 'gateway' : undefined);
          const api = (this.api = new ApiServer(c.dashboard.listeners.http.bind, this, log, { apiKeys, dashboard: { username: c.dashboard.default_username, password: c.dashboard.default_password, tokenTtlMs: c.dashboard.token_expired_time }, routes, cluster, forward }));
          const address = (): { url: string; secret: string } | undefined => api.address && { url: advertisedUrl(api.address, c.dashboard.listeners.http.advertise), secret: cluster.secret };
          const snapshots = (this.snapshots = new NodeSnapshots(this.backbone!, this, this.role, log, { api: address, broker: hasBroker, rules: this.rules !== undefined }));
          return {
            start: async () => {
              await apiKeys.persist(this.backbone!, log);
              await api.start();
              // Once the API listens: the first snapshot names its address.
              await snapshots.start();
            },
            stop: async () => {
              traces?.close();
              // The row goes first, so the other processes stop calling this API before it closes.
              await snapshots.stop();
              await api.stop();
            },
          };
        });
      case 'router':
        return around(name, ['backbone', 'plugins'], () => {
          const tracing = this.observability?.tracing;
          const traceRoute = tracing && ((topic: string, parent: string, gateways: readonly string[]) => tracing.routeSpan(topic, parent, gateways));
          return (this.router = new RouterService({ backbone: this.backbone!, logger: log, messagesTopic: MESSAGES_TOPIC, strategy: c.mqtt.shared_subscription_strategy, leaseMs: c.cluster.lease, hooks: this.hooks, traceRoute }));
        });
      case 'retain':
        return around(name, ['backbone'], () => (this.retain = new RetainService({ backbone: this.backbone!, logger: log, delayed: { enable: c.delayed.enable, max: c.delayed.max_delayed_messages } })));
    }
  }

  private async startBackbone(): Promise<void> {
    const c = this.config;
    const backbone = c.backbone.type === 'kafka' ? await this.kafkaBackbone() : this.embeddedBackbone(this.dataDir);
    this.backbone = backbone;
    await backbone.start();
    await backbone.ensureTopics([
      { name: MESSAGES_TOPIC, cleanup: 'delete', retentionMs: c.backbone.messages.retention, retentionBytes: c.backbone.messages.retention_bytes },
      { name: SESSIONS_TABLE, cleanup: 'compact' },
      { name: 'retained', cleanup: 'compact' },
      { name: 'delayed', cleanup: 'compact' },
      ...(this.role === 'all' ? [] : [{ name: GATEWAYS_TABLE, cleanup: 'compact' as const }]),
    ]);
  }

  private openRuleStore(): Promise<RuleStore> {
    return (this.ruleStore ??= RuleStore.open(this.backbone!, this.log.child({ service: 'rules' })));
  }

  /**
   * Republish in the rules process, which has no broker: the message goes to the messages topic
   * (the router routes it), and a retained one into the retained table first, as a gateway does.
   */
  private async backboneRepublisher(log: Logger): Promise<Republisher> {
    const retained = await RetainedStore.open(this.backbone!, this.config.mqtt.max_retained_messages, log);
    return {
      publish: async (msg) => {
        if (msg.retain && this.config.mqtt.retain_available) await retained.set(msg);
        return this.backbone!.append(MESSAGES_TOPIC, [messageRecord(msg)]);
      },
    };
  }

  /** Log traces (/trace) where a broker runs: files under <data_dir>/trace. */
  private traces(): Traces | undefined {
    const b = this.broker;
    if (!b) return undefined;
    const peerhostOf = (id: string): string | undefined => b.session(id)?.client?.peerhost;
    return new Traces({ hooks: b.hooks, dir: join(this.dataDir, 'trace'), logger: this.log.child({ service: 'trace' }), node: this.config.node.name, peerhostOf });
  }

  private async startBroker(log: Logger): Promise<void> {
    const c = this.config;
    const backbone = this.backbone!;
    const deps = {
      config: c,
      backbone,
      sessions: await BackboneSessionStore.open(backbone, SESSIONS_TABLE, log),
      retained: await RetainedStore.open(backbone, c.mqtt.max_retained_messages, log),
      logger: log,
    };
    // One Broker; a gateway among several routes through the router service and leases its sessions.
    const scaledOut = this.role === 'gateway' ? clusterStrategies({ gateway: c.node.name, leaseMs: c.cluster.lease, ackTimeoutMs: c.cluster.route_ack_timeout }) : {};
    this.broker = new Broker({ ...deps, ...scaledOut });
    this.observability?.attachBroker(this.broker.hooks, backbone);
    await this.broker.start();
  }

  private embeddedBackbone(dataDir: string): Backbone {
    const e = this.config.backbone.embedded;
    return new EmbeddedBackbone({
      dataDir,
      fsync: e.fsync,
      fsyncIntervalMs: e.fsync_interval_ms,
      segmentBytes: e.segment_bytes,
      topicPrefix: this.config.backbone.topic_prefix,
      logger: this.log.child({ service: 'backbone' }),
    });
  }

  private kafkaBackbone(): Promise<Backbone> {
    const k = this.config.backbone.kafka;
    const brokers = k.brokers.split(',').map((b) => b.trim()).filter(Boolean);
    this.log.info({ brokers, prefix: this.config.backbone.topic_prefix }, 'using the Kafka backbone');
    return createKafkaBackbone({
      brokers,
      clientId: k.client_id,
      topicPrefix: this.config.backbone.topic_prefix,
      partitions: k.partitions,
      replicationFactor: k.replication_factor,
      minInsyncReplicas: k.min_insync_replicas,
      stallTimeoutMs: k.stall_timeout,
      lingerMs: k.linger_ms,
      fetchWaitMs: k.fetch_wait_ms,
      sessionTimeoutMs: k.session_timeout,
      logger: this.log.child({ service: 'backbone' }),
    });
  }

  /** Closes clients (v5: DISCONNECT 0x8B), persists sessions and flushes the data directory. */
  async stop(): Promise<void> {
    this.running = false;
    await this.host.stop();
    await this.observability?.stop();
    this.log.info('tributary stopped');
  }

  /** The other processes of the installation, from the `nodes` table. */
  peers(): NodeSnapshot[] {
    return this.snapshots?.peers() ?? [];
  }

  stats(): Record<string, number> {
    const b = this.broker;
    const uptime = Math.floor((Date.now() - this.startedAt) / 1000);
    if (this.router) return { ...this.router.stats, 'sessions.count': this.router.stats['router.sessions'], uptime };
    if (this.retain) return { ...this.retain.stats, 'retained.count': this.retain.retainedCount, 'delayed.count': this.retain.delayedCount, uptime };
    return {
      'connections.count': this.gateway?.connectionCount ?? 0,
      'sessions.count': b?.sessionCount ?? 0,
      'subscriptions.count': b?.router.subscriptionCount ?? 0,
      'topics.count': b?.router.filterCount ?? 0,
      'retained.count': b?.retainedCount ?? 0,
      'delayed.count': b?.delayedCount ?? 0,
      ...b?.flowStats(),
      uptime,
    };
  }

  /** Authenticators, authorization sources and bans, for /prometheus/auth. */
  authInfo(): { authenticators: readonly string[]; sources: readonly string[]; banned: number } | undefined {
    if (!this.auth) return undefined;
    return { authenticators: this.auth.authenticators.map((a) => a.id), sources: this.auth.sources.map((s) => s.type), banned: this.limits?.bans.size ?? 0 };
  }

  /** Rules, sinks and connectors of this process's rule engine, for /prometheus/data_integration. */
  dataIntegration(): ReturnType<RulesService['dataIntegration']> | undefined {
    return this.rules?.dataIntegration();
  }

  metrics(): Record<string, number> {
    const rules = this.rules?.engine?.totals;
    const ruleMetrics: Record<string, number> = rules ? { 'rules.matched': rules.matched, 'actions.executed': rules.actionsExecuted, 'actions.messages': rules.actionsMessages } : {};
    return this.broker ? { ...this.broker.metrics.toJSON(), ...this.auth?.metrics, ...this.limits?.metrics, ...this.broker.hooks.counters, ...ruleMetrics } : ruleMetrics;
  }
}
