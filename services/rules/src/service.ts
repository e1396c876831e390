import type { Backbone, ConsumedRecord, Consumer } from '@tributary/backbone';
import { ConfigError, type Logger, type Service } from '@tributary/common';
import { decodeMessage, REPUBLISH_BY_HEADER } from '@tributary/mqtt';
import type { RuleRecord } from '@tributary/records';
import type { Republisher } from './actions';
import { type BufferOptions, SinkBuffer } from './buffer';
import type { RulesConfig } from './config';
import { RuleEngine, Outputs } from './engine';
import { decodeEvent, EVENTS_TOPIC, messageColumns } from './events';
import { SinkMetrics } from './metrics';
import { type Connector, type ConnectorStatus, createConnector, createSink, createSource, type ResourceOpts, type Source, type SourceMessage } from './sinks';
import { RuleStore } from './store';
import { textOrBytes, type ValueMap } from '@tributary/rulesql';

const MESSAGES_TOPIC = 'messages';

function bufferOptions(r: ResourceOpts): BufferOptions {
  return { batchSize: r.batch_size, inflightWindow: r.inflight_window, requestTtlMs: r.request_ttl ?? 0, maxBufferMessages: r.max_buffer_messages, maxBufferBytes: r.max_buffer_bytes, maxRetryDelayMs: r.health_check_interval };
}
/** The consumer group of the rule engine on `messages` (one per installation). */
export const RULES_GROUP = 'rules';
/**
 * Its group on `events`: a group of its own, since Kafka's group assignment spreads the
 * partitions of every topic any member subscribes to over all members (kafkajs's round-robin
 * does), so one group over both topics would hand the events to the messages consumer.
 */
export const RULES_EVENTS_GROUP = 'rules-events';

/** What RulesService.dataIntegration gives (the shape @tributary/observability reads). */
export interface DataIntegration {
  rules: { id: string; enable: boolean; actions: number; metrics: Record<string, number> }[];
  actions: { id: string; enable: boolean; status: ConnectorStatus; metrics: Record<string, number> }[];
  connectors: { id: string; enable: boolean; status: ConnectorStatus }[];
}

export interface RulesServiceOptions {
  backbone: Backbone;
  config: RulesConfig;
  node: string;
  /** How republish publishes: the local broker (single node) or the messages topic (the rules process). */
  republisher: Republisher | undefined;
  /** The process's rules table (one per process: a table has one change listener); opened here when not given. */
  store?: RuleStore;
  log: Logger;
}

/**
 * The rule engine as a service (docs/rules.md): the rules table, the connectors, sinks and
 * sources of the configuration, and the consumers that feed the engine. It reads `messages`
 * and `events` in the consumer group `rules`, each only once a running rule selects from it,
 * and commits a batch only after every action of it is durable (a republished message
 * appended, a sink's request in its buffer topic), so a `kill -9` loses no matched message:
 * the batch runs again after the restart (at least once).
 */
export class RulesService implements Service {
  readonly name = 'rules';
  store: RuleStore | undefined;
  engine: RuleEngine | undefined;
  readonly connectors = new Map<string, Connector>();
  readonly sinks = new Map<string, SinkBuffer>();
  /** Each sink's connector. */
  readonly sinkConnectors = new Map<string, Connector>();
  readonly sources = new Map<string, Source>();
  private messagesConsumer: Consumer | undefined;
  private eventsConsumer: Consumer | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private readonly healthChecks: NodeJS.Timeout[] = [];
  private stopping = false;
  /** Records of `messages`/`events` that did not decode (skipped). */
  undecodable = 0;

  constructor(private readonly opts: RulesServiceOptions) {}

  async start(): Promise<void> {
    const { backbone, config, log } = this.opts;
    this.store = this.opts.store ?? (await RuleStore.open(backbone, log));
    for (const c of config.connectors) if (c.enable) this.connectors.set(`${c.type}:${c.name}`, createConnector(c, { logger: log, node: this.opts.node }));
    for (const a of config.actions) {
      if (!a.enable) continue;
      const connector = this.connectors.get(`${a.type}:${a.connector}`);
      if (!connector) throw new ConfigError(`actions.${a.type}.${a.name}.connector: no connector "${a.connector}" of type ${a.type} (connectors.${a.type}.${a.connector})`);
      const sink = createSink(a, connector);
      this.sinkConnectors.set(sink.id, connector);
      this.sinks.set(sink.id, new SinkBuffer(backbone, sink, bufferOptions(a.resource_opts), new SinkMetrics(), log.child({ sink: sink.id })));
    }
    for (const s of config.sources) {
      if (!s.enable) continue;
      const connector = this.connectors.get(`${s.type}:${s.connector}`);
      if (!connector) throw new ConfigError(`sources.${s.type}.${s.name}.connector: no connector "${s.connector}" of type ${s.type} (connectors.${s.type}.${s.connector})`);
      const source = createSource(s, connector);
      this.sources.set(source.id, source);
    }
    for (const c of this.connectors.values()) await c.start();
    for (const b of this.sinks.values()) await b.start();
    for (const c of config.connectors) if (c.enable) this.checkHealth(this.connectors.get(`${c.type}:${c.name}`)!, c.resource_opts.health_check_interval);
    const engine = new RuleEngine(this.store, this.sinks, this.opts.republisher, log);
    this.engine = engine;
    await this.writeConfiguredRules();
    for (const source of this.sources.values()) await source.start((m) => this.onSourceMessage(source.id, m));
    engine.onChange(() => void this.followInterest().catch((err: unknown) => log.error({ err }, 'rules: cannot start reading the backbone for a new rule; it runs after a restart')));
    await this.followInterest();
    this.sampler = setInterval(() => {
      const now = Date.now();
      engine.sample(now);
      for (const b of this.sinks.values()) b.metrics.sample(now);
    }, config.rule_engine.sample_interval);
    this.sampler.unref();
  }

  /**
   * EMQX's health check: the connector checks its remote every `interval` (the status /connectors
   * shows), and when it is back the sinks on it waiting out a back-off try again at once.
   */
  private checkHealth(connector: Connector, interval: number): void {
    let running = false;
    const t = setInterval(() => {
      if (running) return;
      running = true;
      const before = connector.status();
      void connector
        .healthCheck()
        .then((now) => {
          if (now !== 'connected') return;
          if (before !== 'connected') this.opts.log.info({ connector: `${connector.type}:${connector.name}` }, 'connector health check: the remote answers again');
          for (const [id, b] of this.sinks) if (this.sinkConnectors.get(id) === connector) b.retryNow();
        })
        .catch(() => undefined)
        .finally(() => (running = false));
    }, interval);
    t.unref();
    this.healthChecks.push(t);
  }

  /** `rule_engine.rules` go into the table at start (the configuration wins over an API edit of the same id). */
  private async writeConfiguredRules(): Promise<void> {
    const now = Date.now();
    for (const r of this.opts.config.rule_engine.rules) {
      const old = this.store!.get(r.id);
      const same = old && old.sql === r.sql && old.enable === r.enable && old.name === r.name && old.description === r.description && JSON.stringify(old.actions) === JSON.stringify(r.actions) && JSON.stringify(old.metadata) === JSON.stringify(r.metadata);
      if (same) continue;
      const record: RuleRecord = { ...r, created_at: old?.created_at ?? now, updated_at: now };
      try {
        this.engine!.compile(record);
      } catch (err) {
        throw new ConfigError(`rule_engine.rules.${r.id}: ${(err as Error).message}`);
      }
      await this.store!.put(record);
    }
  }

  /** Starts reading `messages` or `events` once a running rule selects from them (and keeps reading). */
  private async followInterest(): Promise<void> {
    const engine = this.engine!;
    const { backbone } = this.opts;
    if (this.stopping) return;
    if (engine.wantsMessages && !this.messagesConsumer) {
      this.messagesConsumer = await backbone.consume({ topic: MESSAGES_TOPIC, group: RULES_GROUP, from: 'latest', eachBatch: (records) => this.onMessages(records) });
    }
    if (engine.sourceNames.some((s) => s.startsWith('$events/')) && !this.eventsConsumer) {
      await backbone.ensureTopics([{ name: EVENTS_TOPIC, cleanup: 'delete' }]);
      this.eventsConsumer = await backbone.consume({ topic: EVENTS_TOPIC, group: RULES_EVENTS_GROUP, from: 'latest', eachBatch: (records) => this.onEvents(records) });
    }
  }

  private async onMessages(records: ConsumedRecord[]): Promise<void> {
    const engine = this.engine!;
    const out = new Outputs();
    const node = this.opts.node;
    for (const r of records) {
      if (r.key === null || r.value === null) continue;
      const value = r.value;
      engine.onMessage(
        r.key,
        () => {
          let msg;
          try {
            msg = decodeMessage(value);
          } catch {
            this.undecodable++;
            return {};
          }
          msg.offset = r.offset;
          return messageColumns(msg, r.headers, node);
        },
        r.headers[REPUBLISH_BY_HEADER],
        r.timestamp,
        out,
      );
    }
    await engine.flush(out);
  }

  private async onEvents(records: ConsumedRecord[]): Promise<void> {
    const engine = this.engine!;
    const out = new Outputs();
    for (const r of records) {
      const ev = decodeEvent(r);
      if (!ev) {
        this.undecodable++;
        continue;
      }
      engine.onEvent(ev.source, ev.columns, r.timestamp, out);
    }
    await engine.flush(out);
  }

  /** An MQTT source's message runs the rules selecting `$sources/<id>` (and 5.0–5.3's `$bridges/<id>`); it is acknowledged once their actions are durable. */
  private async onSourceMessage(id: string, m: SourceMessage): Promise<void> {
    const engine = this.engine!;
    const now = Date.now();
    const columns: ValueMap = {
      event: `$sources/${id}`,
      id: `${now.toString(16)}${Math.floor(Math.random() * 0xffffffff).toString(16)}`,
      payload: textOrBytes(m.payload),
      server: m.server,
      topic: m.topic,
      qos: m.qos,
      dup: m.dup,
      retain: m.retain,
      pub_props: m.pubProps as ValueMap,
      message_received_at: m.receivedAt,
      timestamp: now,
      node: this.opts.node,
    };
    const out = new Outputs();
    engine.onEvent(`$sources/${id}`, columns, now, out);
    engine.onEvent(`$bridges/${id}`, columns, now, out);
    await engine.flush(out);
  }

  /**
   * Rules, sinks and connectors with their metrics (EMQX's keys), for Prometheus's
   * /data_integration: every rule of the table; every configured sink and connector, the
   * disabled ones with enable false and status disconnected.
   */
  dataIntegration(): DataIntegration {
    const { config } = this.opts;
    const engine = this.engine;
    const rules = (this.store?.list() ?? []).map((r) => ({ id: r.id, enable: r.enable, actions: r.actions.length, metrics: engine?.metricsOf(r.id)?.toJSON() ?? {} }));
    const actions = config.actions.map((a) => {
      const id = `${a.type}:${a.name}`;
      const buffer = this.sinks.get(id);
      return { id, enable: buffer !== undefined, status: this.sinkConnectors.get(id)?.status() ?? 'disconnected', metrics: buffer?.metrics.toJSON() ?? {} };
    });
    const connectors = config.connectors.map((c) => {
      const id = `${c.type}:${c.name}`;
      const connector = this.connectors.get(id);
      return { id, enable: connector !== undefined, status: connector?.status() ?? 'disconnected' };
    });
    return { rules, actions, connectors };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sampler) clearInterval(this.sampler);
    for (const t of this.healthChecks) clearInterval(t);
    for (const s of this.sources.values()) await s.stop().catch(() => undefined);
    await this.messagesConsumer?.stop();
    await this.eventsConsumer?.stop();
    for (const b of this.sinks.values()) await b.stop();
    for (const c of this.connectors.values()) await c.stop().catch(() => undefined);
  }
}
