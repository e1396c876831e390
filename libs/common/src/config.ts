import { readFileSync } from 'node:fs';
import { bind, bool, bytes, ConfigProblem, duration, float, Infer, int, isLeaf, jsonObject, list, oneOf, record, SchemaNode, str } from './config-schema';
import { ConfigError } from './errors';

/** TLS settings of a listener (EMQX's ssl_options), shared by the ssl and wss listeners. */
function sslOptions() {
  return {
    certfile: str('', 'PEM certificate chain; empty = a self-signed certificate generated once into node.data_dir/certs.'),
    keyfile: str('', 'PEM private key of certfile.'),
    cacertfile: str('', 'PEM CA bundle used to verify client certificates.'),
    versions: str('tlsv1.3,tlsv1.2', 'Accepted TLS versions, comma-separated (tlsv1.2, tlsv1.3).'),
    ciphers: str('', 'OpenSSL cipher list for TLS 1.2 (empty = Node.js defaults).'),
    verify: oneOf(['verify_none', 'verify_peer'], 'verify_none', 'Request and verify a client certificate.'),
    fail_if_no_peer_cert: bool(false, 'With verify_peer: refuse clients without a certificate.'),
  };
}

/**
 * The one configuration schema. Every key has a default and a doc line; docs/configuration.md
 * is generated from it (`tributary config --docs`). Environment overrides use EMQX's convention:
 * TRIBUTARY_<PATH> with `__` between levels, e.g. TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND.
 */
export const configSchema = {
  node: {
    name: str('tributary@127.0.0.1', 'Node name, used in $SYS topics and logs.', { nonEmpty: true }),
    data_dir: str('data', 'Directory for all durable state (embedded backbone, certificates).', { nonEmpty: true }),
  },
  log: {
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'Log level.'),
  },
  listeners: {
    tcp: {
      default: {
        enable: bool(true, 'Serve MQTT over TCP.'),
        bind: bind('0.0.0.0:1883', 'MQTT/TCP listen address.'),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
      },
    },
    ssl: {
      default: {
        enable: bool(true, 'Serve MQTT over TLS.'),
        bind: bind('0.0.0.0:8883', 'MQTT/TLS listen address.'),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
        ssl_options: sslOptions(),
      },
    },
    wss: {
      default: {
        enable: bool(true, 'Serve MQTT over secure WebSocket.'),
        bind: bind('0.0.0.0:8084', 'MQTT/WSS listen address.'),
        path: str('/mqtt', 'HTTP path of the secure WebSocket endpoint.', { nonEmpty: true }),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
        ssl_options: sslOptions(),
      },
    },
    ws: {
      default: {
        enable: bool(true, 'Serve MQTT over WebSocket.'),
        bind: bind('0.0.0.0:8083', 'MQTT/WebSocket listen address.'),
        path: str('/mqtt', 'HTTP path of the WebSocket endpoint.', { nonEmpty: true }),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
      },
    },
  },
  dashboard: {
    listeners: {
      http: {
        enable: bool(true, 'Serve the HTTP API (/status for now).'),
        bind: bind('0.0.0.0:18083', 'HTTP API listen address.'),
      },
    },
  },
  mqtt: {
    max_packet_size: bytes(1024 * 1024, 'Largest MQTT packet accepted; larger ones close the connection (v5: 0x95).', 16, 268_435_455),
    max_clientid_len: int(65535, 'Longest client identifier accepted (CONNACK 0x85 / 0x02 beyond).', 23, 65535),
    max_topic_levels: int(128, 'Most levels in a topic name or filter.', 1, 65535),
    idle_timeout: duration(15_000, 'Time a new connection has to send CONNECT.', 100),
    keepalive_multiplier: float(1.5, 'A client silent for keep-alive × this is disconnected.', 1, 10),
    max_inflight: int(32, 'Outgoing QoS 1/2 messages awaiting acknowledgement per client.', 1, 65535),
    max_mqueue_len: int(1000, 'Messages queued per session beyond the in-flight window (0 = unbounded is not allowed).', 1),
    max_session_backlog: int(
      1_000_000,
      'QoS 1/2 messages a connected session may fall behind by: past its queue it reads them from the messages log; beyond this many the oldest are dropped (messages.dropped.queue_full).',
      1,
    ),
    max_send_buffer: bytes(1024 * 1024, "Bytes written to a client's socket but not yet sent; beyond, the broker stops writing to it (QoS 0 queues or drops, QoS 1/2 wait in the log).", 16 * 1024),
    mqueue_store_qos0: bool(true, 'Queue QoS 0 messages for offline persistent sessions too.'),
    max_awaiting_rel: int(100, 'Incoming QoS 2 messages awaiting PUBREL per client.', 1, 65535),
    retry_interval: duration(30_000, 'Resend unacknowledged QoS 1/2 messages after this (0 = only on reconnect).'),
    session_expiry_interval: duration(7_200_000, 'How long a 3.x persistent session (clean session = 0) outlives its connection.'),
    max_session_expiry_interval: duration(4_294_967_295_000, 'Upper bound on the session expiry a 5.0 client may ask for.'),
    retain_available: bool(true, 'Accept retained messages.'),
    max_retained_messages: int(0, 'Most topics with a retained message (0 = no limit); at the limit a retained message for a new topic is published but not retained, replacing or clearing one still works. Scaled out, each gateway counts what it sees.'),
    wildcard_subscription: bool(true, 'Allow wildcard subscriptions.'),
    server_keepalive: int(0, 'If non-zero, the keep-alive the broker imposes on 5.0 clients (seconds).', 0, 65535),
    max_topic_alias: int(65535, 'Topic Alias Maximum: aliases a 5.0 client may use towards the broker (0 = none).', 0, 65535),
    shared_subscription: bool(true, 'Allow $share/<group>/<filter> and $queue/<filter> subscriptions.'),
    shared_subscription_strategy: oneOf(
      ['random', 'round_robin', 'round_robin_per_group', 'sticky', 'hash_clientid', 'hash_topic'],
      'round_robin',
      'How a shared-subscription group picks the member for each message.',
    ),
    exclusive_subscription: bool(false, 'Allow $exclusive/<filter>: one subscriber per filter at a time.'),
    response_information: str('', 'Response Information sent to 5.0 clients that request it (empty = none).'),
  },
  sys_topics: {
    sys_msg_interval: duration(60_000, 'Interval of $SYS/brokers/<node>/{stats,metrics,uptime,datetime} (0 = off).'),
    sys_heartbeat_interval: duration(30_000, 'Interval of $SYS/brokers/<node>/{uptime,datetime} heartbeats (0 = off).'),
    sys_event_messages: {
      client_connected: bool(true, 'Publish $SYS/brokers/<node>/clients/<clientid>/connected.'),
      client_disconnected: bool(true, 'Publish $SYS/brokers/<node>/clients/<clientid>/disconnected.'),
    },
  },
  bridge: {
    kafka: {
      commands: {
        enable: bool(true, 'Publish records of the commands topic to MQTT (cloud-to-device; see docs/kafka.md).'),
        topic: str('commands', 'Backbone topic of commands (Kafka name: backbone.topic_prefix + this).', { nonEmpty: true }),
      },
      mappings: list<KafkaMapping>(
        [],
        'Copy MQTT topic filters to named backbone topics: [{"filter": "devices/+/telemetry", "topic": "telemetry", "format": "json|avro"}].',
        (raw) => {
          const m = record<KafkaMapping>(raw, { filter: 'string', topic: 'string', format: 'string' });
          if (m instanceof ConfigProblem) return m;
          if (m.format !== 'json' && m.format !== 'avro') return new ConfigProblem(`format must be json or avro, got "${m.format}"`);
          if (!m.filter || !m.topic) return new ConfigProblem('filter and topic must not be empty');
          return m;
        },
      ),
    },
  },
  cluster: {
    lease: duration(10_000, 'Scaled out (tributary gateway): how long a gateway owns its sessions without renewing its lease; after that the router publishes their wills and releases them.', 1000),
    route_ack_timeout: duration(5_000, 'Scaled out: longest wait for the router to confirm a session claim or subscription before CONNACK/SUBACK go out anyway.', 100),
  },
  delayed: {
    enable: bool(true, 'Delay publishes to $delayed/<seconds>/<topic> (durable across restarts).'),
    max_delayed_messages: int(0, 'Most delayed messages waiting at once (0 = no limit).'),
  },
  auto_subscribe: {
    topics: list<AutoSubscribeTopic>(
      [],
      'Subscriptions made for every client on connect: [{"topic": "c/${clientid}", "qos": 1, "rh": 0, "rap": 0, "nl": 0}].',
      (raw) => record<AutoSubscribeTopic>(raw, { topic: 'string', qos: 'number?', rh: 'number?', rap: 'number?', nl: 'number?' }),
    ),
  },
  rewrite: list<RewriteRule>(
    [],
    'Topic rewrite rules (EMQX semantics): [{"action": "publish|subscribe|all", "source_topic": "x/#", "re": "^x/(.+)$", "dest_topic": "y/$1"}].',
    (raw) => {
      const r = record<RewriteRule>(raw, { action: 'string', source_topic: 'string', re: 'string', dest_topic: 'string' });
      if (r instanceof ConfigProblem) return r;
      if (!['publish', 'subscribe', 'all'].includes(r.action)) return new ConfigProblem(`action must be publish, subscribe or all, got "${r.action}"`);
      try {
        new RegExp(r.re);
      } catch (err) {
        return new ConfigProblem(`re "${r.re}": ${(err as Error).message}`);
      }
      return r;
    },
  ),
  hooks: {
    callback_timeout: duration(5_000, 'Longest wait for an asynchronous hook callback (authenticate, authorize, message.publish); then it is skipped, or denies at authenticate and authorize.', 1),
  },
  plugins: list<string>(
    [],
    'JavaScript plugins loaded at start, in order: module paths (relative to the working directory) or installed package names, e.g. ["./examples/plugins/topic-guard.mjs"] (docs/plugins.md).',
    (raw) => (typeof raw === 'string' && raw.length > 0 ? raw : new ConfigProblem('expected a module path or package name')),
  ),
  plugin_config: jsonObject({}, "Plugins' own sections by plugin name: {\"<name>\": {...}}, given to its start(ctx) as ctx.config."),
  backbone: {
    type: oneOf(['embedded', 'kafka'], 'embedded', 'Backbone implementation.'),
    topic_prefix: str('tributary.', 'Prefix of every backbone topic, so installations can share a cluster.'),
    messages: {
      retention: duration(7 * 86_400_000, 'How long the messages topic keeps records (offline sessions read from it).', 60_000),
      retention_bytes: bytes(1024 ** 3, 'Largest size of the messages topic before the oldest records go.', 1024 * 1024),
    },
    kafka: {
      brokers: str('127.0.0.1:9092', 'Bootstrap brokers of the Kafka cluster, comma-separated host:port.', { nonEmpty: true }),
      client_id: str('tributary', 'Kafka client id of this process.', { nonEmpty: true }),
      partitions: int(1, 'Partitions of the topics Tributary creates.', 1, 10_000),
      replication_factor: int(1, 'Replication factor of the topics Tributary creates (3 on a real cluster).', 1, 32),
      linger_ms: int(0, 'Producer linger: 0 sends one request per event-loop turn; more batches longer.', 0, 10_000),
      fetch_wait_ms: int(100, 'Consumer fetch max wait; the broker answers at once when records arrive.', 0, 10_000),
      session_timeout: duration(10_000, 'Consumer-group session timeout: how long a killed member (e.g. the router) holds its partitions before a restarted one takes over. Kafka bounds it by group.min/max.session.timeout.ms (6 s-30 min by default).', 1000),
    },
    embedded: {
      fsync: oneOf(['always', 'interval', 'never'], 'interval', 'When the embedded backbone calls fsync (see docs/backbone.md).'),
      fsync_interval_ms: int(1000, 'With fsync = interval: milliseconds between fsyncs.', 1),
      segment_bytes: bytes(64 * 1024 * 1024, 'Size at which a log segment file is rolled.', 64 * 1024),
    },
  },
} satisfies Record<string, SchemaNode>;

export type TributaryConfig = Infer<typeof configSchema>;

/** One auto-subscribe entry (EMQX `auto_subscribe.topics`); ${clientid} and ${username} are replaced. */
export interface AutoSubscribeTopic {
  topic: string;
  qos?: number;
  rh?: number;
  rap?: number;
  nl?: number;
}

/** One MQTT→Kafka mapping (`bridge.kafka.mappings`). */
export interface KafkaMapping {
  filter: string;
  topic: string;
  format: 'json' | 'avro';
}

/** One topic rewrite rule (EMQX `rewrite`). */
export interface RewriteRule {
  action: 'publish' | 'subscribe' | 'all';
  source_topic: string;
  re: string;
  dest_topic: string;
}

/** ConfigError lives with the other errors (errors.ts); re-exported where it was defined. */
export { ConfigError };

export interface LoadOptions {
  /** A JSON config file; keys nest like the schema ({"listeners": {"tcp": ...}}) or use dotted paths. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Overrides applied last (dotted paths), e.g. from tests. */
  overrides?: Record<string, unknown>;
}

export interface LoadedConfig {
  config: TributaryConfig;
  /** Human-readable warnings (unknown environment variables or file keys). */
  warnings: string[];
}

export const ENV_PREFIX = 'TRIBUTARY_';
/** Environment variables that are not config keys. */
const RESERVED_ENV = new Set(['TRIBUTARY_CONFIG_FILE']);

export function envName(path: string): string {
  return ENV_PREFIX + path.split('.').map((p) => p.toUpperCase()).join('__');
}

function leaves(node: SchemaNode, prefix = '', out = new Map<string, SchemaNode>()): Map<string, SchemaNode> {
  if (isLeaf(node)) out.set(prefix, node);
  else for (const [k, child] of Object.entries(node)) leaves(child, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

/** Every key of the schema with its doc, default and environment variable name. */
export function describeConfig(): { key: string; env: string; default: unknown; doc: string }[] {
  return [...leaves(configSchema)].map(([key, leaf]) => {
    const l = leaf as { default: unknown; doc: string };
    return { key, env: envName(key), default: l.default, doc: l.doc };
  });
}

function flatten(obj: unknown, prefix: string, out: Map<string, unknown>): void {
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, obj);
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
  node[parts[parts.length - 1]!] = value;
}

/** Builds the configuration: defaults, then the file, then TRIBUTARY_* variables, then overrides. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const schema = leaves(configSchema);
  const raw = new Map<string, { value: unknown; source: string }>();
  const warnings: string[] = [];
  const problems: string[] = [];

  const file = opts.file ?? env.TRIBUTARY_CONFIG_FILE;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError([`config file ${file}: ${(err as Error).message}`], { cause: err });
    }
    const flat = new Map<string, unknown>();
    flatten(parsed, '', flat);
    for (const [key, value] of flat) {
      if (schema.has(key)) raw.set(key, { value, source: `${file}` });
      else warnings.push(`unknown key "${key}" in config file ${file} ignored`);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || RESERVED_ENV.has(name) || value === undefined) continue;
    const key = name.slice(ENV_PREFIX.length).split('__').map((p) => p.toLowerCase()).join('.');
    if (schema.has(key)) raw.set(key, { value, source: `environment variable ${name}` });
    else warnings.push(`unknown environment variable ${name} ignored (no config key "${key}")`);
  }
  for (const [key, value] of Object.entries(opts.overrides ?? {})) {
    if (!schema.has(key)) problems.push(`${key}: unknown config key`);
    else raw.set(key, { value, source: 'override' });
  }

  const config: Record<string, unknown> = {};
  for (const [key, node] of schema) {
    const leaf = node as { default: unknown; parse(raw: unknown): unknown };
    const given = raw.get(key);
    if (!given) {
      setPath(config, key, leaf.default);
      continue;
    }
    const parsed = leaf.parse(given.value);
    if (parsed instanceof ConfigProblem) problems.push(`${key} (${given.source}): ${parsed.message}`);
    else setPath(config, key, parsed);
  }
  if (problems.length) throw new ConfigError(problems);
  return { config: config as unknown as TributaryConfig, warnings };
}
