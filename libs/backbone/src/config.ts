import { bytes, configFragment, duration, Infer, int, oneOf, str } from '@tributary/common';

/** The backbone's keys (`backbone.*`): which implementation, topic naming, retention, and each one's tuning. */
export const backboneConfigFragment = configFragment('@tributary/backbone', {
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
      min_insync_replicas: int(0, 'min.insync.replicas of the topics Tributary creates (2 with replication_factor 3): with acks=all an append waits for every in-sync replica and is refused (and retried) while fewer than this many are in sync; 0 leaves the broker default.', 0, 32),
      linger_ms: int(0, 'Producer linger: 0 sends one request per event-loop turn; more batches longer.', 0, 10_000),
      fetch_wait_ms: int(100, 'Consumer fetch max wait; the broker answers at once when records arrive.', 0, 10_000),
      stall_timeout: duration(30_000, 'How long an append may wait for Kafka (e.g. a paused or unreachable cluster) before it fails: until then publishes are only delayed and no client is disconnected; after it, MQTT 5 PUBACK/PUBREC 0x80 with a reason string, 3.x disconnect, until Kafka answers again (docs/kafka.md, "Faults").', 1000),
      session_timeout: duration(10_000, 'Consumer-group session timeout: how long a killed member (e.g. the router) holds its partitions before a restarted one takes over. Kafka bounds it by group.min/max.session.timeout.ms (6 s-30 min by default).', 1000),
    },
    embedded: {
      fsync: oneOf(['always', 'interval', 'never'], 'interval', 'When the embedded backbone calls fsync (see docs/backbone.md).'),
      fsync_interval_ms: int(1000, 'With fsync = interval: milliseconds between fsyncs.', 1),
      segment_bytes: bytes(64 * 1024 * 1024, 'Size at which a log segment file is rolled.', 64 * 1024),
    },
  },
});

export type BackboneConfig = Infer<typeof backboneConfigFragment.schema>;
