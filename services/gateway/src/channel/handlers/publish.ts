import type * as mp from 'mqtt-packet';
import { isUtf8 } from 'node:buffer';
import { checkTopicName, Message, MessageProperties, QoS, RC } from '@tributary/mqtt';
import type { Channel } from '../channel';
import { ProtocolViolation } from '../protocol';

/**
 * PUBLISH from a client (§3.3): validate, authorize (client.authorize), publish through the broker
 * (message.publish hooks, durable append), then acknowledge. Topic rewrite is a message.publish
 * hook, so the topic checked here is the one the client sent.
 */
export function handlePublish(ch: Channel, packet: mp.IPublishPacket): void {
  const mqtt = ch.config.mqtt;
  const qos = packet.qos as QoS;
  const id = packet.messageId ?? 0;
  const props = packet.properties;
  let topic = packet.topic;

  // Both are Protocol Errors, not malformed packets: DUP on QoS 0 [MQTT-3.3.1-2], and a zero-length
  // Topic Name without a Topic Alias (§3.3.2.3.4); 3.x has no aliases, so there it is always one.
  if (qos === 0 && packet.dup) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'DUP set on a QoS 0 PUBLISH');
  if (topic.length === 0 && props?.topicAlias === undefined) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'empty topic name without a topic alias');
  if (props?.topicAlias !== undefined) {
    const alias = props.topicAlias;
    // Alias 0 or above our Topic Alias Maximum is invalid [MQTT-3.3.2-8], [MQTT-3.3.2-9].
    if (alias === 0 || alias > mqtt.max_topic_alias) throw new ProtocolViolation(RC.TOPIC_ALIAS_INVALID, `topic alias ${alias}`);
    if (topic.length > 0) ch.topicAliases.set(alias, topic);
    else {
      const known = ch.topicAliases.get(alias);
      if (known === undefined) throw new ProtocolViolation(RC.PROTOCOL_ERROR, `unknown topic alias ${alias}`);
      topic = known;
    }
  }
  const problem = checkTopicName(topic, mqtt.max_topic_levels);
  if (problem) throw new ProtocolViolation(RC.TOPIC_NAME_INVALID, `invalid topic name "${topic}": ${problem}`); // [MQTT-3.3.2-2]
  if (packet.retain && !mqtt.retain_available) throw new ProtocolViolation(RC.RETAIN_NOT_SUPPORTED, 'retain not available');
  // The parser keeps the Payload Format Indicator as its byte (libs/mqtt parser.ts), not mqtt-packet's boolean.
  if ((props?.payloadFormatIndicator as unknown) === 1 && !isUtf8(packet.payload as Buffer)) {
    // [MQTT-3.3.2-4]: a payload declared UTF-8 must be valid UTF-8.
    if (qos > 0) ch.sendAck(qos === 1 ? 'puback' : 'pubrec', id, RC.PAYLOAD_FORMAT_INVALID);
    return;
  }

  const hooks = ch.broker.hooks;
  if (hooks.has('client.authorize') && !ch.client!.isSuperuser) {
    const decision = hooks.authorize(ch.client!, { action: 'publish', topic, qos, retain: packet.retain }, 'allow');
    if (!(decision instanceof Promise)) return decision === 'allow' ? accept(ch, packet, topic) : denied(ch, qos, id, topic);
    // Later packets wait for the decision, so this client's messages keep their order.
    const decided = decision.then((d) => {
      if (ch.state !== 'connected') return;
      if (d === 'allow') accept(ch, packet, topic);
      else denied(ch, qos, id, topic);
    });
    return ch.hold(decided);
  }
  accept(ch, packet, topic);
}

/** Not authorized: 5.0 PUBACK/PUBREC 0x87 (no PUBREL follows an error PUBREC); 3.x acknowledges without publishing (EMQX's deny_action = ignore). */
function denied(ch: Channel, qos: QoS, id: number, topic: string): void {
  ch.broker.metrics['authorization.deny']++;
  ch.log.debug({ clientId: ch.clientId, topic }, 'publish not authorized');
  if (qos > 0) ch.sendAck(qos === 1 ? 'puback' : 'pubrec', id, RC.NOT_AUTHORIZED);
}

function accept(ch: Channel, packet: mp.IPublishPacket, topic: string): void {
  const mqtt = ch.config.mqtt;
  const qos = packet.qos as QoS;
  const id = packet.messageId ?? 0;
  const props = packet.properties;
  const session = ch.session!;
  if (qos === 2) {
    if (ch.qos2InProgress.has(id)) return; // a resend while the first copy is still being stored
    if (session.awaitingRel.has(id)) {
      // Already stored: acknowledge again without publishing twice [MQTT-4.3.3-9].
      ch.sendAck('pubrec', id, RC.SUCCESS);
      return;
    }
    if (session.awaitingRel.size >= mqtt.max_awaiting_rel) {
      throw new ProtocolViolation(RC.RECEIVE_MAXIMUM_EXCEEDED, 'too many QoS 2 messages awaiting PUBREL');
    }
  }
  if (qos > 0 && ch.dialect.v5 && ++ch.unacked > mqtt.max_inflight) {
    // The client sent more unacknowledged QoS 1/2 PUBLISHes than our Receive Maximum [MQTT-3.3.4-9].
    throw new ProtocolViolation(RC.RECEIVE_MAXIMUM_EXCEEDED, 'receive maximum exceeded');
  }

  const payload = packet.payload as Buffer;
  const m = ch.broker.metrics;
  m['messages.received']++;
  m[qos === 0 ? 'messages.qos0.received' : qos === 1 ? 'messages.qos1.received' : 'messages.qos2.received']++;
  const msg: Message = { topic, payload, qos, retain: packet.retain, from: ch.clientId, timestamp: Date.now(), properties: messageProperties(props), offset: -1 };
  if (qos === 2) ch.qos2InProgress.add(id);
  // A publisher with subscriptions may get its own copy, which must follow its PUBACK/PUBREC.
  const own = qos > 0 && session.subscriptions.size > 0;
  if (own) ch.ownPublishStarted(msg);
  ch.publishStarted();
  ch.broker.publish(msg, ch).then(
    () => {
      ch.publishFinished();
      if (ch.state !== 'connected' || qos === 0) return;
      if (qos === 1) {
        if (ch.dialect.v5) ch.unacked--;
        ch.sendAck('puback', id, RC.SUCCESS);
        if (own) ch.ownPublishAcknowledged(msg);
        return;
      }
      ch.qos2InProgress.delete(id);
      session.awaitingRel.add(id);
      // A QoS 2 PUBLISH counts against Receive Maximum until PUBCOMP, not PUBREC [MQTT-3.3.4-7], §4.9:
      // `unacked` goes down when the PUBREL arrives (handlePubrel).
      const pubrec = (): void => {
        if (ch.state === 'connected') ch.sendAck('pubrec', id, RC.SUCCESS);
        if (own) ch.ownPublishAcknowledged(msg);
      };
      if (session.persistent) {
        ch.broker.persist(session).then(pubrec, (err: Error) => {
          ch.log.error({ err }, 'session persist failed');
          if (own) ch.ownPublishAcknowledged(msg);
        });
      } else pubrec();
    },
    (err: Error) => {
      ch.publishFinished();
      ch.log.error({ err, topic }, 'publish failed');
      // Nothing was acknowledged; the client resends after reconnecting.
      ch.close(RC.SERVER_UNAVAILABLE);
    },
  );
}

/** The PUBLISH properties that travel with the message; Topic Alias and Subscription Identifier do not. */
function messageProperties(props: mp.IPublishPacket['properties']): MessageProperties | undefined {
  if (!props) return undefined;
  const { topicAlias: _a, subscriptionIdentifier: _s, ...rest } = props;
  return Object.keys(rest).length ? (rest as MessageProperties) : undefined;
}
