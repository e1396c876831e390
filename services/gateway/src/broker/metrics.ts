import type { DropReason } from '../session/types';

/** Broker counters (EMQX metric names where one exists); read by /status and, later, $SYS and Prometheus. */
export class Metrics {
  'connections.count' = 0;
  'client.connected' = 0;
  'client.disconnected' = 0;
  'messages.received' = 0;
  'messages.sent' = 0;
  'messages.qos0.received' = 0;
  'messages.qos1.received' = 0;
  'messages.qos2.received' = 0;
  'messages.retained' = 0;
  'messages.dropped' = 0;
  'messages.dropped.queue_full' = 0;
  'messages.dropped.expired' = 0;
  'messages.dropped.too_large' = 0;
  'messages.dropped.no_subscribers' = 0;
  'bytes.received' = 0;
  'bytes.sent' = 0;
  'packets.malformed' = 0;
  /** PUBLISH and SUBSCRIBE refused by client.authorize. */
  'authorization.deny' = 0;
  /** Times flow control paused a publishing connection (subscribers of this process were behind). */
  'flow.publishers.paused' = 0;
  /** Times a connected session fell behind and began reading its QoS 1/2 messages from the log. */
  'flow.sessions.backlogged' = 0;
  /** Times a connected session stayed behind long enough to be marked slow. */
  'flow.sessions.slow' = 0;
  /** New connections closed at once because their listener's max_conn_rate was exceeded. */
  'listener.conn_rate_limited' = 0;
  /**
   * Publishes refused because Kafka acknowledged nothing for backbone.kafka.stall_timeout
   * (5.0 QoS 1/2: PUBACK/PUBREC 0x80; 3.x and QoS 0: the connection closes).
   */
  'messages.publish.stalled' = 0;
  /** Times a connection's reading was paused by its listener's messages_rate or bytes_rate. */
  'client.rate_limited' = 0;

  dropped(reason: DropReason | 'no_subscribers'): void {
    // EMQX's delivery.dropped reasons for what Tributary never counted as a dropped message.
    if (reason === 'no_local' || reason === 'qos0_msg') return;
    this['messages.dropped']++;
    if (reason !== 'no_session') this[`messages.dropped.${reason}`]++;
  }

  toJSON(): Record<string, number> {
    return { ...this } as unknown as Record<string, number>;
  }
}
