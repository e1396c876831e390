import type * as mp from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import type { ConnectInfo } from '@tributary/hooks';
import { checkTopicName, MessageProperties, newMessage, QoS, RC } from '@tributary/mqtt';
import type { OpenedSession } from '../../broker/broker';
import type { Will } from '../../session/types';
import type { Channel } from '../channel';
import { ConnectTerms, dialectFor } from '../protocol';
import { peerIdentity } from '../peer-identity';
import { Steps, wait } from '../steps';
import { authenticate, AuthProperties } from './auth';

/** What the CONNECT settled, carried to CONNACK. */
interface Connecting {
  packet: mp.IConnectPacket;
  terms: ConnectTerms;
  /** The client id the broker assigned (5.0, empty id). */
  assigned: string | undefined;
  auth: AuthProperties | undefined;
}

/**
 * CONNECT (§3.1): validate, authenticate (client.authenticate), open or resume the session,
 * answer CONNACK. Every 3.x/5.0 difference comes from the Dialect.
 */
export function handleConnect(ch: Channel, packet: mp.IConnectPacket): Steps {
  const mqtt = ch.config.mqtt;
  const version = packet.protocolVersion ?? 4;
  ch.dialect = dialectFor(version);
  ch.io.setProtocolVersion(version);
  const props = packet.properties ?? {};
  const clean = packet.clean !== false;
  const refuse = (rc: number, why: string): Steps => ({ refuse: rc, why: `${why} (client id "${packet.clientId ?? ''}")` });

  // 3.x CONNECTs have no properties: these are 5.0's.
  if (props.receiveMaximum === 0 || props.maximumPacketSize === 0) return refuse(RC.PROTOCOL_ERROR, 'Receive Maximum or Maximum Packet Size of 0');

  // A verified certificate (peer_cert_as_*) or a PSK identity may say who the client is.
  const peer = peerIdentity(ch.io, ch.config);
  const username = peer.username ?? packet.username ?? peer.defaultUsername;
  let clientId = peer.clientId ?? packet.clientId ?? '';
  let assigned: string | undefined;
  if (clientId.length === 0) {
    if (!ch.dialect.allowsEmptyClientId(clean)) return refuse(RC.CLIENT_IDENTIFIER_NOT_VALID, 'empty client id');
    clientId = assigned = `auto-${randomBytes(9).toString('base64url')}`;
  }
  if (Buffer.byteLength(clientId) > mqtt.max_clientid_len) return refuse(RC.CLIENT_IDENTIFIER_NOT_VALID, 'client id too long');

  const terms = ch.dialect.terms(packet, mqtt);
  let will: Will | undefined;
  if (packet.will) {
    const w = packet.will;
    if (checkTopicName(w.topic, mqtt.max_topic_levels)) return refuse(RC.TOPIC_NAME_INVALID, `invalid will topic ${w.topic}`);
    if (w.retain && !mqtt.retain_available) return refuse(RC.RETAIN_NOT_SUPPORTED, 'retained will');
    const payload = typeof w.payload === 'string' ? Buffer.from(w.payload) : w.payload;
    const { willDelayInterval: _delay, ...messageProps } = w.properties ?? {};
    // The Payload Format Indicator is the byte as sent (0 or 1, checked), not mqtt-packet's boolean: see libs/mqtt parser.ts.
    const willProps = Object.keys(messageProps).length > 0 ? (messageProps as MessageProperties) : undefined;
    // Published through broker.publish, so it passes the message.publish hooks (topic rewrite ...) when it fires.
    will = { message: newMessage(w.topic, payload, (w.qos ?? 0) as QoS, w.retain ?? false, clientId, willProps), delaySeconds: terms.willDelay, username };
  }

  ch.clientId = clientId;
  ch.username = username;
  ch.will = will;
  ch.expiryInterval = terms.expiry;
  ch.clientMaxPacketSize = terms.clientMaxPacketSize;
  ch.clientTopicAliasMax = terms.clientTopicAliasMax;
  // Request Problem Information 0: no Reason String on acknowledgements [MQTT-3.1.2-29].
  const problemInformation = packet.properties?.requestProblemInformation as unknown;
  ch.problemInformation = problemInformation !== 0 && problemInformation !== false;
  ch.keepalive = terms.keepalive;
  ch.io.setKeepAlive(ch.keepalive);
  const listener = ch.io.listener;
  const client: ConnectInfo = {
    clientId,
    username,
    peerhost: ch.peerhost,
    protocolVersion: version,
    isSuperuser: false,
    listener,
    keepalive: ch.keepalive,
    cleanStart: clean,
    expiryInterval: terms.expiry,
    peername: ch.peername,
    sockname: ch.io.localAddress,
    protoName: packet.protocolId ?? 'MQTT',
    receiveMaximum: terms.clientReceiveMaximum,
    isBridge: (packet as { bridgeMode?: boolean }).bridgeMode === true,
    properties: packet.properties,
  };
  // mqtt.client_attrs_init: before client.connect and authentication, which may read them.
  const attrsInit = ch.broker.clientAttrsInit;
  if (attrsInit) client.clientAttrs = attrsInit(client, ch.io.peerCertificate());
  ch.client = client;
  ch.broker.hooks.notify('client.connect', client);

  const password = packet.password === undefined ? undefined : Buffer.from(packet.password);
  const cred = { clientId, username, password, peerhost: ch.peerhost, protocolVersion: version, listener, clientAttrs: client.clientAttrs };
  // Enhanced authentication (§4.12): the exchange's steps are client.authenticate calls too (auth.ts).
  const method = props.authenticationMethod;
  const creds = method === undefined ? cred : { ...cred, authMethod: method, authData: props.authenticationData };
  return authenticate(ch, creds, (auth) => open(ch, { packet, terms, assigned, auth }));
}

/** Authenticated: open or resume the session, then CONNACK. */
function open(ch: Channel, c: Connecting): Steps {
  const opened = ch.broker.openSession({
    clientId: ch.clientId,
    protocolVersion: ch.dialect.version,
    cleanStart: c.packet.clean !== false,
    expiryInterval: c.terms.expiry,
    receiveMaximum: c.terms.clientReceiveMaximum,
    will: ch.will,
    client: ch.client!,
  });
  if (!(opened instanceof Promise)) return accept(ch, opened, c);
  // Scaled out, resuming a session waits for the sessions table and the router: later packets wait.
  return wait({
    wait: opened,
    always: true,
    hold: true,
    then: (o): Steps => {
      if (ch.state !== 'closed') return accept(ch, o, c);
      // The client went away while its session was being opened: release it as a disconnect.
      o.session.attach(ch, 65535);
      ch.session = o.session;
      ch.handleClosed();
    },
    failed: (err) => {
      ch.log.warn({ err: err.message, clientId: ch.clientId }, 'session could not be opened');
      return { refuse: RC.SERVER_UNAVAILABLE, why: err.message };
    },
  });
}

/** The session is open: CONNACK, then attach (resending in-flight messages), then client.connected (auto-subscribe, $SYS events ...). */
function accept(ch: Channel, opened: OpenedSession, c: Connecting): Steps {
  const { session, present } = opened;
  ch.session = session;
  ch.state = 'connected';
  ch.connectedAt = Date.now();
  ch.broker.metrics['client.connected']++;
  ch.broker.metrics['connections.count']++;
  const props = ch.dialect.connackProperties(c.packet, ch.config.mqtt, c.terms, c.assigned);
  if (props && c.auth) Object.assign(props, c.auth);
  return [
    { send: ch.dialect.connack(RC.SUCCESS, present, props) },
    {
      // After CONNACK: resend unacknowledged messages, then whatever queued while offline.
      call: () => {
        session.attach(ch, c.terms.clientReceiveMaximum, c.terms.receiveMaximum);
        // EMQX's order: client.connected, then client.connack (both after CONNACK here: nothing may precede it [MQTT-3.2.0-1]).
        const conn = ch.client!;
        conn.connectedAt = ch.connectedAt;
        ch.broker.hooks.notify('client.connected', conn);
        ch.broker.hooks.notify('client.connack', conn, RC.SUCCESS);
      },
    },
  ];
}
