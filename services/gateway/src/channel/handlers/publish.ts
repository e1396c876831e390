import type * as mp from 'mqtt-packet';
import { isUtf8 } from 'node:buffer';
import { checkTopicName, Message, MessageProperties, QoS, RC } from '@tributary/mqtt';
import { backboneStalled, type Channel } from '../channel';
import { ProtocolViolation } from '../protocol';
import { Step, Steps, wait } from '../steps';

/**
 * PUBLISH from a client (§3.3): validate, authorize (client.authorize), publish through the broker
 * (message.publish hooks, durable append), then acknowledge. Topic rewrite is a message.publish
 * hook, so the topic checked here is the one the client sent.
 */
export function handlePublish(ch: Channel, packet: mp.IPublishPacket): Steps {
  const mqtt = ch.config.mqtt;
  const qos = packet.qos as QoS;
  const id = packet.messageId ?? 0;
  const props = packet.properties;
  let topic = packet.topic;

  // Both are Protocol Errors, not malformed packets: DUP on QoS 0 [MQTT-3.3.1-2], and a zero-length
  // Topic Name without a Topic Alias (§3.3.2.3.4); 3.x has no aliases, so there it is always one.
  if (qos === 0 && packet.dup) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'DUP set on a QoS 0 PUBLISH');
  if (topic.length === 0 && props?.topicAlias === undefined) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'empty topic name without a topic alias');
  if (props?.topicAlias !== undefined) topic = ch.resolveTopicAlias(props.topicAlias, topic);
  const problem = checkTopicName(topic, mqtt.max_topic_levels);
  if (problem) throw new ProtocolViolation(RC.TOPIC_NAME_INVALID, `invalid topic name "${topic}": ${problem}`); // [MQTT-3.3.2-2]
  if (packet.retain && !mqtt.retain_available) throw new ProtocolViolation(RC.RETAIN_NOT_SUPPORTED, 'retain not available');
  // The parser keeps the Payload Format Indicator as its byte (libs/mqtt parser.ts), not mqtt-packet's boolean.
  if ((props?.payloadFormatIndicator as unknown) === 1 && !isUtf8(packet.payload as Buffer)) {
    // [MQTT-3.3.2-4]: a payload declared UTF-8 must be valid UTF-8.
    return qos !== 0 ? ack(qos, id, RC.PAYLOAD_FORMAT_INVALID) : undefined;
  }

  const hooks = ch.broker.hooks;
  const client = ch.client!;
  if (!hooks.has('client.authorize') || client.isSuperuser) {
    // Nothing to ask, or a superuser: allowed; client.check_authz_complete still hears of it, when anything listens.
    if (hooks.has('client.check_authz_complete')) hooks.notify('client.check_authz_complete', client, { action: 'publish', topic, qos, retain: packet.retain }, 'allow', client.isSuperuser ? 'superuser' : 'default');
    return accept(ch, packet, topic);
  }
  const decision = hooks.authorize(client, { action: 'publish', topic, qos, retain: packet.retain }, 'allow');
  const decide = (d: 'allow' | 'deny'): Steps => (d === 'allow' ? accept(ch, packet, topic) : denied(ch, qos, id, topic));
  // Later packets wait for an asynchronous decision, so this client's messages keep their order.
  return decision instanceof Promise ? wait({ wait: decision, then: decide, hold: true }) : decide(decision);
}

function ack(qos: 1 | 2, id: number, rc: number, own?: Message, reason?: string): Step {
  return { ack: qos === 1 ? 'puback' : 'pubrec', id, rc, own, reason };
}

/** The Reason String of a PUBACK/PUBREC refused because Kafka stalled. */
const STALLED = 'backbone unavailable: Kafka has not acknowledged writes for backbone.kafka.stall_timeout; retry later';

/** Not authorized: 5.0 PUBACK/PUBREC 0x87 (no PUBREL follows an error PUBREC); 3.x acknowledges without publishing (EMQX's deny_action = ignore). */
function denied(ch: Channel, qos: QoS, id: number, topic: string): Steps {
  ch.broker.metrics['authorization.deny']++;
  ch.log.debug({ clientId: ch.clientId, topic }, 'publish not authorized');
  return qos !== 0 ? ack(qos, id, RC.NOT_AUTHORIZED) : undefined;
}

function accept(ch: Channel, packet: mp.IPublishPacket, topic: string): Steps {
  const qos = packet.qos as QoS;
  const id = packet.messageId ?? 0;
  const session = ch.session!;
  if (qos !== 0) {
    const verdict = session.beginIncoming(qos, id);
    if (verdict === 'skip') return undefined;
    if (verdict === 'acknowledge') return ack(qos, id, RC.SUCCESS);
    if (verdict !== 'publish') throw new ProtocolViolation(verdict, qos === 2 ? 'receive maximum or max_awaiting_rel exceeded' : 'receive maximum exceeded');
  }
  const m = ch.broker.metrics;
  m['messages.received']++;
  m[qos === 0 ? 'messages.qos0.received' : qos === 1 ? 'messages.qos1.received' : 'messages.qos2.received']++;
  ch.recvMsg++;
  if (qos === 0) ch.recvQos0++;
  else if (qos === 1) ch.recvQos1++;
  else ch.recvQos2++;
  const msg: Message = { topic, payload: packet.payload as Buffer, qos, retain: packet.retain, from: ch.clientId, timestamp: Date.now(), properties: messageProperties(packet.properties), offset: -1 };
  // A publisher with subscriptions may get its own copy, which must follow its PUBACK/PUBREC.
  const own = qos > 0 && session.hasSubscriptions;
  // QoS 0: nothing to acknowledge; a failed publish closes the connection (the channel's default).
  if (qos === 0) return { publish: msg, own };
  return {
    publish: msg,
    own,
    // The session records the outcome even if the connection closed meanwhile: a QoS 2 resend is then acknowledged, not published twice.
    done: (): Steps => {
      session.incomingStored(qos, id);
      if (qos === 1 || !session.persistent) return ack(qos, id, RC.SUCCESS, own ? msg : undefined);
      // QoS 2 of a persistent session: PUBREC once the awaiting-release state is stored.
      return wait({ wait: ch.broker.persist(session), then: () => ack(qos, id, RC.SUCCESS, own ? msg : undefined), failed: (err) => persistFailed(ch, err, own ? msg : undefined), always: true });
    },
    failed: (err) => {
      session.incomingFailed(qos, id);
      if (backboneStalled(err)) {
        // Kafka stalled past the timeout (logged once per episode by the backbone): 5.0 is told
        // in the acknowledgement (0x80 Unspecified error, no PUBREL follows a failed PUBREC) and
        // stays connected; 3.x has no error acknowledgement, so the connection closes.
        ch.broker.metrics['messages.publish.stalled']++;
        if (ch.dialect.v5) return ack(qos, id, RC.UNSPECIFIED_ERROR, undefined, STALLED);
        return { close: RC.SERVER_UNAVAILABLE };
      }
      ch.log.error({ err, topic }, 'publish failed');
      // Nothing was acknowledged; the client resends after reconnecting.
      return { close: RC.SERVER_UNAVAILABLE };
    },
  };
}

function persistFailed(ch: Channel, err: Error, own: Message | undefined): Steps {
  ch.log.error({ err }, 'session persist failed');
  return own ? { release: own } : undefined;
}

/** The PUBLISH properties that travel with the message; Topic Alias and Subscription Identifier do not. */
function messageProperties(props: mp.IPublishPacket['properties']): MessageProperties | undefined {
  if (!props) return undefined;
  const { topicAlias: _a, subscriptionIdentifier: _s, ...rest } = props;
  return Object.keys(rest).length ? (rest as MessageProperties) : undefined;
}
