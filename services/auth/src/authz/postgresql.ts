import type { AuthorizeRequest, ClientInfo } from '@tributary/hooks';
import { type AclRule, decide, rulesFromClaim } from '../acl';
import { PgBacked, type PgConnection, type PgQuery, parseConnection } from '../pg-client';
import { attrValues, CLIENT_ATTRS_PLACEHOLDER } from '../template';
import type { AuthzOutcome, AuthzSource, ProviderContext, ProviderSpec } from '../types';

/** A `postgresql` authorization source (EMQX's fields). */
export interface PgAuthzConfig {
  conn: PgConnection;
  query: PgQuery;
}

/** The values a query may use: ${username}, ${clientid}, ${peerhost}, ${client_attrs.NAME}. */
export const AUTHZ_PLACEHOLDERS = ['username', 'clientid', 'peerhost', CLIENT_ATTRS_PLACEHOLDER] as const;

function lower(v: unknown): unknown {
  return typeof v === 'string' ? v.trim().toLowerCase() : v;
}

/** A row's qos: a number, "1", "0,1", a list, or NULL (every QoS). */
function qosOf(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return undefined;
  if (typeof v === 'string') return v.split(',').map((q) => Number(q.trim()));
  return v;
}

/** A row's retain: a boolean, 1/0, "true"/"false", "all" or NULL (both). */
function retainOf(v: unknown): unknown {
  if (v === null || v === undefined || v === 'all') return undefined;
  if (v === 1 || v === '1' || v === 'true') return true;
  if (v === 0 || v === '0' || v === 'false') return false;
  return v;
}

/**
 * Rows of `permission, action, topic (or topics, a text[]), qos, retain` as ACL rules, in row
 * order. Throws a TypeError naming the row when one is not a rule.
 */
export function rulesFromRows(rows: readonly Record<string, unknown>[]): AclRule[] {
  return rulesFromClaim(
    rows.map((r) => {
      const rule: Record<string, unknown> = { permission: lower(r.permission), action: lower(r.action ?? 'all') };
      if (r.topics !== undefined && r.topics !== null) rule.topics = r.topics;
      else rule.topic = r.topic;
      const qos = qosOf(r.qos);
      if (qos !== undefined) rule.qos = qos;
      const retain = retainOf(r.retain);
      if (retain !== undefined) rule.retain = retain;
      return rule;
    }),
  );
}

/**
 * Authorizes from the rows the configured query returns for the client, EMQX's PostgreSQL source:
 * the first row that applies decides, no rows (or none that applies) is nomatch, a failing or
 * slow server or a row that is not a rule rejects (the chain logs it and asks the next source).
 */
export class PostgresSource extends PgBacked implements AuthzSource {
  readonly type = 'postgresql';

  constructor(
    private readonly config: PgAuthzConfig,
    ctx: ProviderContext,
  ) {
    super(config.conn, ctx, 'postgresql');
  }

  async authorize(client: ClientInfo, req: AuthorizeRequest): Promise<AuthzOutcome> {
    const rows = await this.client.query(this.config.query, { ...attrValues(client.clientAttrs), username: client.username, clientid: client.clientId, peerhost: client.peerhost });
    if (rows.length === 0) return 'nomatch';
    return decide(rulesFromRows(rows), client, req);
  }
}

/** `postgresql` source: server, database, username, password, pool_size, query, query_timeout, ssl. */
export const postgresSourceSpec: ProviderSpec<PgAuthzConfig, AuthzSource> = {
  parse: (raw) => parseConnection(raw, [], AUTHZ_PLACEHOLDERS),
  create: (config, ctx) => new PostgresSource(config, ctx),
};
