import { ConfigProblem } from '@tributary/common';
import type { Credentials } from '@tributary/hooks';
import { PgBacked, type PgConnection, type PgQuery, parseConnection } from '../pg-client';
import type { Authenticator, AuthnOutcome, ProviderContext, ProviderSpec } from '../types';
import { attrValues, CLIENT_ATTRS_PLACEHOLDER } from '../template';
import { parseHashAlgorithm, type PasswordHashAlgorithm, verifyPassword } from '../hash';

/** A `password_based:postgresql` item (EMQX's fields). */
export interface PgAuthnConfig {
  conn: PgConnection;
  query: PgQuery;
  algorithm: PasswordHashAlgorithm;
}

/** The values a query may use: ${username}, ${clientid}, ${peerhost}. */
export const AUTHN_PLACEHOLDERS = ['username', 'clientid', 'peerhost', CLIENT_ATTRS_PLACEHOLDER] as const;

/** EMQX's truthy is_superuser values (a boolean column, 1, '1', 'true'). */
export function truthy(v: unknown): boolean {
  return v === true || v === 1 || v === '1' || v === 'true';
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

/**
 * Checks the client's password against the row the configured query returns for it: no row
 * ignores the client (the next authenticator decides), a wrong password denies (0x86), a row
 * without a `password_hash` column, a server that is down or slower than query_timeout rejects
 * (the chain logs it and skips this authenticator). The client's values are bind parameters.
 */
export class PostgresAuthenticator extends PgBacked implements Authenticator {
  readonly id = 'password_based:postgresql';

  constructor(
    private readonly config: PgAuthnConfig,
    ctx: ProviderContext,
  ) {
    super(config.conn, ctx, 'password_based:postgresql');
  }

  async authenticate(cred: Credentials): Promise<AuthnOutcome> {
    // EMQX: a password-based authenticator and a client without a password is bad credentials.
    if (cred.password === undefined) return { result: 'deny' };
    const rows = await this.client.query(this.config.query, { ...attrValues(cred.clientAttrs), username: cred.username, clientid: cred.clientId, peerhost: cred.peerhost });
    const row = rows[0];
    if (!row) return { result: 'ignore' };
    const hash = text(row.password_hash);
    if (hash === undefined) throw new Error('the query returned a row without a password_hash text column');
    const salt = text(row.salt) ?? '';
    if (!(await verifyPassword(this.config.algorithm, cred.password, hash, salt))) return { result: 'deny' };
    return { result: 'allow', isSuperuser: truthy(row.is_superuser) };
  }
}

/** `password_based:postgresql`: server, database, username, password, pool_size, query, password_hash_algorithm, query_timeout, ssl. */
export const postgresAuthenticatorSpec: ProviderSpec<PgAuthnConfig, Authenticator> = {
  parse(raw) {
    const parsed = parseConnection(raw, ['password_hash_algorithm'], AUTHN_PLACEHOLDERS);
    if (parsed instanceof ConfigProblem) return parsed;
    // EMQX's default: sha256 with the salt before the password.
    const algorithm = parseHashAlgorithm(raw.password_hash_algorithm ?? { name: 'sha256', salt_position: 'prefix' });
    if (algorithm instanceof ConfigProblem) return algorithm;
    return { ...parsed, algorithm };
  },
  create: (config, ctx) => new PostgresAuthenticator(config, ctx),
};
