/** A PostgreSQL server for one scenario run: the test suite's (test/helpers/postgres.ts, compiled by npm run build). */
import * as path from 'node:path';
import { Client } from 'pg';

export interface Postgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** One statement with a short-lived client. */
  query(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** A client of its own, connected (the caller ends it). */
  connect(): Promise<Client>;
  stop(): Promise<void>;
}

type Server = Omit<Postgres, 'query' | 'connect'>;

/** Starts the server and runs setup on it; a failed set-up stops it again (a leaked server keeps the bench alive). */
export async function startPostgres(setup: (pg: Postgres) => Promise<void>): Promise<Postgres> {
  const helper = path.resolve(__dirname, '../../test/dist/helpers/postgres.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startPostgres: start, sql } = require(helper) as { startPostgres(): Promise<Server>; sql(pg: Server, text: string, params?: unknown[]): Promise<Record<string, unknown>[]> };
  const server = await start();
  const pg: Postgres = {
    ...server,
    stop: () => server.stop(),
    query: (text, params) => sql(server, text, params),
    async connect() {
      const c = new Client({ host: server.host, port: server.port, user: server.user, password: server.password, database: server.database });
      await c.connect();
      return c;
    },
  };
  try {
    await setup(pg);
  } catch (err) {
    await pg.stop();
    throw err;
  }
  return pg;
}
