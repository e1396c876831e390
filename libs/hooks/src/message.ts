import type { Message } from '@tributary/mqtt';
import type { HookMessage } from './points';

/** The hooks' view of a broker message; `username` is known only where the publisher is (message.publish, and Message.username on the process that accepted it). */
export function hookMessage(msg: Message, username = msg.username): HookMessage {
  const h: HookMessage = { topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, clientId: msg.from, username, properties: msg.properties, timestamp: msg.timestamp, offset: msg.offset };
  const p = msg.publisher;
  if (p) {
    h.peerhost = p.peerhost;
    h.peername = p.peername;
    h.clientAttrs = p.clientAttrs;
  }
  return h;
}

/** A broker message from what a hook returned (not logged yet). */
export function brokerMessage(h: HookMessage): Message {
  return { topic: h.topic, payload: h.payload, qos: h.qos, retain: h.retain, from: h.clientId, timestamp: h.timestamp, properties: h.properties, offset: -1 };
}
