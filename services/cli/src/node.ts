import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Backbone, createKafkaBackbone, EmbeddedBackbone } from '@tributary/backbone';
import { describeConfig, Logger, TributaryConfig } from '@tributary/common';
import { ConfigError, StartupError } from '@tributary/common';
import { ApiServer, NodeStatusSource } from '@tributary/api';
import { BackboneSessionStore, Broker, clusterStrategies, CommandsBridge, Gateway, MESSAGES_TOPIC, registerMappings, registerSysEvents, RetainedStore, SysPublisher, TopicMappings } from '@tributary/gateway';
import { PluginHost } from '@tributary/hooks';
import { newMessage } from '@tributary/mqtt';
import { GATEWAYS_TABLE, RouterService, SESSIONS_TABLE } from '@tributary/router';
import { RetainService } from '@tributary/retain';

/** What one process runs: everything (`start`), or one service of a scaled-out installation. */
export type NodeRole = 'all' | 'gateway' | 'router' | 'retain';

export const VERSION: string = (require('../../package.json') as { version: string }).version;

/**
 * One Tributary process. `all` (`tributary start`) is a complete single node: backbone, broker,
 * MQTT gateway and HTTP API. Scaled out over Kafka, `gateway`, `router` and `retain` each run
 * one service (plus the HTTP API for /status). Services start in dependency order and stop in reverse.
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
  running = false;
  readonly version = VERSION;
  private readonly startedAt = Date.now();

  constructor(
    readonly config: TributaryConfig,
    private readonly log: Logger,
    readonly role: NodeRole = 'all',
  ) {}

  get nodeName(): string {
    return this.config.node.name;
  }

  async start(): Promise<void> {
    const c = this.config;
    const dataDir = resolve(c.node.data_dir);
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
    if (role === 'gateway' && c.node.name === describeConfig().find((k) => k.key === 'node.name')?.default) {
      this.log.warn({ name: c.node.name }, 'node.name is the default: every gateway needs its own (it names its lease and downlink topic)');
    }
    this.log.info({ role, dataDir, backbone: c.backbone.type, version: VERSION }, 'starting tributary');
    const backbone = c.backbone.type === 'kafka' ? await this.kafkaBackbone() : this.embeddedBackbone(dataDir);
    this.backbone = backbone;
    await backbone.start();
    await backbone.ensureTopics([
      { name: MESSAGES_TOPIC, cleanup: 'delete', retentionMs: c.backbone.messages.retention, retentionBytes: c.backbone.messages.retention_bytes },
      { name: SESSIONS_TABLE, cleanup: 'compact' },
      { name: 'retained', cleanup: 'compact' },
      { name: 'delayed', cleanup: 'compact' },
      ...(role === 'all' ? [] : [{ name: GATEWAYS_TABLE, cleanup: 'compact' as const }]),
    ]);
    if (role === 'router' || role === 'retain') return this.startService(role, backbone);
    const log = this.log.child({ service: 'broker' });
    const deps = {
      config: c,
      backbone,
      sessions: await BackboneSessionStore.open(backbone),
      retained: await RetainedStore.open(backbone, c.mqtt.max_retained_messages),
      logger: log,
    };
    // One Broker; a gateway among several routes through the router service and leases its sessions.
    const scaledOut = role === 'gateway' ? clusterStrategies({ gateway: c.node.name, leaseMs: c.cluster.lease, ackTimeoutMs: c.cluster.route_ack_timeout }) : {};
    this.broker = new Broker({ ...deps, ...scaledOut });
    const broker = this.broker;
    await broker.start();
    const sys = c.sys_topics;
    this.sys = new SysPublisher({
      node: c.node.name,
      version: VERSION,
      msgInterval: sys.sys_msg_interval,
      heartbeatInterval: sys.sys_heartbeat_interval,
      stats: () => this.stats(),
      metrics: () => this.metrics(),
      publish: (m) => broker.publish(m),
    });
    registerSysEvents(broker.hooks, this.sys, sys.sys_event_messages);
    const mappings = c.bridge.kafka.mappings;
    if (mappings.length) {
      const m = new TopicMappings(backbone, mappings, this.log.child({ service: 'mappings' }));
      await m.start();
      registerMappings(broker.hooks, m, mappings.map((x) => x.filter));
    }
    // Plugins load before the listeners open, so their hooks see every client.
    this.plugins = new PluginHost({
      registry: broker.hooks,
      logger: this.log.child({ service: 'plugins' }),
      configs: c.plugin_config,
      publish: (m) => broker.publish(newMessage(m.topic, typeof m.payload === 'string' ? Buffer.from(m.payload) : m.payload, m.qos ?? 0, m.retain ?? false, '', m.properties)).then(() => undefined),
    });
    await this.plugins.start(c.plugins);
    if (c.bridge.kafka.commands.enable) {
      this.commands = new CommandsBridge(backbone, this.broker, c.bridge.kafka.commands.topic, this.log.child({ service: 'commands' }));
      await this.commands.start();
    }
    this.gateway = new Gateway(c, this.broker, this.log.child({ service: 'gateway' }));
    await this.gateway.start();
    await this.startApi();
    this.sys.start();
    this.running = true;
    this.log.info({ listeners: this.gateway.listeners.map((l) => `${l.name}@${l.host}:${l.port}`), dataDir }, 'tributary started');
  }

  /** `tributary router` / `tributary retain`: one service and the HTTP API. */
  private async startService(role: 'router' | 'retain', backbone: Backbone): Promise<void> {
    const c = this.config;
    const log = this.log.child({ service: role });
    if (role === 'router') {
      this.router = new RouterService({ backbone, logger: log, messagesTopic: MESSAGES_TOPIC, strategy: c.mqtt.shared_subscription_strategy, leaseMs: c.cluster.lease });
      await this.router.start();
    } else {
      this.retain = new RetainService({ backbone, logger: log, delayed: { enable: c.delayed.enable, max: c.delayed.max_delayed_messages } });
      await this.retain.start();
    }
    await this.startApi();
    this.running = true;
    this.log.info('tributary started');
  }

  private async startApi(): Promise<void> {
    if (!this.config.dashboard.listeners.http.enable) return;
    this.api = new ApiServer(this.config.dashboard.listeners.http.bind, this, this.log.child({ service: 'api' }));
    await this.api.start();
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
      lingerMs: k.linger_ms,
      fetchWaitMs: k.fetch_wait_ms,
      sessionTimeoutMs: k.session_timeout,
      logger: this.log.child({ service: 'backbone' }),
    });
  }

  /** Closes clients (v5: DISCONNECT 0x8B), persists sessions and flushes the data directory. */
  async stop(): Promise<void> {
    this.running = false;
    await this.api?.stop();
    await this.gateway?.stop();
    await this.commands?.stop();
    this.sys?.stop();
    await this.plugins?.stop();
    await this.broker?.stop();
    await this.router?.stop();
    await this.retain?.stop();
    await this.backbone?.stop();
    this.log.info('tributary stopped');
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

  metrics(): Record<string, number> {
    return this.broker ? { ...this.broker.metrics.toJSON(), ...this.broker.hooks.counters } : {};
  }
}
