import { hostname } from 'node:os';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { bool, ConfigProblem, duration, type Infer, int, type Leaf, oneOf, str } from '@tributary/common';
import { checkTopicFilter, checkTopicName, topicMatches } from '@tributary/mqtt';
import { compileTemplate, type Template } from '../template';
import { jsonEncode, type ValueMap } from '@tributary/rulesql';
import { actionCommon, checkedString, connectorCommon, parseHostPort, required, server, sourceCommon, sslFields, template, unused, valueOrTemplate, withIgnored } from './fields';
import { BaseConnector, bytesOf, type ConnectorOptions, type ConnectorStatus, messageOf, rejected, type Sink, type Source, type SourceMessage, unavailable } from './types';

function falseOnly(doc: string): Leaf<boolean> {
  const b = bool(false, doc);
  return { ...b, parse: (raw) => (b.parse(raw) === true ? new ConfigProblem('bridge_mode is not supported (mqtt.js cannot send the bridge bit)') : b.parse(raw)) };
}

/**
 * `connectors.mqtt.<name>`. One connection per connector (pool_size is accepted and not used);
 * retry_interval and max_inflight are accepted too (MQTT resends unacknowledged messages on
 * reconnect). With proto_ver v5 and clean_start false the session is kept for 2 hours.
 */
export const mqttConnectorFields = withIgnored(
  {
    ...connectorCommon,
    server: required(server('', 'The remote broker: "host[:port]" (1883, or 8883 with ssl).', 1883)),
    proto_ver: oneOf(['v3', 'v4', 'v5'], 'v4', 'MQTT 3.1 (v3), 3.1.1 (v4) or 5.0 (v5).'),
    clientid_prefix: str('', 'Prefix of the client id (<prefix><connector name>:<node>).'),
    username: str('', 'User name; empty: none.'),
    password: str('', 'Password; empty: none.'),
    clean_start: bool(true, 'Start a new session on each connect; false keeps it, so unacknowledged messages are redelivered.'),
    keepalive: duration(160_000, 'Keep alive interval (whole seconds are sent).', 1_000, 65_535_000),
    connect_timeout: duration(15_000, 'How long a connect may take (ours).', 1, 600_000),
    retry_interval: unused(duration(15_000, 'EMQX: how long before an unacknowledged QoS 1/2 message is sent again.', 0)),
    max_inflight: unused(int(32, 'EMQX: QoS 1/2 messages in flight.', 1)),
    pool_size: unused(int(8, 'EMQX: connections to the remote (here one).', 1)),
    bridge_mode: falseOnly('Must be false (the 3.1.1 bridge bit is not supported).'),
    ssl: sslFields,
  },
  ['static_clientids', 'reconnect_interval'],
);

const isQos = (v: unknown): v is number => v === 0 || v === 1 || v === 2;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

/** `actions.mqtt.<name>.parameters`: what is published to the remote broker. */
export const mqttSinkParams = withIgnored(
  {
    topic: required(template('', 'Remote topic (a template).')),
    qos: valueOrTemplate<number>(1, 'QoS 0, 1, 2 or a template such as "${qos}".', isQos),
    retain: valueOrTemplate<boolean>(false, 'Retain flag or a template such as "${flags.retain}".', isBool),
    payload: template('', 'Payload (a template); empty: the whole data map as JSON.'),
  },
  ['local'],
);

function checkFilter(v: string): ConfigProblem | undefined {
  const problem = checkTopicFilter(bareFilter(v));
  return problem ? new ConfigProblem(`not a topic filter (${problem}): ${JSON.stringify(v)}`) : undefined;
}

/** `sources.mqtt.<name>.parameters`: what is subscribed to on the remote broker. */
export const mqttSourceParams = withIgnored(
  {
    topic: required(checkedString('', 'Remote topic filter ($share/<group>/ allowed).', checkFilter)),
    qos: int(1, 'Subscription QoS.', 0, 2),
  },
  ['no_local', 'retain_as_published', 'retain_handling'],
);

export type MqttConnectorSpec = { readonly type: 'mqtt'; readonly name: string } & Infer<typeof mqttConnectorFields>;
export type MqttSinkParams = Infer<typeof mqttSinkParams>;
export type MqttActionSpec = { readonly type: 'mqtt'; readonly name: string } & Infer<typeof actionCommon> & { readonly parameters: MqttSinkParams };
export type MqttSourceParams = Infer<typeof mqttSourceParams>;
export type MqttSourceSpec = { readonly type: 'mqtt'; readonly name: string } & Infer<typeof sourceCommon> & { readonly parameters: MqttSourceParams };

/** A filter without its `$share/<group>/` or `$queue/` prefix: what topics it matches. */
function bareFilter(filter: string): string {
  if (filter.startsWith('$queue/')) return filter.slice('$queue/'.length);
  const m = /^\$share\/[^/]+\/(.*)$/s.exec(filter);
  return m ? m[1]! : filter;
}

/** EMQX's printable names of MQTT 5 publish properties (mqtt.js names → 'Content-Type', ...). */
const PROP_NAMES: Record<string, string> = {
  payloadFormatIndicator: 'Payload-Format-Indicator',
  messageExpiryInterval: 'Message-Expiry-Interval',
  topicAlias: 'Topic-Alias',
  responseTopic: 'Response-Topic',
  correlationData: 'Correlation-Data',
  subscriptionIdentifier: 'Subscription-Identifier',
  contentType: 'Content-Type',
};

/** A PUBLISH's properties as EMQX shows them: 'User-Property' a map (the last value of a key), 'User-Property-Pairs' every pair. */
export function pubPropsOf(props: IPublishPacket['properties']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!props) return out;
  for (const [k, v] of Object.entries(props)) {
    if (k === 'userProperties' && v && typeof v === 'object') {
      const map: Record<string, string> = {};
      const pairs: { key: string; value: string }[] = [];
      for (const [uk, uv] of Object.entries(v as Record<string, string | string[]>)) {
        for (const one of Array.isArray(uv) ? uv : [uv]) {
          pairs.push({ key: uk, value: one });
          map[uk] = one;
        }
      }
      out['User-Property'] = map;
      out['User-Property-Pairs'] = pairs;
    } else if (v !== undefined) out[PROP_NAMES[k] ?? k] = v;
  }
  return out;
}

/** Session expiry asked for with v5 and clean_start false (seconds). */
const SESSION_EXPIRY_S = 7200;
const RECONNECT_MS = 1000;
/**
 * A resumed session may deliver before the sources started: for this long after the client was
 * created such messages are left unacknowledged (and fetched again once a source starts); later
 * they are acknowledged and dropped (a subscription of a source that no longer exists).
 */
const ORPHAN_GRACE_MS = 30_000;

/** Our marker on a nack, so the connector's error listener knows it. */
class NotHandled extends Error {}

interface Pending {
  reject(err: Error): void;
}

/**
 * An MQTT bridge connector: one mqtt.js client to the remote broker, reconnecting every second.
 * Sinks publish through it; sources subscribe through it. Incoming messages are handled one at a
 * time (mqtt.js's backpressure: while a handler runs the client reads nothing, PUBACKs of sinks
 * and SUBACKs included, so handlers must be quick). A QoS 1/2 message is acknowledged after every
 * matching source's onMessage resolved (MQTT 5: PUBACK/PUBREC through customHandleAcks; 3.1 and
 * 3.1.1: PUBACK/PUBCOMP after handleMessage). When one rejects, the message is left
 * unacknowledged and the connection is dropped, so the remote redelivers it on reconnect — to a
 * persistent session only (clean_start false); with clean_start true the remote drops it.
 * Caveat of 3.1/3.1.1 QoS 2: PUBREC is sent on arrival, so a crash before PUBCOMP loses it.
 */
export class MqttConnector extends BaseConnector<MqttConnectorSpec> {
  readonly type = 'mqtt';
  readonly server: string;
  private client: MqttClient | undefined;
  private readonly sources = new Set<MqttSource>();
  /** Sources whose subscription the remote session holds. */
  private readonly subscribed = new Set<MqttSource>();
  private readonly pending = new Set<Pending>();
  /** A QoS 1/2 message came that no source takes (a persistent session resumed before its sources started): left unacknowledged. */
  private orphans = false;
  /** When the client was created: orphans are kept unacknowledged this long after. */
  private startedAt = 0;
  /** Messages being handled (the client reads nothing else meanwhile). */
  private handling = 0;

  constructor(spec: MqttConnectorSpec, opts: ConnectorOptions = {}) {
    super(spec, opts);
    const hp = parseHostPort(spec.server, spec.ssl.enable ? 8883 : 1883) as { host: string; port: number };
    this.server = `${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port}`;
  }

  private get v5(): boolean {
    return this.spec.proto_ver === 'v5';
  }

  /** Connects (waits for the first CONNACK, an error or connect_timeout; the client keeps reconnecting). */
  async start(): Promise<void> {
    if (this.client) return;
    const s = this.spec;
    const { host, port } = parseHostPort(s.server, s.ssl.enable ? 8883 : 1883) as { host: string; port: number };
    const tls = this.tls(host);
    const options: IClientOptions = {
      host,
      port,
      protocol: tls ? 'mqtts' : 'mqtt',
      ...((tls ?? {}) as IClientOptions),
      protocolId: s.proto_ver === 'v3' ? 'MQIsdp' : 'MQTT',
      protocolVersion: s.proto_ver === 'v3' ? 3 : s.proto_ver === 'v4' ? 4 : 5,
      clientId: `${s.clientid_prefix}${this.name}:${this.opts.node ?? hostname()}`,
      ...(s.username ? { username: s.username } : {}),
      ...(s.password ? { password: s.password } : {}),
      clean: s.clean_start,
      keepalive: Math.round(s.keepalive / 1000),
      connectTimeout: s.connect_timeout,
      reconnectPeriod: RECONNECT_MS,
      resubscribe: false,
      queueQoSZero: false,
      ...(this.v5 && !s.clean_start ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : {}),
      ...(this.v5 ? { customHandleAcks: (_t: string, _m: Buffer, packet: IPublishPacket, done: (e: Error | number, code?: number) => void) => this.ackAfterHandled(packet, done) } : {}),
    };
    this.state = 'connecting';
    this.startedAt = Date.now();
    const client = mqtt.connect(options);
    this.client = client;
    client.handleMessage = (packet, callback) => this.handleMessage(packet, callback);
    client.on('connect', (connack) => {
      this.state = 'connected';
      if (!connack.sessionPresent) this.subscribed.clear();
      for (const src of this.sources) if (!this.subscribed.has(src)) void this.subscribe(src).catch(() => undefined);
    });
    client.on('close', () => {
      if (this.client === client) this.state = 'connecting';
      this.failPending(new Error('connection closed'));
    });
    client.on('error', (err) => {
      if (!(err instanceof NotHandled)) this.opts.logger?.warn({ connector: `mqtt:${this.name}`, err: err.message }, 'mqtt bridge connection error');
    });
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        client.off('connect', done);
        client.off('close', done);
        client.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, s.connect_timeout);
      client.once('connect', done);
      client.once('close', done);
      client.once('error', done);
    });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.state = 'disconnected';
    this.subscribed.clear();
    this.failPending(new Error('connector stopped'));
    if (!client) return;
    // A message being handled holds the client's reading: a DISCONNECT would wait behind it.
    const force = this.handling > 0 || !client.connected || Object.keys(client.outgoing).length > 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => client.stream?.destroy(), 2_000);
      client.end(force, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async healthCheck(): Promise<ConnectorStatus> {
    if (!this.client) return 'disconnected';
    this.state = this.client.connected ? 'connected' : this.client.reconnecting ? 'connecting' : 'disconnected';
    return this.state;
  }

  private failPending(err: Error): void {
    for (const p of [...this.pending]) p.reject(err);
  }

  /** Publishes one message; resolves when the remote acknowledged it (QoS 0: when written). */
  publish(topic: string, payload: Buffer, opts: IClientPublishOptions): Promise<void> {
    const client = this.client;
    if (!client?.connected) return Promise.reject(new Error(client ? 'not connected' : 'connector stopped'));
    return new Promise<void>((resolve, reject) => {
      const entry: Pending = {
        reject: (err) => {
          this.pending.delete(entry);
          reject(err);
        },
      };
      this.pending.add(entry);
      client.publish(topic, payload, opts, (err) => {
        if (!this.pending.delete(entry)) return;
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** Registers a source and subscribes it (now when connected, else on connect). */
  async addSource(src: MqttSource): Promise<void> {
    this.sources.add(src);
    if (this.client?.connected) await this.subscribe(src);
    // Messages the session delivered before this source was there: reconnecting makes the remote send them again.
    if (this.orphans) {
      this.orphans = false;
      this.nack();
    }
  }

  /**
   * Unregisters a source. With clean_start true its subscription is dropped (UNSUBSCRIBE, not
   * waited for: a message being handled holds the client's reading); with clean_start false the
   * session keeps it, so what arrives while the process is down is delivered to the next one.
   */
  removeSource(src: MqttSource): void {
    this.sources.delete(src);
    const was = this.subscribed.delete(src);
    const client = this.client;
    const still = [...this.sources].some((s) => s.filter === src.filter);
    if (this.spec.clean_start && client?.connected && was && !still) client.unsubscribe(src.filter);
  }

  private subscribe(src: MqttSource): Promise<void> {
    const client = this.client;
    if (!client) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      client.subscribe(src.filter, { qos: src.qos as 0 | 1 | 2 }, (err, granted) => {
        const code = granted?.[0]?.qos;
        if (err || code === undefined || code >= 0x80) {
          const why = err ? err.message : `the remote refused it (reason code ${code ?? 'none'})`;
          this.opts.logger?.warn({ source: src.id, filter: src.filter }, `mqtt source subscription failed: ${why}`);
          reject(rejected(src.id, `subscribe to ${JSON.stringify(src.filter)} on ${this.server}: ${why}`, err ?? undefined));
          return;
        }
        if (this.sources.has(src)) this.subscribed.add(src);
        resolve();
      });
    });
  }

  /** Hands a message to every running source whose filter matches; rejects when one rejects (or stopped meanwhile). */
  private async dispatch(packet: IPublishPacket): Promise<void> {
    const topic = packet.topic;
    const targets = [...this.sources].filter((s) => topicMatches(s.bare, topic));
    if (targets.length === 0) {
      if (packet.qos === 0) return;
      if (Date.now() - this.startedAt > ORPHAN_GRACE_MS) {
        this.opts.logger?.warn({ connector: `mqtt:${this.name}`, topic }, 'mqtt bridge: a message no source subscribes to was dropped');
        return;
      }
      this.orphans = true;
      throw new NotHandled('no source takes it yet');
    }
    const m: SourceMessage = {
      topic,
      payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      pubProps: pubPropsOf(packet.properties),
      server: this.server,
      receivedAt: Date.now(),
    };
    this.handling++;
    try {
      await Promise.all(targets.map((s) => s.deliver(m)));
    } finally {
      this.handling--;
    }
  }

  /** A nack: the message stays unacknowledged; dropping the connection makes the remote redeliver it. */
  private nack(): void {
    this.client?.stream?.destroy();
  }

  /** MQTT 5, QoS 1 and 2: PUBACK/PUBREC only once handled. */
  private ackAfterHandled(packet: IPublishPacket, done: (e: Error | number, code?: number) => void): void {
    this.dispatch(packet).then(
      () => done(0),
      (err) => {
        done(new NotHandled('not handled'));
        if (!(err instanceof NotHandled)) this.nack();
      },
    );
  }

  /** QoS 0 (any version) and QoS 1/2 of 3.1/3.1.1 (PUBACK/PUBCOMP follow the callback); MQTT 5 QoS 1/2 was handled already. */
  private handleMessage(packet: IPublishPacket, callback: (err?: Error) => void): void {
    if (this.v5 && packet.qos > 0) return callback();
    this.dispatch(packet).then(
      () => callback(),
      (err) => {
        if (packet.qos === 0) return callback();
        callback(new NotHandled('not handled'));
        if (!(err instanceof NotHandled)) this.nack();
      },
    );
  }
}

/** One rendered message of an MQTT sink. */
export interface MqttPublish {
  topic: string;
  qos: number;
  retain: boolean;
  payload: string;
}

/** An MQTT sink (egress): each data map is one PUBLISH to the remote broker. */
export class MqttSink implements Sink {
  readonly id: string;
  private readonly topic: Template;
  private readonly qos: number | Template;
  private readonly retain: boolean | Template;
  private readonly payload: Template | undefined;

  constructor(
    readonly spec: MqttActionSpec,
    private readonly connector: MqttConnector,
  ) {
    this.id = `mqtt:${spec.name}`;
    const p = spec.parameters;
    this.topic = compileTemplate(p.topic);
    this.qos = typeof p.qos === 'number' ? p.qos : compileTemplate(p.qos);
    this.retain = typeof p.retain === 'boolean' ? p.retain : compileTemplate(p.retain);
    this.payload = p.payload === '' ? undefined : compileTemplate(p.payload);
  }

  private qosOf(data: ValueMap): 0 | 1 | 2 {
    const v = typeof this.qos === 'number' ? this.qos : this.qos.value(data);
    const n = typeof v === 'string' ? Number(v) : v;
    if (n === 0 || n === 1 || n === 2) return n;
    throw rejected(this.id, `qos must be 0, 1 or 2, got ${JSON.stringify(v) ?? 'undefined'}`);
  }

  private retainOf(data: ValueMap): boolean {
    const v = typeof this.retain === 'boolean' ? this.retain : this.retain.value(data);
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false' || v === undefined || v === null) return false;
    throw rejected(this.id, `retain must be true or false, got ${JSON.stringify(v)}`);
  }

  private messageOf(data: ValueMap): { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean } {
    const topic = this.topic.render(data);
    const problem = checkTopicName(topic);
    if (problem) throw rejected(this.id, `the rendered topic ${JSON.stringify(topic)} is not a topic name (${problem})`);
    const payload = this.payload ? bytesOf(this.payload, data) : Buffer.from(jsonEncode(data));
    return { topic, payload, qos: this.qosOf(data), retain: this.retainOf(data) };
  }

  render(data: ValueMap): MqttPublish {
    const m = this.messageOf(data);
    return { ...m, payload: m.payload.toString('utf8') };
  }

  async send(batch: readonly ValueMap[]): Promise<void> {
    const messages = batch.map((d) => this.messageOf(d));
    const results = await Promise.allSettled(messages.map((m) => this.connector.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain })));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    const err = failed.reason as { code?: unknown };
    // MQTT 5 PUBACK reason codes: 0x97 quota exceeded is temporary; other refusals (not authorized, topic invalid, payload format) are not.
    if (typeof err.code === 'number' && err.code >= 0x80 && err.code !== 0x97 && err.code !== 0x80) throw rejected(this.id, `the remote refused the message: ${messageOf(err)} (reason code 0x${err.code.toString(16)})`, err);
    throw unavailable(this.id, `publish to ${this.connector.server}: ${messageOf(err)}`, err);
  }
}

/** An MQTT source (ingress): the remote filter's messages, `$sources/mqtt:<name>` in rules. */
export class MqttSource implements Source {
  readonly id: string;
  readonly filter: string;
  /** The filter without a shared-subscription prefix (what it matches). */
  readonly bare: string;
  readonly qos: number;
  private onMessage: ((m: SourceMessage) => Promise<void>) | undefined;

  constructor(
    readonly spec: MqttSourceSpec,
    private readonly connector: MqttConnector,
  ) {
    this.id = `mqtt:${spec.name}`;
    this.filter = spec.parameters.topic;
    this.bare = bareFilter(this.filter);
    this.qos = spec.parameters.qos;
  }

  async start(onMessage: (m: SourceMessage) => Promise<void>): Promise<void> {
    this.onMessage = onMessage;
    try {
      await this.connector.addSource(this);
    } catch (err) {
      this.onMessage = undefined;
      this.connector.removeSource(this);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.onMessage = undefined;
    this.connector.removeSource(this);
  }

  /** Passes a message on; rejects when stopped before (or while) it was handled, so it is not acknowledged. */
  async deliver(m: SourceMessage): Promise<void> {
    const handler = this.onMessage;
    if (!handler) throw new Error(`${this.id} stopped`);
    await handler(m);
    if (this.onMessage !== handler) throw new Error(`${this.id} stopped`);
  }
}
