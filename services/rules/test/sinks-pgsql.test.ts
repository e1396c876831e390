import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ConfigProblem } from '@tributary/common';
import { type Connector, createConnector, DEFAULT_PGSQL_SQL, parseAction, parseConnector, type PgsqlStatement } from '../src/sinks';
import type { ValueMap } from '@tributary/rulesql';
import { postgresBinDir, type PostgresServer, sql, startPostgres } from './helpers/postgres';
import { closedPort, connectorSpec, sinkErrorOf, sinkOn } from './helpers/sinks';

const skip = postgresBinDir() ? false : 'no PostgreSQL under /usr/lib/postgresql (apt-get install -y postgresql)';

let pg: PostgresServer;
const connectors: Connector[] = [];

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  await sql(pg, 'CREATE TABLE t_mqtt_msg (msgid text PRIMARY KEY, topic text NOT NULL, qos int, payload text, arrived timestamptz)');
  // Counts statements (not rows) that insert into t_mqtt_msg: a multi-row insert is one.
  await sql(pg, 'CREATE TABLE stmt_count (n int)');
  await sql(pg, 'INSERT INTO stmt_count VALUES (0)');
  await sql(pg, "CREATE FUNCTION count_stmt() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN UPDATE stmt_count SET n = n + 1; RETURN NULL; END'");
  await sql(pg, 'CREATE TRIGGER count_stmt AFTER INSERT ON t_mqtt_msg FOR EACH STATEMENT EXECUTE FUNCTION count_stmt()');
  await sql(pg, 'CREATE TABLE state (clientid text PRIMARY KEY, v text, n int)');
});

after(async () => {
  await Promise.all(connectors.map((c) => c.stop()));
  await pg?.stop();
});

function conn(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { server: pg.server, database: pg.database, username: pg.user, password: pg.password, pool_size: 2, ...extra };
}

async function pgSink(parameters: unknown, extra: Record<string, unknown> = {}): Promise<Awaited<ReturnType<typeof sinkOn>>> {
  const made = await sinkOn('pgsql', conn(extra), parameters, `pg${connectors.length}`);
  connectors.push(made.connector);
  return made;
}

function msg(id: string, extra: ValueMap = {}): ValueMap {
  return { id, topic: `t/${id}`, qos: 1, payload: `hello ${id}`, timestamp: 1_700_000_000_000, ...extra };
}

async function statements(): Promise<number> {
  return (await sql(pg, 'SELECT n FROM stmt_count'))[0]!.n as number;
}

describe('PostgreSQL sink', { skip }, () => {
  it("writes with EMQX's default insert, values bound as parameters", async () => {
    const { sink, connector } = await pgSink({});
    assert.equal(connector.status(), 'connected');
    const evil = "x'); DROP TABLE t_mqtt_msg; --";
    await sink.send([msg('m1', { payload: evil })]);
    const rows = await sql(pg, "SELECT msgid, topic, qos, payload, extract(epoch from arrived)::bigint AS s FROM t_mqtt_msg WHERE msgid = 'm1'");
    assert.deepEqual(rows, [{ msgid: 'm1', topic: 't/m1', qos: 1, payload: evil, s: '1700000000' }]);
    const r = sink.render(msg('m9')) as PgsqlStatement;
    assert.equal(r.sql, DEFAULT_PGSQL_SQL.replace('${id}', '$1').replace('${topic}', '$2').replace('${qos}', '$3').replace('${payload}', '$4').replace('${timestamp}', '$5'));
    assert.deepEqual(r.params, ['m9', 't/m9', 1, 'hello m9', 1_700_000_000_000]);
  });

  it('writes a batch as one multi-row statement, prepared or not', async () => {
    for (const disable of [false, true]) {
      const { sink } = await pgSink({}, { disable_prepared_statements: disable });
      const before = await statements();
      const ids = ['a', 'b', 'c', 'd'].map((x) => `batch-${disable}-${x}`);
      await sink.send(ids.map((id) => msg(id)));
      await sink.send(ids.map((id) => msg(`${id}-again`)));
      assert.equal((await statements()) - before, 2, 'two batches, two statements');
      const rows = await sql(pg, 'SELECT msgid FROM t_mqtt_msg WHERE msgid LIKE $1 ORDER BY msgid', [`batch-${disable}-%`]);
      assert.equal(rows.length, 8);
    }
  });

  it('writes all of a batch or none of it; an SQL error is permanent', async () => {
    const { sink } = await pgSink({});
    await sink.send([msg('dup-1')]);
    const err = await sinkErrorOf(sink.send([msg('dup-2'), msg('dup-1'), msg('dup-3')]));
    assert.equal(err.code, 'SINK_UNAVAILABLE');
    assert.equal(err.retriable, false);
    assert.match(err.message, /^pgsql:pg\d+_action: SQL error 23505/);
    const rows = await sql(pg, "SELECT msgid FROM t_mqtt_msg WHERE msgid LIKE 'dup-%' ORDER BY msgid");
    assert.deepEqual(rows, [{ msgid: 'dup-1' }]);
    const nulls = await sinkErrorOf(sink.send([msg('nt', { topic: undefined })]));
    assert.equal(nulls.retriable, false, 'a missing value is NULL (here refused by NOT NULL)');
  });

  it('runs other statements as one transaction per batch, missing values as NULL', async () => {
    const { sink } = await pgSink({ sql: 'insert into state(clientid, v, n) values (${clientid}, ${payload.v}, ${n}) on conflict (clientid) do update set v = excluded.v, n = ${n}' });
    await sink.send([
      { clientid: 'c1', payload: '{"v":"one"}', n: 1 },
      { clientid: 'c2', payload: '{}' },
      { clientid: 'c1', payload: '{"v":"two"}', n: 2 },
    ]);
    assert.deepEqual(await sql(pg, 'SELECT clientid, v, n FROM state ORDER BY clientid'), [
      { clientid: 'c1', v: 'two', n: 2 },
      { clientid: 'c2', v: null, n: null },
    ]);
    const err = await sinkErrorOf(sink.send([{ clientid: 'c3', n: 3 }, { clientid: 'c4', n: 'not a number' }]));
    assert.equal(err.retriable, false);
    assert.equal((await sql(pg, "SELECT count(*)::int AS n FROM state WHERE clientid IN ('c3', 'c4')"))[0]!.n, 0, 'rolled back');
  });

  it('rejects as retriable when the server is unreachable; a missing table is permanent', async () => {
    const port = await closedPort();
    const down = createConnector(connectorSpec('pgsql', 'down', { ...conn(), server: `127.0.0.1:${port}` }));
    connectors.push(down);
    await down.start();
    assert.equal(down.status(), 'disconnected');
    const { sink } = await sinkOn('pgsql', { ...conn(), server: `127.0.0.1:${port}` }, {}, 'down2');
    const err = await sinkErrorOf(sink.send([msg('x')]));
    assert.equal(err.retriable, true);
    assert.match(err.message, /PostgreSQL unavailable/);

    const { sink: noTable } = await pgSink({ sql: 'insert into nowhere(a) values (${id})' });
    assert.equal((await sinkErrorOf(noTable.send([msg('y')]))).retriable, false);
  });

  it('validates connectors and actions, naming the field', () => {
    for (const [p, want] of [
      [parseConnector('pgsql', 'p', { database: 'd' }), /^connectors\.pgsql\.p\.username: required/],
      [parseConnector('pgsql', 'p', { database: 'd', username: 'u', server: 'h:99999' }), /^connectors\.pgsql\.p\.server: /],
      [parseAction('pgsql', 'p', { connector: 'p', parameters: { sql: 'select "${x}"' } }), /^actions\.pgsql\.p\.parameters\.sql: SQL template: /],
      [parseAction('pgsql', 'p', { connector: 'p', parameters: { sql: 'select $1' } }), /^actions\.pgsql\.p\.parameters\.sql: /],
    ] as const) {
      assert.ok(p instanceof ConfigProblem && want.test(p.message), `${want}: ${JSON.stringify(p)}`);
    }
    const spec = parseConnector('pgsql', 'p', { database: 'd', username: 'u' });
    assert.ok(!(spec instanceof ConfigProblem) && spec.type === 'pgsql');
    assert.equal(spec.server, '127.0.0.1:5432');
    assert.equal(spec.pool_size, 8);
  });
});
