import type * as mp from 'mqtt-packet';
import type { GatewayConfig } from '../config';
import { connackCodeV3, RC } from '@tributary/mqtt';

type MqttConfig = GatewayConfig['mqtt'];

/** What a CONNECT settles for the connection, per protocol version. */
export interface ConnectTerms {
  /** Session Expiry Interval granted (seconds). */
  expiry: number;
  keepalive: number;
  /** The client's Receive Maximum: our outgoing window. */
  clientReceiveMaximum: number;
  /** Our Receive Maximum for this client (Infinity: 3.x has none). */
  receiveMaximum: number;
  clientMaxPacketSize: number;
  clientTopicAliasMax: number;
  /** Will Delay Interval (seconds). */
  willDelay: number;
}

/**
 * Everything that differs between MQTT 3.x and 5.0 when the broker builds a reply, in one
 * place, so handlers never branch on the protocol version themselves.
 */
export interface Dialect {
  readonly version: 3 | 4 | 5;
  readonly v5: boolean;
  connack(reasonCode: number, sessionPresent: boolean, properties?: mp.IConnackPacket['properties']): mp.IConnackPacket;
  /** The DISCONNECT to send before closing, or undefined for 3.x (which just closes). */
  disconnect(reasonCode: number): mp.IDisconnectPacket | undefined;
  /** A SUBACK/UNSUBACK failure code for an invalid filter. */
  subscribeFailure(reasonCode: number): number;
  ack(cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', messageId: number, reasonCode: number, reasonString?: string): mp.IPubackPacket | mp.IPubrecPacket | mp.IPubrelPacket | mp.IPubcompPacket;
  unsuback(messageId: number, reasonCodes: number[]): mp.IUnsubackPacket;
  /** Whether an empty client id is allowed (and then assigned) with this Clean Start / Clean Session. */
  allowsEmptyClientId(clean: boolean): boolean;
  /** Expiry, keep-alive, windows and limits a CONNECT settles. */
  terms(packet: mp.IConnectPacket, mqtt: MqttConfig): ConnectTerms;
  /** CONNACK properties (undefined for 3.x, which has none). */
  connackProperties(packet: mp.IConnectPacket, mqtt: MqttConfig, terms: ConnectTerms, assignedId: string | undefined): mp.IConnackPacket['properties'];
}

/** 3.x: no properties, no limits from the client; Clean Session = 0 keeps the session for mqtt.session_expiry_interval. */
function termsV3(packet: mp.IConnectPacket, mqtt: MqttConfig): ConnectTerms {
  return {
    expiry: packet.clean !== false ? 0 : Math.floor(mqtt.session_expiry_interval / 1000),
    // 3.x has no way to be told the server's keep-alive, so it keeps its own.
    keepalive: packet.keepalive ?? 0,
    clientReceiveMaximum: 65535,
    receiveMaximum: Infinity,
    clientMaxPacketSize: Infinity,
    clientTopicAliasMax: 0,
    willDelay: 0,
  };
}

function termsV5(packet: mp.IConnectPacket, mqtt: MqttConfig): ConnectTerms {
  const props = packet.properties ?? {};
  return {
    expiry: Math.min(props.sessionExpiryInterval ?? 0, Math.floor(mqtt.max_session_expiry_interval / 1000)),
    // A 5.0 client must use the Server Keep Alive [MQTT-3.2.2-21], so the broker enforces that one.
    keepalive: mqtt.server_keepalive > 0 ? mqtt.server_keepalive : (packet.keepalive ?? 0),
    clientReceiveMaximum: props.receiveMaximum ?? 65535,
    receiveMaximum: mqtt.max_inflight,
    clientMaxPacketSize: props.maximumPacketSize || Infinity,
    clientTopicAliasMax: props.topicAliasMaximum ?? 0,
    willDelay: packet.will?.properties?.willDelayInterval ?? 0,
  };
}

function connackPropertiesV5(packet: mp.IConnectPacket, mqtt: MqttConfig, terms: ConnectTerms, assignedId: string | undefined): mp.IConnackPacket['properties'] {
  const props = packet.properties ?? {};
  const out: NonNullable<mp.IConnackPacket['properties']> = {
    receiveMaximum: mqtt.max_inflight,
    maximumPacketSize: mqtt.max_packet_size,
    retainAvailable: mqtt.retain_available,
    wildcardSubscriptionAvailable: mqtt.wildcard_subscription,
    subscriptionIdentifiersAvailable: true,
    sharedSubscriptionAvailable: mqtt.shared_subscription,
    topicAliasMaximum: mqtt.max_topic_alias,
  };
  if (props.requestResponseInformation && mqtt.response_information) out.responseInformation = mqtt.response_information;
  if (assignedId !== undefined) out.assignedClientIdentifier = assignedId;
  if (terms.expiry !== (props.sessionExpiryInterval ?? 0)) out.sessionExpiryInterval = terms.expiry;
  // Server Keep Alive only when it differs from what the client asked for (§3.2.2.3.14).
  if (mqtt.server_keepalive > 0 && mqtt.server_keepalive !== (packet.keepalive ?? 0)) out.serverKeepAlive = mqtt.server_keepalive;
  return out;
}

const v3 = (version: 3 | 4): Dialect => ({
  version,
  v5: false,
  connack: (rc, sessionPresent) => ({ cmd: 'connack', returnCode: connackCodeV3(rc), sessionPresent: rc === RC.SUCCESS && sessionPresent }),
  disconnect: () => undefined,
  subscribeFailure: () => 0x80,
  ack: (cmd, messageId) => ({ cmd, messageId }) as mp.IPubackPacket,
  unsuback: (messageId) => ({ cmd: 'unsuback', messageId }) as mp.IUnsubackPacket,
  // 3.1 has no empty ids; 3.1.1 needs Clean Session = 1 [MQTT-3.1.3-8].
  allowsEmptyClientId: (clean) => version === 4 && clean,
  terms: termsV3,
  connackProperties: () => undefined,
});

const v5: Dialect = {
  version: 5,
  v5: true,
  connack: (rc, sessionPresent, properties) => ({ cmd: 'connack', reasonCode: rc, sessionPresent: rc === RC.SUCCESS && sessionPresent, properties }),
  disconnect: (reasonCode) => ({ cmd: 'disconnect', reasonCode }),
  subscribeFailure: (rc) => rc,
  ack: (cmd, messageId, reasonCode, reasonString) =>
    (reasonString === undefined ? { cmd, messageId, reasonCode } : { cmd, messageId, reasonCode, properties: { reasonString } }) as mp.IPubackPacket,
  // One reason code per filter [MQTT-3.11.3-1]; mqtt-packet reads them from `granted` (without it, generate throws).
  unsuback: (messageId, reasonCodes) => ({ cmd: 'unsuback', messageId, granted: reasonCodes }),
  // Assigned, but not to resume a session nobody can name: Clean Start = 0 gets 0x85 (as EMQX).
  allowsEmptyClientId: (clean) => clean,
  terms: termsV5,
  connackProperties: connackPropertiesV5,
};

const dialects = { 3: v3(3), 4: v3(4), 5: v5 } as const;

export function dialectFor(protocolVersion: number): Dialect {
  return dialects[protocolVersion as 3 | 4 | 5] ?? dialects[4];
}

/** A protocol violation detected by a handler: close with this reason code (v5 DISCONNECT). The class is the error tree's. */
export { ProtocolError as ProtocolViolation } from '@tributary/common';
