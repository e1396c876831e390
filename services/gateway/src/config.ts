import { hooksConfigFragment } from '@tributary/hooks';
import { type ClientAttrInit, parseClientAttrInit } from './channel/client-attrs';
import { bind, bool, bytes, commonConfigFragment, composeConfigSchema, ConfigProblem, configFragment, duration, float, Infer, int, list, oneOf, rate, record, str } from '@tributary/common';

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

/** EMQX's peer_cert_as_username / peer_cert_as_clientid, per TLS listener. */
function peerCertAs(what: 'username' | 'clientid') {
  const field = what === 'username' ? 'username' : 'client id';
  return oneOf(['disable', 'cn', 'dn'] as const, 'disable', `With verify_peer: the verified client certificate's subject CN (cn) or whole subject as an RFC 4514 string (dn) replaces the ${field} the client sent.`);
}

/** A listener's rate limits (EMQX's keys); over them a connection is refused or its socket paused, never a message dropped. */
function rateLimits() {
  return {
    max_conn_rate: rate('infinity', 'New connections per period accepted ("1000/s"); beyond, a new socket is closed at once (listener.conn_rate_limited).'),
    messages_rate: rate('infinity', 'PUBLISH packets per period a client may send ("1000/s"); beyond, its socket is paused until the rate allows more (client.rate_limited).'),
    bytes_rate: rate('infinity', 'Bytes per period a client may send ("10MB/s"); beyond, its socket is paused until the rate allows more (client.rate_limited).'),
  };
}

/** The MQTT listeners (`listeners.*`): transports, addresses, connection limits, TLS. */
export const listenersConfigFragment = configFragment('@tributary/gateway', {
  listeners: {
    tcp: {
      default: {
        enable: bool(true, 'Serve MQTT over TCP.'),
        bind: bind('0.0.0.0:1883', 'MQTT/TCP listen address.'),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
        ...rateLimits(),
      },
    },
    ssl: {
      default: {
        enable: bool(true, 'Serve MQTT over TLS.'),
        bind: bind('0.0.0.0:8883', 'MQTT/TLS listen address.'),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
        peer_cert_as_username: peerCertAs('username'),
        peer_cert_as_clientid: peerCertAs('clientid'),
        ...rateLimits(),
        ssl_options: sslOptions(),
      },
    },
    wss: {
      default: {
        enable: bool(true, 'Serve MQTT over secure WebSocket.'),
        bind: bind('0.0.0.0:8084', 'MQTT/WSS listen address.'),
        path: str('/mqtt', 'HTTP path of the secure WebSocket endpoint.', { nonEmpty: true }),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
        peer_cert_as_username: peerCertAs('username'),
        peer_cert_as_clientid: peerCertAs('clientid'),
        ...rateLimits(),
        ssl_options: sslOptions(),
      },
    },
    ws: {
      default: {
        enable: bool(true, 'Serve MQTT over WebSocket.'),
        bind: bind('0.0.0.0:8083', 'MQTT/WebSocket listen address.'),
        path: str('/mqtt', 'HTTP path of the WebSocket endpoint.', { nonEmpty: true }),
        max_connections: int(1_000_000, 'Connections beyond this are refused.', 1),
        ...rateLimits(),
      },
    },
  },
  psk_authentication: {
    enable: bool(false, 'TLS-PSK on the ssl listener (TLS 1.2 at most while on): keys from init_file.'),
    init_file: str('', 'File of pre-shared keys, one "identity<separator>hexkey" a line; read at start.'),
    separator: str(':', 'What separates identity and key in init_file.', { nonEmpty: true }),
  },
});

/** MQTT behaviour (EMQX's keys and semantics), $SYS, the Kafka bridge, scaled-out timing and the add-ons. */
export const gatewayConfigFragment = configFragment('@tributary/gateway', {
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
    client_attrs_init: list<ClientAttrInit>(
      [],
      'Client attributes set at CONNECT (EMQX 5.7+): [{"expression": "nth(1, tokens(clientid, \'-\'))", "set_as_attr": "group"}]; expressions are rule SQL over clientid, username, cn, dn, peerhost, proto_name, user_property.<key>, client_attrs.<name> ... (docs/rules.md, "Client attributes").',
      (raw) => parseClientAttrInit(raw),
    ),
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
    lease: duration(30_000, 'Scaled out (tributary gateway): how long a gateway owns its sessions without renewing its lease; after that the router publishes their wills and releases them. Keep it well above the Kafka cluster\'s failover time (docs/kafka.md, "Faults").', 1000),
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
});

/** What the gateway reads: the node's own keys, its listeners and its MQTT keys (a subset of the node's schema). */
export const gatewayConfigSchema = composeConfigSchema([
  commonConfigFragment,
  listenersConfigFragment,
  gatewayConfigFragment,
  hooksConfigFragment, // libs/hooks: the broker reads hooks.callback_timeout
]);

export type GatewayConfig = Infer<typeof gatewayConfigSchema>;

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

