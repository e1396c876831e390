import { createHash } from 'node:crypto';
import { Pool, type PoolClient, type QueryConfig } from 'pg';
import { bool, duration, type Infer, int, str } from '@tributary/common';
import { compileSqlTemplate, type SqlTemplate } from '../template';
import type { ValueMap } from '@tributary/rulesql';
import { actionCommon, connectorCommon, parseHostPort, required, server, sqlTemplate, sslFields, withIgnored } from './fields';
import { BaseConnector, type ConnectorStatus, messageOf, rejected, type Sink, unavailable } from './types';

/** `connectors.pgsql.<name>`. connect_timeout is ours (EMQX has none); auto_reconnect is accepted (always on). */
export const pgsqlConnectorFields = withIgnored(
  {
    ...connectorCommon,
    server: server('127.0.0.1:5432', 'The server: "host[:port]" (port 5432 when left out).', 5432),
    database: required(str('', 'The database.', { nonEmpty: true })),
    username: required(str('', 'The user.', { nonEmpty: true })),
    password: str('', 'The password.'),
    pool_size: int(8, 'Connections kept to the server at most.', 1, 1024),
    disable_prepared_statements: bool(false, 'Send each statement unprepared (for poolers such as PgBouncer in transaction mode).'),
    connect_timeout: duration(15_000, 'How long a connect may take (ours).', 1, 600_000),
    ssl: sslFields,
  },
  ['auto_reconnect'],
);

/** EMQX's default statement of a PostgreSQL action. */
export const DEFAULT_PGSQL_SQL = 'insert into t_mqtt_msg(msgid, topic, qos, payload, arrived) values (${id}, ${topic}, ${qos}, ${payload}, TO_TIMESTAMP((${timestamp} :: bigint)/1000))';

/** `actions.pgsql.<name>.parameters`. A placeholder's value is a bind parameter; a missing one is NULL. */
export const pgsqlActionParams = withIgnored(
  {
    sql: sqlTemplate(DEFAULT_PGSQL_SQL, 'The statement, with ${...} placeholders bound as parameters.'),
  },
  ['undefined_vars_as_null', 'prepare_statement'],
);

export type PgsqlConnectorSpec = { readonly type: 'pgsql'; readonly name: string } & Infer<typeof pgsqlConnectorFields>;
export type PgsqlActionParams = Infer<typeof pgsqlActionParams>;
export type PgsqlActionSpec = { readonly type: 'pgsql'; readonly name: string } & Infer<typeof actionCommon> & { readonly parameters: PgsqlActionParams };

/** A statement runs at most this long (the client gives up; the batch is retried). */
const QUERY_TIMEOUT_MS = 30_000;
/** PostgreSQL's limit of bind parameters in one statement. */
const MAX_PARAMS = 65_535;

/**
 * SQLSTATE classes that say the server or the connection is unavailable, not that these rows are
 * wrong: connection exceptions, authorization (a connector problem), an unknown database,
 * rollbacks (serialization, deadlock), resources, operator intervention (shutdown, cancel), system errors.
 */
const RETRIABLE_CLASSES = new Set(['08', '28', '3D', '40', '53', '57', '58', 'XX']);

/** True when err means the server is unavailable (a retriable failure); false for an SQL error about the statement or its data. */
export function pgUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return RETRIABLE_CLASSES.has(code.slice(0, 2));
  return true; // no SQLSTATE: a socket error, a timeout, a closed connection
}

/** A PostgreSQL connector: a pg.Pool of pool_size connections. */
export class PgsqlConnector extends BaseConnector<PgsqlConnectorSpec> {
  readonly type = 'pgsql';
  private pool: Pool | undefined;

  async start(): Promise<void> {
    if (this.pool) return;
    const s = this.spec;
    const { host, port } = parseHostPort(s.server, 5432) as { host: string; port: number };
    const pool = new Pool({
      host,
      port,
      database: s.database,
      user: s.username,
      password: s.password,
      max: s.pool_size,
      ssl: this.tls(host) ?? false,
      connectionTimeoutMillis: s.connect_timeout,
      query_timeout: QUERY_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      application_name: 'tributary',
    });
    // An idle connection the server closed (restart, failover) must not crash the process.
    pool.on('error', (err) => {
      this.state = 'disconnected';
      this.opts.logger?.warn({ connector: `pgsql:${this.name}`, err: err.message }, 'postgresql connection lost');
    });
    this.pool = pool;
    this.state = 'connecting';
    await this.healthCheck();
  }

  async stop(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.state = 'disconnected';
    await pool?.end();
  }

  async healthCheck(): Promise<ConnectorStatus> {
    const pool = this.pool;
    if (!pool) return 'disconnected';
    try {
      await pool.query('SELECT 1');
      if (this.pool === pool) this.state = 'connected';
    } catch {
      if (this.pool === pool) this.state = 'disconnected';
    }
    return this.state;
  }

  /** Runs the statements in order on one connection: alone, or as one transaction when there are several. */
  async run(statements: readonly QueryConfig[]): Promise<void> {
    const pool = this.pool;
    if (!pool) throw new Error('connector stopped');
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      this.state = 'disconnected';
      throw err;
    }
    let broken: Error | undefined;
    try {
      if (statements.length === 1) await client.query(statements[0]!);
      else {
        await client.query('BEGIN');
        try {
          for (const q of statements) await client.query(q);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
      this.state = 'connected';
    } catch (err) {
      if (pgUnavailable(err)) {
        this.state = 'disconnected';
        broken = err as Error;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

/** One rendered statement of a PostgreSQL action. */
export interface PgsqlStatement {
  sql: string;
  params: unknown[];
}

/**
 * A PostgreSQL action. A batch is one round trip when the statement is a plain INSERT ... VALUES
 * (one multi-row insert), else one transaction of a statement per row; either way all of it or
 * none is written.
 */
export class PgsqlSink implements Sink {
  readonly id: string;
  private readonly sql: SqlTemplate;
  private readonly perRow: number;
  private readonly names = new Map<string, string>();

  constructor(
    readonly spec: PgsqlActionSpec,
    private readonly connector: PgsqlConnector,
  ) {
    this.id = `pgsql:${spec.name}`;
    this.sql = compileSqlTemplate(spec.parameters.sql);
    this.perRow = this.sql.params({}).length;
  }

  /** The statement as a query, named (prepared once per connection) unless prepared statements are off. */
  private query(text: string, values: unknown[]): QueryConfig {
    if (this.connector.spec.disable_prepared_statements) return { text, values };
    let name = this.names.get(text);
    if (name === undefined) {
      name = `tributary_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
      if (this.names.size < 1024) this.names.set(text, name);
    }
    return { name, text, values };
  }

  render(data: ValueMap): PgsqlStatement {
    return { sql: this.sql.text, params: this.sql.params(data) };
  }

  /** The statements writing a batch: multi-row inserts of up to MAX_PARAMS parameters, or one per row. */
  private statements(batch: readonly ValueMap[]): QueryConfig[] {
    if (batch.length === 1 || !this.sql.multiRow) return batch.map((d) => this.query(this.sql.text, this.sql.params(d)));
    const rowsPer = this.perRow === 0 ? batch.length : Math.max(1, Math.floor(MAX_PARAMS / this.perRow));
    const out: QueryConfig[] = [];
    for (let i = 0; i < batch.length; i += rowsPer) {
      const rows = batch.slice(i, i + rowsPer);
      const values: unknown[] = [];
      for (const d of rows) values.push(...this.sql.params(d));
      out.push(this.query(rows.length === 1 ? this.sql.text : this.sql.textForRows(rows.length), values));
    }
    return out;
  }

  async send(batch: readonly ValueMap[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      await this.connector.run(this.statements(batch));
    } catch (err) {
      if (pgUnavailable(err)) throw unavailable(this.id, `PostgreSQL unavailable: ${messageOf(err)}`, err);
      const code = (err as { code?: string }).code;
      throw rejected(this.id, `SQL error ${code}: ${messageOf(err)}`, err);
    }
  }
}
