import type * as mp from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import { checkTopicFilter, checkTopicName, MessageProperties, newMessage, QoS, RC } from '@tributary/mqtt';
import type { SubscriptionOptions } from '@tributary/router';
import { fillPlaceholders } from '../../addons/rewrite';
import type { OpenedSession } from '../../broker/broker';
import type { Session } from '../../session/session';
import type { Channel } from '../channel';
import { dialectFor } from '../protocol';
import { startConnectAuth } from './auth';
import type { Will } from '../../session/types';

/** CONNECT (§3.1): validate, open or resume the session, answer CONNACK. */
export function handleConnect(ch: Channel, packet: mp.IConnectPacket, auth?: { authenticationMethod: string; authenticationData?: Buffer }): void {
  const mqtt = ch.config.mqtt;
  const version = packet.protocolVersion ?? 4;
  ch.dialect = dialectFor(version);
  ch.io.setProtocolVersion(version);
  const v5 = ch.dialect.v5;
  const props = packet.properties ?? {};
  const clean = packet.clean !== false;

  const refuse = (rc: number, why: string): void => {
    ch.log.debug({ clientId: packet.clientId, rc, why }, 'connect refused');
    ch.send(ch.dialect.connack(rc, false));
    ch.close(rc);
  };

  // Enhanced authentication (§4.12) runs first; it calls back here once the provider accepts.
  if (v5 && props.authenticationMethod !== undefined && !auth) return startConnectAuth(ch, packet, props.authenticationMethod);
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
      // Wills go through the same publish rewrite as PUBLISH packets (EMQX's message.publish hook).
      message: newMessage(ch.broker.rewriter.rewritePublish(w.topic, clientId, packet.username), payload, (w.qos ?? 0) as QoS, w.retain ?? false, clientId, willProps),
      delaySeconds: v5 ? (willDelayInterval ?? 0) : 0,
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

  const opened = ch.broker.openSession({
    clientId,
    protocolVersion: version,
    cleanStart: clean,
    expiryInterval: expiry,
    receiveMaximum: v5 ? (props.receiveMaximum ?? 65535) : 65535,
    will,
  });
  if (!(opened instanceof Promise)) return accept(ch, packet, opened, { clean, expiry, assigned, auth });
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
      accept(ch, packet, o, { clean, expiry, assigned, auth });
    },
    (err: Error) => {
      ch.log.warn({ err: err.message, clientId }, 'session could not be opened');
      refuse(RC.SERVER_UNAVAILABLE, err.message);
    },
  );
  ch.hold(opened);
}

interface ConnectFlags {
  clean: boolean;
  expiry: number;
  assigned: boolean;
  auth: { authenticationMethod: string; authenticationData?: Buffer } | undefined;
}

/** The session is open: CONNACK, then attach (resending in-flight messages), auto-subscribe, events. */
function accept(ch: Channel, packet: mp.IConnectPacket, opened: OpenedSession, flags: ConnectFlags): void {
  const { session, present } = opened;
  const { clean, expiry, assigned, auth } = flags;
  const mqtt = ch.config.mqtt;
  const version = ch.dialect.version;
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
  // Scaled out, the router learns auto-subscriptions like any other (persistent sessions: stored).
  if (autoSubscribe(ch, session)) void ch.broker.confirmSubscriptions(session);
  if (ch.config.sys_topics.sys_event_messages.client_connected) {
    ch.broker.sys?.clientEvent('connected', {
      clientid: clientId,
      username: packet.username ?? null,
      ipaddress: ch.io.remoteAddress.replace(/:\d+$/, ''),
      proto_ver: version,
      keepalive: ch.keepalive,
      clean_start: clean,
      expiry_interval: expiry,
      connected_at: Date.now(),
    });
  }
}

/** EMQX auto-subscribe: the configured topics, with ${clientid}/${username} filled in, after CONNACK. */
function autoSubscribe(ch: Channel, session: Session): boolean {
  let added = false;
  for (const t of ch.config.auto_subscribe.topics) {
    // A client id or user name of "#" or "+" must not turn c/${clientid} into a wildcard over other clients' topics.
    const filled = (t.topic.includes('${clientid}') ? ch.clientId : '') + (t.topic.includes('${username}') ? (ch.username ?? '') : '');
    if (/[+#]/.test(filled)) {
      ch.log.warn({ topic: t.topic, clientId: ch.clientId }, 'auto_subscribe: client id or user name contains a wildcard; skipped');
      continue;
    }
    const filter = fillPlaceholders(t.topic, ch.clientId, ch.username);
    if (checkTopicFilter(filter, ch.config.mqtt.max_topic_levels)) {
      ch.log.warn({ filter, clientId: ch.clientId }, 'auto_subscribe topic is not a valid filter; skipped');
      continue;
    }
    const options: SubscriptionOptions = {
      qos: Math.min(2, Math.max(0, t.qos ?? 0)) as QoS,
      noLocal: t.nl === 1,
      retainAsPublished: t.rap === 1,
      retainHandling: Math.min(2, Math.max(0, t.rh ?? 0)) as 0 | 1 | 2,
    };
    const { existed, refused } = ch.broker.subscribe(session, filter, options);
    added ||= !refused;
    if (!refused && (options.retainHandling === 0 || (options.retainHandling === 1 && !existed))) ch.broker.deliverRetained(session, filter, options);
  }
  return added;
}
