import type { ClientInfo, HookMessage } from '@tributary/hooks';
import type { Message } from '@tributary/mqtt';

/** The hooks' view of a message; `username` is known only where the publisher is (message.publish). */
export function hookMessage(msg: Message, username?: string): HookMessage {
  return { topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, clientId: msg.from, username, properties: msg.properties, timestamp: msg.timestamp };
}

/** A broker message from what a hook returned (not logged yet). */
export function brokerMessage(h: HookMessage): Message {
  return { topic: h.topic, payload: h.payload, qos: h.qos, retain: h.retain, from: h.clientId, timestamp: h.timestamp, properties: h.properties, offset: -1 };
}

/** Hooks about the broker itself (wills, delayed releases, commands): no client, no address. */
export const BROKER_CLIENT: ClientInfo = Object.freeze({ clientId: '', username: undefined, peerhost: '', protocolVersion: 5, isSuperuser: true });
