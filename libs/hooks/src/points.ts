import type { MessageProperties, QoS } from '@tributary/mqtt';

/**
 * The closed set of hook points, EMQX's names (emqx_hookpoints), and one typed signature each.
 * Fold points pass an accumulator along the chain and a callback may stop it with a result;
 * notification points cannot change outcomes. `delivery.dropped` is EMQX 5's name for a
 * message dropped on its way to one subscriber (queue full, expired, too large).
 */

/** Who a hook is about: the client of a connection. */
export interface ClientInfo {
  clientId: string;
  username: string | undefined;
  /** The peer's address without the port. */
  peerhost: string;
  protocolVersion: number;
  /** Set by client.authenticate: superusers skip authorization. */
  isSuperuser: boolean;
  /** Set by client.authenticate: the client's own authorization rules (a JWT's `acl` claim, an HTTP authenticator's `acl`), checked before every source. */
  acl?: readonly unknown[];
  /** The listener the client connected to, e.g. "tcp:default". */
  listener?: string;
  /** The peer's address and port, "ip:port" (EMQX's peername). */
  peername?: string;
  /** The broker's address and port of the connection, "ip:port" (EMQX's sockname). */
  sockname?: string;
  /**
   * EMQX's client attributes: set at CONNECT by `mqtt.client_attrs_init`, merged with what the
   * authenticator returned (an HTTP reply's or a JWT's `client_attrs`). Undefined when none.
   */
  clientAttrs?: Readonly<Record<string, string>>;
}

/** MQTT 5.0 CONNECT properties as the client sent them (§3.1.2.11), mqtt-packet's names. */
export interface ConnectProperties {
  sessionExpiryInterval?: number;
  receiveMaximum?: number;
  maximumPacketSize?: number;
  topicAliasMaximum?: number;
  requestResponseInformation?: boolean;
  requestProblemInformation?: boolean;
  userProperties?: Record<string, string | string[]>;
  authenticationMethod?: string;
  authenticationData?: Buffer;
}

/** The properties of a SUBSCRIBE, UNSUBSCRIBE, PUBACK or PUBCOMP (5.0) the hooks see: user properties and a reason string. */
export interface PacketProperties {
  userProperties?: Record<string, string | string[]>;
  reasonString?: string;
  /** SUBSCRIBE only. */
  subscriptionIdentifier?: number | number[];
}

/** MQTT 5.0 DISCONNECT properties from the client (§3.14.2.2), mqtt-packet's names. */
export interface DisconnectProperties {
  sessionExpiryInterval?: number;
  reasonString?: string;
  userProperties?: Record<string, string | string[]>;
  serverReference?: string;
}

/** client.connect: what the CONNECT asked for, before authentication. */
export interface ConnectInfo extends ClientInfo {
  keepalive: number;
  cleanStart: boolean;
  /** Session Expiry Interval granted, seconds. */
  expiryInterval: number;
  /** "MQTT", or "MQIsdp" for 3.1. */
  protoName?: string;
  /** The client's Receive Maximum (65535 when it set none). */
  receiveMaximum?: number;
  /** The CONNECT had the bridge bit (protocol version 0x80 | n). */
  isBridge?: boolean;
  /** The CONNECT's properties (5.0), as sent. */
  properties?: ConnectProperties;
  /** When the CONNECT was accepted (ms since the epoch); set before client.connected. */
  connectedAt?: number;
}

/** client.check_authn_complete: how authentication of a CONNECT (or a re-authentication) ended. */
export interface AuthnComplete {
  /** 0 on success, else the CONNACK/DISCONNECT reason code. */
  reasonCode: number;
  isSuperuser: boolean;
  /** No authenticator is registered: the client was let in without credentials being checked. */
  isAnonymous: boolean;
}

/** client.authenticate: the credentials of a CONNECT (or of an AUTH step, see authMethod). */
export interface Credentials {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  peerhost: string;
  protocolVersion: number;
  /** MQTT 5.0 enhanced authentication (§4.12): the method, when the client named one. */
  authMethod?: string;
  /** The Authentication Data of this step. */
  authData?: Buffer;
  /** True for the later steps of an exchange (AUTH 0x18). */
  authContinue?: boolean;
  /** True for a re-authentication of a connected client (AUTH 0x19 and its steps). */
  reauthenticate?: boolean;
  /** The listener the client connected to, e.g. "ssl:default". */
  listener?: string;
  /** The client's attributes so far (mqtt.client_attrs_init; a re-authentication: the current ones), for `${client_attrs.NAME}` in requests. */
  clientAttrs?: Readonly<Record<string, string>>;
}

/** The outcome of client.authenticate. `continue` (enhanced authentication) sends AUTH 0x18 with authData. */
export interface AuthResult {
  result: 'allow' | 'deny' | 'continue';
  isSuperuser?: boolean;
  /** With allow or continue: Authentication Data for the client. */
  authData?: Buffer;
  /** With deny: the CONNACK/DISCONNECT reason code (default 0x87 Not authorized). */
  reasonCode?: number;
  /** With allow: the client's own authorization rules (become ClientInfo.acl). */
  acl?: readonly unknown[];
  /** With allow: client attributes the authenticator returned (merged over mqtt.client_attrs_init's). */
  clientAttrs?: Readonly<Record<string, string>>;
  /** With allow: when the credentials expire (ms since the epoch, e.g. a JWT's exp); the connection is closed then. */
  expireAt?: number;
}

/** client.authorize: what a client is about to do. */
export interface AuthorizeRequest {
  action: 'publish' | 'subscribe';
  topic: string;
  qos: QoS;
  retain: boolean;
}

/** A message as hooks see it (the minimum contract plugins rely on). */
export interface HookMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** Publisher's client id ('' for the broker itself). */
  clientId: string;
  /** The publisher's username, where the process knows it (message.publish; deliveries routed by the process that accepted the message). */
  username: string | undefined;
  /** The publisher's address, address and port, and client attributes, where the process knows them (as username). */
  peerhost?: string | undefined;
  peername?: string | undefined;
  clientAttrs?: Readonly<Record<string, string>> | undefined;
  properties: MessageProperties | undefined;
  /** Milliseconds since the epoch at which the broker accepted it. */
  timestamp: number;
  /** Its offset in the messages topic, where known (delivered, acked and dropped messages). */
  offset?: number;
}

/** Subscription options of one filter (MQTT 5.0 §3.8.3.1). */
export interface HookSubscriptionOptions {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

/** One filter of a SUBSCRIBE, as client.subscribe may rewrite it. */
export interface SubscribeRequest {
  filter: string;
  options: HookSubscriptionOptions;
}

/** What message.publish callbacks may do besides returning a message. */
export interface PublishContext {
  /** The publisher's acknowledgement also waits for `p` (e.g. a copy written elsewhere); the chain does not. */
  waitFor(p: Promise<unknown>): void;
}

export type Awaitable<T> = T | Promise<T>;

/** A fold reply: undefined = go on unchanged; a value = go on with it; { stop } = end the chain with it. */
export type PublishReply = undefined | HookMessage | { stop: true; message: HookMessage } | { stop: true; drop: true };
export type AuthenticateReply = undefined | AuthResult | ({ stop: true } & AuthResult);
/** `from` names who decided (EMQX's authz_source: `file`, `cache`, `built_in_database`, ...), for client.check_authz_complete. */
export type AuthorizeReply = undefined | { result: 'allow' | 'deny'; from?: string } | { stop: true; result: 'allow' | 'deny'; from?: string };
export type SubscribeReply = undefined | SubscribeRequest[] | { stop: true; filters: SubscribeRequest[] };
export type UnsubscribeReply = undefined | string[] | { stop: true; filters: string[] };

/** no_local: a No Local subscription's own message; qos0_msg: a QoS 0 message for a disconnected session that mqtt.mqueue_store_qos0 = false does not queue. */
export type DeliveryDropReason = 'queue_full' | 'expired' | 'too_large' | 'no_session' | 'no_local' | 'qos0_msg';
export type MessageDropReason = 'no_subscribers' | 'queue_full' | 'invalid_topic';
export type SessionEndReason = 'normal' | 'discarded' | 'takenover' | 'expired' | 'released';

/** Every hook point and its callback's signature. */
export interface HookSignatures {
  'client.connect': (conn: ConnectInfo) => void;
  'client.connack': (conn: ConnectInfo, reasonCode: number) => void;
  'client.connected': (conn: ConnectInfo) => void;
  'client.disconnected': (client: ClientInfo, reason: string, properties?: DisconnectProperties) => void;
  'client.authenticate': (cred: Credentials, acc: AuthResult) => Awaitable<AuthenticateReply>;
  'client.authorize': (client: ClientInfo, req: AuthorizeRequest, acc: 'allow' | 'deny') => Awaitable<AuthorizeReply>;
  /** Authentication ended (allow or deny; not the intermediate steps of an enhanced exchange). */
  'client.check_authn_complete': (client: ClientInfo, result: AuthnComplete) => void;
  /** Authorization decided: `source` is who decided (`default` = no_match or nothing registered, `superuser`, `cache`, a source's type). */
  'client.check_authz_complete': (client: ClientInfo, req: AuthorizeRequest, result: 'allow' | 'deny', source: string) => void;
  'client.subscribe': (client: ClientInfo, filters: SubscribeRequest[]) => SubscribeReply;
  'client.unsubscribe': (client: ClientInfo, filters: string[]) => UnsubscribeReply;
  'session.created': (client: ClientInfo) => void;
  /** `properties`: the SUBSCRIBE's (5.0), where the subscription came from one. */
  'session.subscribed': (client: ClientInfo, filter: string, options: HookSubscriptionOptions, properties?: PacketProperties) => void;
  /** `properties`: the UNSUBSCRIBE's (5.0), where the unsubscription came from one. */
  'session.unsubscribed': (client: ClientInfo, filter: string, options?: HookSubscriptionOptions, properties?: PacketProperties) => void;
  'session.resumed': (client: ClientInfo) => void;
  'session.discarded': (client: ClientInfo) => void;
  'session.takenover': (client: ClientInfo) => void;
  'session.terminated': (client: ClientInfo, reason: SessionEndReason) => void;
  'message.publish': (msg: HookMessage, ctx: PublishContext) => Awaitable<PublishReply>;
  'message.delivered': (client: ClientInfo, msg: HookMessage) => void;
  /** `properties`: the subscriber's PUBACK's (QoS 1) or PUBCOMP's (QoS 2), 5.0. */
  'message.acked': (client: ClientInfo, msg: HookMessage, properties?: PacketProperties) => void;
  'message.dropped': (msg: HookMessage, reason: MessageDropReason) => void;
  'delivery.dropped': (client: ClientInfo, msg: HookMessage, reason: DeliveryDropReason) => void;
}

export type HookPoint = keyof HookSignatures;

/** Points whose callbacks fold an outcome; the rest are notifications. */
export const FOLD_POINTS = ['client.authenticate', 'client.authorize', 'client.subscribe', 'client.unsubscribe', 'message.publish'] as const;
export type FoldPoint = (typeof FOLD_POINTS)[number];
export type NotifyPoint = Exclude<HookPoint, FoldPoint>;

/** Points whose callbacks may return a promise (a decision that waits for I/O). */
export const ASYNC_POINTS: readonly HookPoint[] = ['client.authenticate', 'client.authorize', 'message.publish'];

/** Fold points that fail closed: a callback that throws or times out denies. The others skip it. */
export const FAIL_CLOSED: readonly HookPoint[] = ['client.authenticate', 'client.authorize'];

/** Message points: `$SYS/` messages never reach them, and callbacks may filter by topic. */
export const MESSAGE_POINTS: readonly HookPoint[] = ['message.publish', 'message.delivered', 'message.acked', 'message.dropped', 'delivery.dropped'];

export const HOOK_POINTS: readonly HookPoint[] = [
  'client.connect',
  'client.connack',
  'client.connected',
  'client.disconnected',
  'client.authenticate',
  'client.authorize',
  'client.check_authn_complete',
  'client.check_authz_complete',
  'client.subscribe',
  'client.unsubscribe',
  'session.created',
  'session.subscribed',
  'session.unsubscribed',
  'session.resumed',
  'session.discarded',
  'session.takenover',
  'session.terminated',
  'message.publish',
  'message.delivered',
  'message.acked',
  'message.dropped',
  'delivery.dropped',
];

export function isHookPoint(name: string): name is HookPoint {
  return (HOOK_POINTS as readonly string[]).includes(name);
}
