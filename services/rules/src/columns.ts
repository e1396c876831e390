import type { RecordHeaders } from '@tributary/backbone';
import type { AuthnComplete, AuthorizeRequest, ClientInfo, ConnectInfo, DisconnectProperties, HookMessage, HookSubscriptionOptions, PacketProperties } from '@tributary/hooks';
import { Message, PUBLISHER_HEADERS, reasonName } from '@tributary/mqtt';
import { textOrBytes, Value, ValueMap } from '@tributary/rulesql';

/**
 * The columns rules see, by EMQX's names (docs: OPERATIONS.md §4.3): those of a message topic
 * (messageColumns) and those of each `$events/...` event. Event columns leave out event,
 * timestamp and node, which the events record carries typed (events.ts); a column whose value
 * is undefined in EMQX (a client without a username) is left out, which a rule reads the same.
 */

/** EMQX's names of MQTT 5.0 properties in rule columns (pub_props, conn_props, disconn_props, ...), from mqtt-packet's. */
const PROPERTY_NAMES: Readonly<Record<string, string>> = {
  payloadFormatIndicator: 'Payload-Format-Indicator',
  messageExpiryInterval: 'Message-Expiry-Interval',
  contentType: 'Content-Type',
  responseTopic: 'Response-Topic',
  correlationData: 'Correlation-Data',
  subscriptionIdentifier: 'Subscription-Identifier',
  sessionExpiryInterval: 'Session-Expiry-Interval',
  receiveMaximum: 'Receive-Maximum',
  maximumPacketSize: 'Maximum-Packet-Size',
  topicAliasMaximum: 'Topic-Alias-Maximum',
  requestResponseInformation: 'Request-Response-Information',
  requestProblemInformation: 'Request-Problem-Information',
  authenticationMethod: 'Authentication-Method',
  authenticationData: 'Authentication-Data',
  reasonString: 'Reason-String',
  serverReference: 'Server-Reference',
};

/**
 * MQTT 5.0 properties as EMQX's printable map: `'Content-Type'`, `'Message-Expiry-Interval'`,
 * ... as sent (booleans as 0/1, binary data as text when UTF-8), and user properties twice:
 * `'User-Property'` (a map; a repeated key keeps its last value) and `'User-Property-Pairs'`
 * (`[{key, value}]` in order). No properties: an empty map.
 */
export function printableProps(props: object | undefined): ValueMap {
  const out: ValueMap = {};
  if (props === undefined) return out;
  for (const [k, v] of Object.entries(props) as [string, unknown][]) {
    if (v === undefined) continue;
    if (k === 'userProperties') {
      const map: ValueMap = {};
      const pairs: Value[] = [];
      for (const [key, value] of Object.entries(v as Record<string, string | string[]>)) {
        const values = Array.isArray(value) ? value : [value];
        for (const one of values) pairs.push({ key, value: one });
        if (values.length) map[key] = values[values.length - 1];
      }
      out['User-Property'] = map;
      out['User-Property-Pairs'] = pairs;
      continue;
    }
    const name = PROPERTY_NAMES[k];
    if (name === undefined) continue;
    out[name] = typeof v === 'boolean' ? (v ? 1 : 0) : Buffer.isBuffer(v) ? textOrBytes(v) : (v as Value);
  }
  return out;
}

/** A client's attributes as the client_attrs column: a map, empty when it has none. */
function attrsOf(c: ClientInfo): ValueMap {
  return (c.clientAttrs as ValueMap | undefined) ?? {};
}

/** The publisher's attributes from the `mqtt-client-attrs` record header (a JSON object), empty without it or when it is not one. */
function headerAttrs(text: string | undefined): ValueMap {
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ValueMap) : {};
  } catch {
    return {};
  }
}

/** Ids for messages that were never logged (no offset): unique in this process. */
let unlogged = 0;

/**
 * A message's id, 32 upper-case hex digits like EMQX's GUID, derived from where the message is
 * in the messages topic: 12 digits of its timestamp (ms), 4 of the partition, 16 of the offset.
 * So the message.publish rule and the delivered/acked/dropped events of one message agree, on
 * every process. A message without an offset gets `F` + a counter of this process instead.
 */
export function messageId(timestamp: number, partition: number, offset: number): string {
  const time = hex(timestamp, 12);
  const part = hex(partition, 4);
  return offset >= 0 ? time + part + hex(offset, 16) : `${time}${part}F${hex(++unlogged, 15)}`;
}

function hex(n: number, digits: number): string {
  const s = Math.max(0, Math.floor(n)).toString(16).toUpperCase();
  return s.length >= digits ? s.slice(s.length - digits) : s.padStart(digits, '0');
}

/** Sets `key` unless the value is undefined (EMQX's undefined: the column is left out). */
function put(cols: ValueMap, key: string, v: Value): void {
  if (v !== undefined) cols[key] = v;
}

/**
 * The columns of a message-topic rule (EMQX's message publish): id, clientid, username,
 * payload, peerhost, peername, topic, qos, flags, pub_props, publish_received_at, timestamp,
 * node, client_attrs, event. username, peerhost, peername and client_attrs come from the record
 * headers the gateway writes while publisher headers are on (setPublisherHeaders in @tributary/mqtt);
 * without them those columns are missing. `node` is the publisher's (header), else `node`.
 */
export function messageColumns(msg: Message, headers: RecordHeaders, node = ''): ValueMap {
  const cols: ValueMap = {
    event: 'message.publish',
    id: messageId(msg.timestamp, 0, msg.offset),
    clientid: msg.from,
    payload: textOrBytes(msg.payload),
    topic: msg.topic,
    qos: msg.qos,
    flags: { retain: msg.retain, dup: false },
    pub_props: printableProps(msg.properties),
    publish_received_at: msg.timestamp,
    timestamp: msg.timestamp,
    node: headers[PUBLISHER_HEADERS.node] ?? node,
    client_attrs: headerAttrs(headers[PUBLISHER_HEADERS.clientAttrs]),
  };
  put(cols, 'username', headers[PUBLISHER_HEADERS.username]);
  put(cols, 'peerhost', headers[PUBLISHER_HEADERS.peerhost]);
  put(cols, 'peername', headers[PUBLISHER_HEADERS.peername]);
  return cols;
}

/** What an event builder gives the events record: its clientid and username columns typed, the rest. */
export interface EventColumnsOf {
  clientid: string | undefined;
  username: string | undefined;
  columns: ValueMap;
}

/** The columns of a connection shared by client events. */
function connection(c: ClientInfo, cols: ValueMap): ValueMap {
  const ci = c as ConnectInfo;
  put(cols, 'peername', c.peername);
  put(cols, 'sockname', c.sockname);
  put(cols, 'proto_name', ci.protoName);
  cols.proto_ver = c.protocolVersion;
  cols.client_attrs = attrsOf(c);
  return cols;
}

function of(c: ClientInfo, columns: ValueMap): EventColumnsOf {
  return { clientid: c.clientId, username: c.username, columns };
}

/** $events/client_connected. mountpoint is EMQX's undefined: Tributary has no mountpoints. */
export function clientConnected(c: ConnectInfo): EventColumnsOf {
  const cols = connection(c, {
    keepalive: c.keepalive,
    clean_start: c.cleanStart,
    expiry_interval: c.expiryInterval,
    is_bridge: c.isBridge === true,
    conn_props: printableProps(c.properties),
  });
  put(cols, 'receive_maximum', c.receiveMaximum);
  put(cols, 'connected_at', c.connectedAt);
  return of(c, cols);
}

/** $events/client_disconnected; `at` is disconnected_at. */
export function clientDisconnected(c: ClientInfo, reason: string, props: DisconnectProperties | undefined, at: number): EventColumnsOf {
  const cols = connection(c, { reason, disconn_props: printableProps(props), disconnected_at: at });
  put(cols, 'connected_at', (c as ConnectInfo).connectedAt);
  return of(c, cols);
}

/** $events/client_connack: reason_code as EMQX's word (success, not_authorized, ...). */
export function clientConnack(c: ConnectInfo, reasonCode: number): EventColumnsOf {
  return of(
    c,
    connection(c, {
      reason_code: reasonName(reasonCode),
      clean_start: c.cleanStart,
      keepalive: c.keepalive,
      expiry_interval: c.expiryInterval,
      conn_props: printableProps(c.properties),
    }),
  );
}

/** $events/client_check_authn_complete. */
export function authnComplete(c: ClientInfo, r: AuthnComplete): EventColumnsOf {
  const cols: ValueMap = { reason_code: reasonName(r.reasonCode), is_superuser: r.isSuperuser, is_anonymous: r.isAnonymous, client_attrs: attrsOf(c) };
  put(cols, 'peername', c.peername);
  return of(c, cols);
}

/** $events/client_check_authz_complete. */
export function authzComplete(c: ClientInfo, req: AuthorizeRequest, result: 'allow' | 'deny', source: string): EventColumnsOf {
  const cols: ValueMap = { peerhost: c.peerhost, topic: req.topic, action: req.action, authz_source: source, result, client_attrs: attrsOf(c) };
  put(cols, 'peername', c.peername);
  return of(c, cols);
}

/**
 * $events/session_subscribed (sub_props: the SUBSCRIBE's properties, User-Property and
 * Subscription-Identifier) and session_unsubscribed (unsub_props: the UNSUBSCRIBE's); qos is
 * the subscription's. A subscription made without a packet (auto-subscribe, the HTTP API) has
 * its Subscription-Identifier only.
 */
export function subscription(c: ClientInfo, filter: string, options: HookSubscriptionOptions | undefined, packet: PacketProperties | undefined, props: 'sub_props' | 'unsub_props'): EventColumnsOf {
  const cols: ValueMap = { peerhost: c.peerhost, topic: filter, client_attrs: attrsOf(c) };
  put(cols, 'peername', c.peername);
  put(cols, 'qos', options?.qos);
  const printable = printableProps(packet);
  if (props === 'sub_props' && options?.subscriptionId !== undefined && printable['Subscription-Identifier'] === undefined) printable['Subscription-Identifier'] = options.subscriptionId;
  cols[props] = printable;
  return of(c, cols);
}

/** A message's columns in message events. */
function messagePart(m: HookMessage, cols: ValueMap): ValueMap {
  cols.id = messageId(m.timestamp, 0, m.offset ?? -1);
  cols.payload = textOrBytes(m.payload);
  cols.topic = m.topic;
  cols.qos = m.qos;
  cols.flags = { retain: m.retain, dup: false };
  cols.pub_props = printableProps(m.properties);
  cols.publish_received_at = m.timestamp;
  return cols;
}

/**
 * $events/message_delivered, message_acked (with puback_props) and delivery_dropped (with
 * reason): clientid, username, peerhost, peername and client_attrs are the subscriber's (EMQX's
 * ClientInfo of the event); from_clientid and from_username the publisher's (from_username only
 * where the hook knows it).
 */
export function delivery(c: ClientInfo, m: HookMessage, extra: ValueMap): EventColumnsOf {
  const cols = messagePart(m, { ...extra, from_clientid: m.clientId, peerhost: c.peerhost, client_attrs: attrsOf(c) });
  put(cols, 'from_username', m.username);
  put(cols, 'peername', c.peername);
  return of(c, cols);
}

/** $events/message_dropped: clientid, username, peerhost, peername and client_attrs are the publisher's, where the process knows them. */
export function messageDropped(m: HookMessage, reason: string): EventColumnsOf {
  const cols = messagePart(m, { reason, client_attrs: m.clientAttrs ? { ...m.clientAttrs } : {} });
  put(cols, 'peerhost', m.peerhost);
  put(cols, 'peername', m.peername);
  return { clientid: m.clientId, username: m.username, columns: cols };
}
