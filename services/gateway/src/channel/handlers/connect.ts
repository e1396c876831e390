import type * as mp from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import type { ConnectInfo } from '@tributary/hooks';
import { checkTopicName, MessageProperties, newMessage, QoS, RC } from '@tributary/mqtt';
import type { OpenedSession } from '../../broker/broker';
import type { Channel } from '../channel';
import { dialectFor } from '../protocol';
import { authenticate, AuthProperties } from './auth';
import type { Will } from '../../session/types';

/** CONNECT (§3.1): validate, authenticate (client.authenticate), open or resume the session, answer CONNACK. */
export function handleConnect(ch: Channel, packet: mp.IConnectPacket): void {
  const mqtt = ch.config.mqtt;
  const version = packet.protocolVersion ?? 4;
  ch.dialect = dialectFor(version);
  ch.io.setProtocolVersion(version);
  const v5 = ch.dialect.v5;
  const props = packet.properties ?? {};
  const clean = packet.clean !== false;

  const refuse = (rc: number, why: string): void => ch.refuse(rc, why, packet.clientId);

  if (v5 && (props.receiveMaximum === 0 || props.maximumPacketSize === 0)) {
    return refuse(RC.PROTOCOL_ERROR, 'Receive Maximum or Maximum Packet Size of 0');
  }

  let clientId = packet.clientId ?? '';
  let assigned = false;
  if (clientId.length === 0) {
    // 3.1.1: an empty id needs CleanSession=1 [MQTT-3.1.3-8] (else CONNACK 0x02); 3.1 has no empty ids;
    // 5.0 assigns one, but not to resume a session nobody can name: Clean Start = 0 gets 0x85 (as EMQX).
    if (version === 3 || !clean) return refuse(RC.CLIENT_IDENTIFIER_NOT_VALID, 'empty client id');
    clientId = `auto-${randomBytes(9).toString('base64url')}`;
    assigned = true;
  }
  if (Buffer.byteLength(clientId) > mqtt.max_clientid_len) return refuse(RC.CLIENT_IDENTIFIER_NOT_VALID, 'client id too long');

  let will: Will | undefined;
  if (packet.will) {
    const w = packet.will;
    if (checkTopicName(w.topic, mqtt.max_topic_levels)) return refuse(RC.TOPIC_NAME_INVALID, `invalid will topic ${w.topic}`);
    if (w.retain && !mqtt.retain_available) return refuse(RC.RETAIN_NOT_SUPPORTED, 'retained will');
    const payload = typeof w.payload === 'string' ? Buffer.from(w.payload) : w.payload;
    const { willDelayInterval, ...messageProps } = w.properties ?? {};
    const hasProps = v5 && Object.keys(messageProps).length > 0;
    // The Payload Format Indicator is the byte as sent (0 or 1, checked), not mqtt-packet's boolean: see libs/mqtt parser.ts.
    const willProps = hasProps ? (messageProps as MessageProperties) : undefined;
    will = {
      // Published through broker.publish, so it passes the message.publish hooks (topic rewrite ...) when it fires.
      message: newMessage(w.topic, payload, (w.qos ?? 0) as QoS, w.retain ?? false, clientId, willProps),
      delaySeconds: v5 ? (willDelayInterval ?? 0) : 0,
      username: packet.username,
    };
  }

  const maxExpiry = Math.floor(mqtt.max_session_expiry_interval / 1000);
  const expiry = v5 ? Math.min(props.sessionExpiryInterval ?? 0, maxExpiry) : clean ? 0 : Math.floor(mqtt.session_expiry_interval / 1000);
  ch.clientId = clientId;
  ch.username = packet.username;
  ch.will = will;
  ch.expiryInterval = expiry;
  if (v5 && props.maximumPacketSize) ch.clientMaxPacketSize = props.maximumPacketSize;
  if (v5 && props.topicAliasMaximum) ch.clientTopicAliasMax = props.topicAliasMaximum;
  // A 5.0 client must use the Server Keep Alive [MQTT-3.2.2-21], so the broker enforces that one;
  // 3.x has no way to be told, so it keeps its own.
  ch.keepalive = v5 && mqtt.server_keepalive > 0 ? mqtt.server_keepalive : (packet.keepalive ?? 0);
  ch.io.setKeepAlive(ch.keepalive);
  const client: ConnectInfo = { clientId, username: packet.username, peerhost: ch.peerhost, protocolVersion: version, isSuperuser: false, keepalive: ch.keepalive, cleanStart: clean, expiryInterval: expiry };
  ch.client = client;
  ch.broker.hooks.notify('client.connect', client);

  const password = packet.password === undefined ? undefined : Buffer.from(packet.password);
  const cred = { clientId, username: packet.username, password, peerhost: ch.peerhost, protocolVersion: version };
  const method = v5 ? props.authenticationMethod : undefined;
  // Enhanced authentication (§4.12): the exchange's steps are client.authenticate calls too (auth.ts).
  const creds = method === undefined ? cred : { ...cred, authMethod: method, authData: props.authenticationData };
  authenticate(ch, creds, (auth) => open(ch, packet, { clean, expiry, assigned, auth }));
}

/** Authenticated: open or resume the session, then CONNACK. */
function open(ch: Channel, packet: mp.IConnectPacket, flags: ConnectFlags): void {
  const v5 = ch.dialect.v5;
  const props = packet.properties ?? {};
  const { clean, expiry } = flags;
  const clientId = ch.clientId;
  const opened = ch.broker.openSession({
    clientId,
    protocolVersion: ch.dialect.version,
    cleanStart: clean,
    expiryInterval: expiry,
    receiveMaximum: v5 ? (props.receiveMaximum ?? 65535) : 65535,
    will: ch.will,
    client: ch.client!,
  });
  if (!(opened instanceof Promise)) return accept(ch, packet, opened, flags);
  // Scaled out, resuming a session waits for the sessions table and the router: hold later packets.
  opened.then(
    (o) => {
      if (ch.state === 'closed') {
        // The client went away while its session was being opened: release it as a disconnect.
        o.session.attach(ch, 65535);
        ch.session = o.session;
        ch.handleClosed();
        return;
      }
      accept(ch, packet, o, flags);
    },
    (err: Error) => {
      ch.log.warn({ err: err.message, clientId }, 'session could not be opened');
      ch.refuse(RC.SERVER_UNAVAILABLE, err.message);
    },
  );
  ch.hold(opened);
}

interface ConnectFlags {
  clean: boolean;
  expiry: number;
  assigned: boolean;
  auth: AuthProperties | undefined;
}

/** The session is open: CONNACK, then attach (resending in-flight messages), then client.connected (auto-subscribe, $SYS events ...). */
function accept(ch: Channel, packet: mp.IConnectPacket, opened: OpenedSession, flags: ConnectFlags): void {
  const { session, present } = opened;
  const { clean, expiry, assigned, auth } = flags;
  const mqtt = ch.config.mqtt;
  const v5 = ch.dialect.v5;
  const props = packet.properties ?? {};
  const clientId = ch.clientId;
  ch.session = session;
  ch.state = 'connected';
  ch.broker.metrics['client.connected']++;
  ch.broker.metrics['connections.count']++;

  let connackProps: mp.IConnackPacket['properties'];
  if (v5) {
    connackProps = {
      receiveMaximum: mqtt.max_inflight,
      maximumPacketSize: mqtt.max_packet_size,
      retainAvailable: mqtt.retain_available,
      wildcardSubscriptionAvailable: mqtt.wildcard_subscription,
      subscriptionIdentifiersAvailable: true,
      sharedSubscriptionAvailable: mqtt.shared_subscription,
      topicAliasMaximum: mqtt.max_topic_alias,
    };
    if (props.requestResponseInformation && mqtt.response_information) connackProps.responseInformation = mqtt.response_information;
    if (auth) Object.assign(connackProps, auth);
    if (assigned) connackProps.assignedClientIdentifier = clientId;
    if (expiry !== (props.sessionExpiryInterval ?? 0)) connackProps.sessionExpiryInterval = expiry;
    // Server Keep Alive only when it differs from what the client asked for (§3.2.2.3.14).
    if (mqtt.server_keepalive > 0 && mqtt.server_keepalive !== (packet.keepalive ?? 0)) connackProps.serverKeepAlive = mqtt.server_keepalive;
  }
  ch.send(ch.dialect.connack(RC.SUCCESS, present, connackProps));
  // After CONNACK: resend unacknowledged messages, then whatever queued while offline.
  ch.session.attach(ch, v5 ? (props.receiveMaximum ?? 65535) : 65535);
  // EMQX's order: client.connected, then client.connack (both after CONNACK here: nothing may precede it).
  const conn = ch.client!;
  ch.broker.hooks.notify('client.connected', conn);
  ch.broker.hooks.notify('client.connack', conn, RC.SUCCESS);
}
