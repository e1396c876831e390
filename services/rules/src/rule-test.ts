import { ValidationError } from '@tributary/common';
import { evaluate, fromMatches, type Value, type ValueMap } from '@tributary/rulesql';
import { parseRuleSql } from './engine';

const client = { clientid: 'c_emqx', username: 'u_emqx', peerhost: '127.0.0.1', peername: '127.0.0.1:52918', sockname: '0.0.0.0:1883', client_attrs: {} };
const message = { id: '0005F8F84FFFAFB9F44200000BE4003B', payload: '{"msg": "hello"}', topic: 't/a', qos: 1, flags: { sys: false, event: false }, pub_props: { 'User-Property': {} }, publish_received_at: 1645002753259 };
const conn = { proto_name: 'MQTT', proto_ver: 5, keepalive: 60, clean_start: true, expiry_interval: 3600, is_bridge: false, conn_props: { 'User-Property': {} }, connected_at: 1645002753259, receive_maximum: 32, mountpoint: 'undefined' };

/** EMQX's example columns of each event type (`context.event_type` of POST /rule_test), used for the fields a test context leaves out. */
export const EXAMPLE_COLUMNS: Readonly<Record<string, { source: string; event: string; columns: ValueMap }>> = {
  message_publish: { source: '', event: 'message.publish', columns: { ...client, ...message } },
  client_connected: { source: '$events/client_connected', event: 'client.connected', columns: { ...client, ...conn } },
  client_disconnected: { source: '$events/client_disconnected', event: 'client.disconnected', columns: { ...client, reason: 'normal', proto_name: 'MQTT', proto_ver: 5, disconn_props: { 'User-Property': {} }, connected_at: 1645002753259, disconnected_at: 1645002753259 } },
  client_connack: { source: '$events/client_connack', event: 'client.connack', columns: { ...client, ...conn, reason_code: 'success' } },
  client_check_authn_complete: { source: '$events/client_check_authn_complete', event: 'client.check_authn_complete', columns: { ...client, reason_code: 'success', is_superuser: true, is_anonymous: false } },
  client_check_authz_complete: { source: '$events/client_check_authz_complete', event: 'client.check_authz_complete', columns: { ...client, topic: 't/a', action: 'publish', authz_source: 'cache', result: 'allow' } },
  session_subscribed: { source: '$events/session_subscribed', event: 'session.subscribed', columns: { ...client, topic: 't/a', qos: 1, sub_props: { 'User-Property': {} } } },
  session_unsubscribed: { source: '$events/session_unsubscribed', event: 'session.unsubscribed', columns: { ...client, topic: 't/a', qos: 1, unsub_props: { 'User-Property': {} } } },
  message_delivered: { source: '$events/message_delivered', event: 'message.delivered', columns: { ...client, ...message, from_clientid: 'c_emqx_1', from_username: 'u_emqx_1' } },
  message_acked: { source: '$events/message_acked', event: 'message.acked', columns: { ...client, ...message, from_clientid: 'c_emqx_1', from_username: 'u_emqx_1', puback_props: { 'User-Property': {} } } },
  message_dropped: { source: '$events/message_dropped', event: 'message.dropped', columns: { ...client, ...message, reason: 'no_subscribers' } },
  delivery_dropped: { source: '$events/delivery_dropped', event: 'delivery.dropped', columns: { ...client, ...message, from_clientid: 'c_emqx_1', from_username: 'u_emqx_1', reason: 'queue_full' } },
};

/**
 * POST /rule_test: runs `sql` on the context (missing fields from the event type's examples).
 * Returns the selected map (SELECT) or array (FOREACH); throws SQL_NOT_MATCH (412) when FROM
 * or WHERE does not match, SQL_PARSE_ERROR / SQL_EVAL_ERROR (400) otherwise.
 */
export function testSql(sql: string, context: Record<string, unknown>, node: string): Value {
  const stmt = parseRuleSql(sql);
  const columns = testColumns(context, node);
  const type = String(context.event_type ?? 'message_publish');
  const source = type === 'message_publish' ? String(columns.topic) : EXAMPLE_COLUMNS[type]!.source;
  if (!fromMatches(stmt, source)) throw new ValidationError('SQL_NOT_MATCH', 'SQL Not Match');
  const rows = evaluate(stmt, columns, { ruleId: 'rule_test' });
  if (!rows || rows.length === 0) throw new ValidationError('SQL_NOT_MATCH', 'SQL Not Match');
  return stmt.kind === 'foreach' ? rows : rows[0]!;
}

/** The event columns a test context stands for. */
export function testColumns(context: Record<string, unknown>, node: string): ValueMap {
  const type = String(context.event_type ?? 'message_publish');
  const example = EXAMPLE_COLUMNS[type];
  if (!example) throw new ValidationError('INVALID_ARGUMENT', `context.event_type: unknown event type "${type}" (${Object.keys(EXAMPLE_COLUMNS).join(', ')})`);
  const given: ValueMap = {};
  for (const [k, v] of Object.entries(context)) if (k !== 'event_type') given[k] = v as Value;
  return { ...example.columns, ...given, event: example.event, timestamp: Date.now(), node };
}
