import type { Packet } from '@tributary/mqtt';
import { RC } from '@tributary/mqtt';
import { ProtocolViolation } from './protocol';

const ACK = ['reasonString', 'userProperties'];
const WILL = ['willDelayInterval', 'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'userProperties'];

/** The properties a client may send in each packet (MQTT 5.0 §2.2.2.2, table 2-4). */
const ALLOWED: Partial<Record<Packet['cmd'], ReadonlySet<string>>> = {
  connect: new Set([
    'sessionExpiryInterval',
    'receiveMaximum',
    'maximumPacketSize',
    'topicAliasMaximum',
    'requestResponseInformation',
    'requestProblemInformation',
    'userProperties',
    'authenticationMethod',
    'authenticationData',
  ]),
  // Subscription Identifier is a PUBLISH property, but only the server may send it [MQTT-3.3.4-6].
  publish: new Set(['payloadFormatIndicator', 'messageExpiryInterval', 'topicAlias', 'responseTopic', 'correlationData', 'userProperties', 'contentType']),
  puback: new Set(ACK),
  pubrec: new Set(ACK),
  pubrel: new Set(ACK),
  pubcomp: new Set(ACK),
  subscribe: new Set(['subscriptionIdentifier', 'userProperties']),
  unsubscribe: new Set(['userProperties']),
  disconnect: new Set(['sessionExpiryInterval', 'reasonString', 'userProperties', 'serverReference']),
  auth: new Set(['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties']),
};
const WILL_ALLOWED = new Set(WILL);
/** One-byte properties whose only values are 0 and 1 (anything else is a Protocol Error). */
const ZERO_OR_ONE = new Set(['payloadFormatIndicator', 'requestProblemInformation', 'requestResponseInformation']);

function check(props: Record<string, unknown> | undefined, allowed: ReadonlySet<string>, what: string): void {
  if (!props) return;
  for (const [name, value] of Object.entries(props)) {
    if (name === 'subscriptionIdentifier' && what === 'PUBLISH') throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'Subscription Identifier from a client [MQTT-3.3.4-6]');
    // An identifier not valid for the packet type makes it malformed (§2.2.2.2).
    if (!allowed.has(name)) throw new ProtocolViolation(RC.MALFORMED_PACKET, `property ${name} is not allowed in ${what}`);
    // The parser turns a repeated property into an array; only User Property may repeat.
    if (Array.isArray(value) && name !== 'userProperties') throw new ProtocolViolation(RC.PROTOCOL_ERROR, `property ${name} included more than once in ${what}`);
    // Only 0 and 1 are defined (§3.3.2.3.2, §3.1.3.2.3, §3.1.2.11.6-7); the parser keeps the byte as sent.
    if (ZERO_OR_ONE.has(name) && value !== 0 && value !== 1) throw new ProtocolViolation(RC.PROTOCOL_ERROR, `property ${name} = ${String(value)} in ${what}`);
    // A Response Topic is a Topic Name: no wildcards [MQTT-3.3.2-14], also in a will (§3.1.3.2.3).
    if (name === 'responseTopic' && /[+#]/.test(value as string)) throw new ProtocolViolation(RC.PROTOCOL_ERROR, `wildcard in the Response Topic of ${what} [MQTT-3.3.2-14]`);
  }
}

/** Validates the properties of a 5.0 packet from a client; throws a ProtocolViolation. */
export function checkProperties(packet: Packet): void {
  const allowed = ALLOWED[packet.cmd];
  if (!allowed) return;
  check((packet as { properties?: Record<string, unknown> }).properties, allowed, packet.cmd.toUpperCase());
  if (packet.cmd === 'connect' && packet.will) check(packet.will.properties as Record<string, unknown> | undefined, WILL_ALLOWED, 'the will');
}
