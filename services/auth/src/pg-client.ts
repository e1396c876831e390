import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Pool, type QueryResultRow } from 'pg';
import { ConfigError, ConfigProblem, type Logger } from '@tributary/common';
import { placeholderAllowed } from './template';
import type { ProviderContext } from './types';

/**
 * What the PostgreSQL authenticator and authorization source share: EMQX's connection fields,
 * the query with `${...}` placeholders turned into bind parameters, and a pool whose queries
 * are bounded by `query_timeout`.
 */

/** EMQX's `ssl` of a database connection; only what the pg driver uses. */
export interface PgSsl {
  enable: boolean;
  /** verify_peer checks the server's certificate against `cacertfile` (or the system CAs). */
  verify: 'verify_peer' | 'verify_none';
  cacertfile?: string;
  certfile?: string;
  keyfile?: string;
  server_name_indication?: string;
}

/** The connection fields of a `postgresql` authenticator or source. */
export interface PgConnection {
  host: string;
  port: number;
  database: string;
  username: string;
  /** Never logged. */
  password: string | undefined;
  poolSize: number;
  /** Milliseconds one check (waiting for a connection, connecting, the query) may take. */
  queryTimeout: number;
  ssl: PgSsl;
}

/** A query with its placeholders replaced by $1, $2 ...: `params[i]` names the value of $i+1. */
export interface PgQuery {
  text: string;
  params: readonly string[];
}

/** Fields every PostgreSQL item may have besides its own (EMQX's; auto_reconnect is accepted and always on). */
export const CONNECTION_FIELDS = ['server', 'database', 'username', 'password', 'pool_size', 'query_timeout', 'ssl', 'auto_reconnect', 'query'] as const;

const PLACEHOLDER = /\$\{([^}]*)\}/g;

/**
 * Replaces each `${name}` of `sql` by a bind parameter ($1 for the first name, the same number
 * when a name repeats), so a value is never part of the SQL text. A name not in `allowed`, a
 * placeholder inside quotes (it would be a literal "$1") or a `$1` of the query's own is a problem.
 */
export function compileQuery(sql: string, allowed: readonly string[]): PgQuery | ConfigProblem {
  if (/\$\d/.test(sql)) return new ConfigProblem('query: use ${username}-style placeholders, not $1 parameters');
  const params: string[] = [];
  let problem: ConfigProblem | undefined;
  const text = sql.replace(PLACEHOLDER, (whole, name: string, offset: number) => {
    if (!placeholderAllowed(name, allowed)) problem ??= new ConfigProblem(`query: unknown placeholder ${whole} (known: ${allowed.map((a) => `\${${a}}`).join(', ')})`);
    if (sql[offset - 1] === "'" || sql[offset + whole.length] === "'") problem ??= new ConfigProblem(`query: write ${whole} without quotes; it is sent as a bind parameter`);
    let i = params.indexOf(name);
    if (i < 0) i = params.push(name) - 1;
    return `$${i + 1}`;
  });
  if (problem) return problem;
  if (!text.trim()) return new ConfigProblem('query: must not be empty');
  return { text, params };
}

function durationMs(raw: unknown, def: number): number | ConfigProblem {
  if (raw === undefined) return def;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw > 0) return raw;
  const m = typeof raw === 'string' ? /^\s*(\d+)\s*(ms|s|m)?\s*$/.exec(raw) : null;
  if (!m) return new ConfigProblem('query_timeout: expected a duration such as "5s" or "500ms"');
  const n = Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1);
  return n > 0 ? n : new ConfigProblem('query_timeout: must be above 0');
}

function parseSsl(raw: unknown): PgSsl | ConfigProblem {
  if (raw === undefined) return { enable: false, verify: 'verify_none' };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return new ConfigProblem('ssl: expected an object {enable, ...}');
  const r = raw as Record<string, unknown>;
  const known = ['enable', 'verify', 'cacertfile', 'certfile', 'keyfile', 'server_name_indication'];
  const extra = Object.keys(r).find((k) => !known.includes(k));
  if (extra) return new ConfigProblem(`ssl: unknown field "${extra}" (known: ${known.join(', ')})`);
  const enable = r.enable ?? false;
  if (typeof enable !== 'boolean') return new ConfigProblem('ssl.enable: expected true or false');
  const verify = r.verify ?? 'verify_none';
  if (verify !== 'verify_peer' && verify !== 'verify_none') return new ConfigProblem('ssl.verify: expected verify_peer or verify_none');
  const ssl: PgSsl = { enable, verify };
  for (const k of ['cacertfile', 'certfile', 'keyfile', 'server_name_indication'] as const) {
    const v = r[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !v) return new ConfigProblem(`ssl.${k}: expected a non-empty string`);
    ssl[k] = v;
  }
  return ssl;
}

/**
 * Validates the connection fields and the query of a PostgreSQL item. `own` are the item's other
 * fields; anything else is a problem naming the field.
 */
export function parseConnection(raw: Record<string, unknown>, own: readonly string[], placeholders: readonly string[]): { conn: PgConnection; query: PgQuery } | ConfigProblem {
  const extra = Object.keys(raw).find((k) => !(CONNECTION_FIELDS as readonly string[]).includes(k) && !own.includes(k));
  if (extra) return new ConfigProblem(`unknown field "${extra}" (known: ${[...CONNECTION_FIELDS, ...own].join(', ')})`);
  const server = raw.server;
  if (typeof server !== 'string') return new ConfigProblem('server: required, "host" or "host:port"');
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+))(?::(\d+))?$/.exec(server);
  const port = m?.[3] === undefined ? 5432 : Number(m[3]);
  if (!m || port < 1 || port > 65535) return new ConfigProblem(`server: expected "host" or "host:port", got "${server}"`);
  for (const k of ['database', 'username'] as const) if (typeof raw[k] !== 'string' || !raw[k]) return new ConfigProblem(`${k}: required, a non-empty string`);
  if (raw.password !== undefined && typeof raw.password !== 'string') return new ConfigProblem('password: expected a string');
  const poolSize = raw.pool_size ?? 8;
  if (!Number.isInteger(poolSize) || (poolSize as number) < 1 || (poolSize as number) > 1024) return new ConfigProblem('pool_size: expected a whole number from 1 to 1024');
  const queryTimeout = durationMs(raw.query_timeout, 5000);
  if (queryTimeout instanceof ConfigProblem) return queryTimeout;
  if (raw.auto_reconnect !== undefined && typeof raw.auto_reconnect !== 'boolean') return new ConfigProblem('auto_reconnect: expected true or false');
  const ssl = parseSsl(raw.ssl);
  if (ssl instanceof ConfigProblem) return ssl;
  if (typeof raw.query !== 'string') return new ConfigProblem('query: required, an SQL query with ${...} placeholders');
  const query = compileQuery(raw.query, placeholders);
  if (query instanceof ConfigProblem) return query;
  const conn: PgConnection = {
    host: (m[1] ?? m[2])!,
    port,
    database: raw.database as string,
    username: raw.username as string,
    password: raw.password as string | undefined,
    poolSize: poolSize as number,
    queryTimeout,
    ssl,
  };
  return { conn, query };
}

/** A TimeoutError-like error for a check that ran out of query_timeout. */
class QueryTimeout extends Error {
  constructor(ms: number) {
    super(`no answer from PostgreSQL within ${ms} ms`);
    this.name = 'QueryTimeout';
  }
}

/**
 * A pg.Pool for one authenticator or source. start() never fails on an unreachable server (it
 * logs a warning and the pool connects on the next query); `query` rejects when the server is
 * down, slow beyond query_timeout or the query fails.
 */
export class PgClient {
  private pool: Pool | undefined;

  constructor(
    private readonly conn: PgConnection,
    private readonly logger: Logger,
    private readonly dataDir: string,
    /** For log lines: "password_based:postgresql" or "postgresql". */
    private readonly what: string,
  ) {}

  private where(): Record<string, unknown> {
    return { provider: this.what, server: `${this.conn.host}:${this.conn.port}`, database: this.conn.database, username: this.conn.username };
  }

  private tlsOptions(): false | Record<string, unknown> {
    const s = this.conn.ssl;
    if (!s.enable) return false;
    const file = (p: string): string => {
      const path = isAbsolute(p) ? p : join(this.dataDir, p);
      try {
        return readFileSync(path, 'utf8');
      } catch (err) {
        throw new ConfigError(`${this.what}: ssl: cannot read ${path}: ${(err as Error).message}`, { cause: err });
      }
    };
    return {
      rejectUnauthorized: s.verify === 'verify_peer',
      ...(s.cacertfile ? { ca: file(s.cacertfile) } : {}),
      ...(s.certfile ? { cert: file(s.certfile) } : {}),
      ...(s.keyfile ? { key: file(s.keyfile) } : {}),
      ...(s.server_name_indication ? { servername: s.server_name_indication } : {}),
    };
  }

  /**
   * Creates the pool and checks the server in the background (a warning when it cannot be
   * reached). Throws a ConfigError only when an ssl file cannot be read.
   */
  start(): void {
    const c = this.conn;
    const pool = new Pool({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.username,
      password: c.password,
      max: c.poolSize,
      ssl: this.tlsOptions(),
      connectionTimeoutMillis: c.queryTimeout,
      query_timeout: c.queryTimeout,
      idleTimeoutMillis: 30_000,
      application_name: 'tributary',
    });
    // An idle connection the server closed (restart, failover) must not crash the process.
    pool.on('error', (err) => this.logger.warn({ ...this.where(), err: err.message }, 'postgresql connection lost'));
    this.pool = pool;
    this.run('SELECT 1', []).then(
      () => this.logger.info(this.where(), 'postgresql reachable'),
      (err: Error) => this.logger.warn({ ...this.where(), err: err.message }, 'postgresql not reachable at start; clients are checked when it is'),
    );
  }

  /** Runs `q` with the placeholders' values (undefined becomes NULL); rejects after query_timeout. */
  query(q: PgQuery, values: Record<string, string | undefined>): Promise<QueryResultRow[]> {
    return this.run(
      q.text,
      q.params.map((p) => values[p] ?? null),
    );
  }

  private run(text: string, params: unknown[]): Promise<QueryResultRow[]> {
    const pool = this.pool;
    if (!pool) return Promise.reject(new Error(`${this.what}: not started`));
    const ms = this.conn.queryTimeout;
    let timer: NodeJS.Timeout | undefined;
    // The pool's own timeouts bound connecting and the query; this bounds their sum and the wait for a free connection.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueryTimeout(ms)), ms);
    });
    const work = pool.query(text, params).then((r) => r.rows);
    work.catch(() => undefined);
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }
}

/** An authenticator or source backed by one PgClient: start() opens the pool, stop() ends it. */
export abstract class PgBacked {
  protected readonly client: PgClient;

  constructor(conn: PgConnection, ctx: ProviderContext, what: string) {
    this.client = new PgClient(conn, ctx.logger, ctx.dataDir, what);
  }

  async start(): Promise<void> {
    this.client.start();
  }

  async stop(): Promise<void> {
    await this.client.stop();
  }
}
