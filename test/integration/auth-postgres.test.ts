// The PostgreSQL authenticator and authorization source (docs/security.md, "PostgreSQL") against
// a real PostgreSQL server of this file's own (test/helpers/postgres.ts) and a real broker:
// passwords checked from rows, the chain's ignore/deny/allow, a server that is down, slow or
// answers without a password_hash, SQL injection through the username, and ACL rows on publish
// and subscribe.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import type { IClientOptions } from 'mqtt';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connackCode, end } from '../helpers/clients';
import { PostgresServer, sql, startPostgres } from '../helpers/postgres';
import { RawClient } from '../helpers/raw';
import { clientTracker, waitForMessage, waitUntil } from '../helpers/util';

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const BIG = Buffer.alloc(65_535, 'p');

let pg: PostgresServer;
let b: BrokerProcess;
const { client, clients } = clientTracker(() => b.url);
const raws: RawClient[] = [];

/** A password_based:postgresql item on the test server. */
function authn(query: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mechanism: 'password_based', backend: 'postgresql', server: pg.server, database: pg.database, username: pg.user, password: pg.password, query, ...extra };
}

function source(query: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'postgresql', server: pg.server, database: pg.database, username: pg.user, password: pg.password, query, ...extra };
}

const USERS = 'SELECT password_hash, salt, is_superuser FROM mqtt_user WHERE username = ${username} LIMIT 1';
const BCRYPT_USERS = 'SELECT password_hash, salt, is_superuser FROM mqtt_user_bcrypt WHERE username = ${username} LIMIT 1';
const ACL = 'SELECT permission, action, topic, qos, retain FROM mqtt_acl WHERE username = ${username} ORDER BY id';

function brokerEnv(authenticators: unknown[], sources: unknown[]): Record<string, string> {
  return {
    TRIBUTARY_AUTHENTICATION: JSON.stringify(authenticators),
    TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify(sources),
    TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny',
  };
}

/** The CONNACK code a client gets (0 = accepted); the connection is closed either way. */

async function rawClient(port: number, clientId: string, username: string, password: string, pv: 4 | 5 = 5): Promise<RawClient> {
  const c = await RawClient.connected(port, clientId, pv, { username, password: Buffer.from(password) });
  raws.push(c);
  const connack = c.packets[0] as mp.IConnackPacket;
  assert.equal(connack.reasonCode ?? connack.returnCode, 0, `${username} connects`);
  return c;
}

let pubId = 0;
async function pubackCode(c: RawClient, topic: string, qos: 1 | 2 = 1): Promise<number> {
  const messageId = ++pubId;
  c.send({ cmd: 'publish', topic, payload: Buffer.from('x'), qos, retain: false, dup: false, messageId });
  const ack = (await c.next(qos === 1 ? 'puback' : 'pubrec', (p) => p.messageId === messageId)) as mp.IPubackPacket;
  return ack.reasonCode ?? 0;
}

before(async () => {
  const started = Date.now();
  pg = await startPostgres();
  process.stderr.write(`# PostgreSQL started in ${Date.now() - started} ms\n`);
  await sql(
    pg,
    `CREATE TABLE mqtt_user (username text PRIMARY KEY, password_hash text, salt text, is_superuser boolean);
     CREATE TABLE mqtt_user_bcrypt (username text PRIMARY KEY, password_hash text, salt text, is_superuser int);
     CREATE TABLE mqtt_user_bad (username text PRIMARY KEY, salt text);
     CREATE TABLE mqtt_acl (id serial PRIMARY KEY, username text, permission text, action text, topic text, qos int, retain int);`,
  );
  const users: [string, string, string, boolean][] = [
    ['alice', sha256('na' + 'alice-pw'), 'na', false],
    ['admin', sha256('s' + 'admin-pw'), 's', true],
    ['big', sha256(BIG), '', false],
  ];
  for (const u of users) await sql(pg, 'INSERT INTO mqtt_user VALUES ($1, $2, $3, $4)', u);
  await sql(pg, 'INSERT INTO mqtt_user_bcrypt VALUES ($1, $2, NULL, 0)', ['carol', bcrypt.hashSync('carol-pw', 5)]);
  await sql(pg, "INSERT INTO mqtt_user_bad VALUES ('mal', 'x')");
  const acl: [string, string, string, string, number | null][] = [
    ['alice', 'deny', 'publish', 'forbidden/#', null],
    ['alice', 'deny', 'subscribe', 'private/#', null],
    ['alice', 'allow', 'publish', 'qos0only/t', 0],
    ['alice', 'allow', 'all', 'room/${username}/#', null],
    ['carol', 'allow', 'subscribe', 'room/alice/#', null],
  ];
  for (const r of acl) await sql(pg, 'INSERT INTO mqtt_acl (username, permission, action, topic, qos) VALUES ($1, $2, $3, $4, $5)', r);
  b = await startBroker({ env: brokerEnv([authn(USERS), authn(BCRYPT_USERS, { password_hash_algorithm: { name: 'bcrypt' } })], [source(ACL)]) });
});

after(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await end(...clients);
  await b?.stop();
  await pg?.stop();
});

describe('password_based:postgresql', () => {
  test('a row with the right password allows the client, 5.0 and 3.1.1; the second authenticator gets who the first ignored', async () => {
    assert.equal(await connackCode(b.url, { clientId: 'a5', username: 'alice', password: 'alice-pw', protocolVersion: 5 }), 0);
    assert.equal(await connackCode(b.url, { clientId: 'a4', username: 'alice', password: 'alice-pw', protocolVersion: 4 }), 0);
    // carol is only in the bcrypt table: the first authenticator finds no row and ignores her.
    assert.equal(await connackCode(b.url, { clientId: 'c5', username: 'carol', password: 'carol-pw', protocolVersion: 5 }), 0);
  });

  test('a wrong password is denied: CONNACK 0x86 (5.0), 4 (3.1.1); no password is denied too', async () => {
    assert.equal(await connackCode(b.url, { clientId: 'a5', username: 'alice', password: 'alice-pW', protocolVersion: 5 }), 0x86);
    assert.equal(await connackCode(b.url, { clientId: 'a4', username: 'alice', password: 'wrong', protocolVersion: 4 }), 4);
    assert.equal(await connackCode(b.url, { clientId: 'c5', username: 'carol', password: 'alice-pw', protocolVersion: 5 }), 0x86);
    assert.equal(await connackCode(b.url, { clientId: 'n5', username: 'alice', protocolVersion: 5 }), 0x86);
  });

  test('a user no authenticator knows is refused: 0x87 (5.0), 5 (3.1.1)', async () => {
    assert.equal(await connackCode(b.url, { clientId: 'u5', username: 'nobody', password: 'alice-pw', protocolVersion: 5 }), 0x87);
    assert.equal(await connackCode(b.url, { clientId: 'u4', username: 'nobody', password: 'alice-pw', protocolVersion: 4 }), 5);
  });

  test('SQL in the username is a value, never SQL: refused, and the tables are still there', async () => {
    // Spliced into the query, the first would select alice's row and her password would let it in.
    for (const username of ["x' OR '1'='1", "'; DROP TABLE mqtt_user; --", 'alice\'--', '${clientid}']) {
      assert.equal(await connackCode(b.url, { clientId: 'inj', username, password: 'alice-pw', protocolVersion: 5 }), 0x87, username);
    }
    assert.deepEqual(await sql(pg, 'SELECT count(*)::int AS n FROM mqtt_user'), [{ n: 3 }]);
    assert.deepEqual(await sql(pg, 'SELECT count(*)::int AS n FROM mqtt_user_bcrypt'), [{ n: 1 }]);
  });

  test('a 64 KB password is checked like any other', async () => {
    assert.equal(await connackCode(b.url, { clientId: 'big', username: 'big', password: BIG, protocolVersion: 5 }), 0);
    const wrong = Buffer.from(BIG);
    wrong[wrong.length - 1] = 0x71;
    assert.equal(await connackCode(b.url, { clientId: 'big', username: 'big', password: wrong, protocolVersion: 5 }), 0x86);
  });
});

describe('postgresql authorization source', () => {
  test('a deny row: PUBACK 0x87 on publish (5.0), SUBACK 0x87 (5.0) and 0x80 (3.1.1) on subscribe', async () => {
    const c = await rawClient(b.mqttPort, 'acl-a', 'alice', 'alice-pw');
    assert.equal(await pubackCode(c, 'forbidden/x'), 0x87);
    c.send({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'private/x', qos: 1 }, { topic: 'room/alice/#', qos: 1 }] });
    assert.deepEqual(((await c.next('suback')) as mp.ISubackPacket).granted, [0x87, 1]);
    const c4 = await rawClient(b.mqttPort, 'acl-a4', 'alice', 'alice-pw', 4);
    c4.send({ cmd: 'subscribe', messageId: 8, subscriptions: [{ topic: 'private/x', qos: 1 }, { topic: 'room/alice/#', qos: 1 }] });
    assert.deepEqual(((await c4.next('suback')) as mp.ISubackPacket).granted, [0x80, 1]);
  });

  test('allow rows work end to end; placeholders in topics expand; no matching row falls to no_match (deny)', async () => {
    const carol = await client({ clientId: 'acl-c', username: 'carol', password: 'carol-pw', protocolVersion: 5 });
    const granted = await carol.client.subscribeAsync('room/alice/#', { qos: 1 });
    assert.equal(granted[0]?.qos, 1);
    const alice = await rawClient(b.mqttPort, 'acl-a', 'alice', 'alice-pw');
    assert.equal(await pubackCode(alice, 'room/alice/hello'), 0);
    assert.equal((await waitForMessage(carol.inbox, (m) => m.topic === 'room/alice/hello', 'alice to carol')).payload.toString(), 'x');
    // room/${username}/# is alice's own room only; carol may subscribe but not publish there.
    assert.equal(await pubackCode(alice, 'room/carol/hello'), 0x87);
    const carolRaw = await rawClient(b.mqttPort, 'acl-c2', 'carol', 'carol-pw');
    assert.equal(await pubackCode(carolRaw, 'room/alice/x'), 0x87);
    assert.equal(await pubackCode(alice, 'elsewhere/x'), 0x87);
  });

  test('a row with a qos applies to that QoS only; a superuser skips authorization', async () => {
    const alice = await rawClient(b.mqttPort, 'acl-q', 'alice', 'alice-pw');
    assert.equal(await pubackCode(alice, 'qos0only/t', 1), 0x87);
    const admin = await rawClient(b.mqttPort, 'acl-su', 'admin', 'admin-pw');
    assert.equal(await pubackCode(admin, 'forbidden/x'), 0);
  });
});

/** A TCP server that accepts and never answers: a database that hangs. */
async function blackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const srv: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

async function closedPort(): Promise<number> {
  const h = await blackhole();
  await h.close();
  return h.port;
}

test('a server that is down, hangs or answers without password_hash is skipped and logged; start-up and the broker go on', async () => {
  const hang = await blackhole();
  const down = `127.0.0.1:${await closedPort()}`;
  const chain = [
    authn(USERS, { server: down }),
    authn(USERS, { server: `127.0.0.1:${hang.port}`, query_timeout: '300ms' }),
    authn('SELECT salt FROM mqtt_user_bad WHERE username = ${username}'),
    authn(USERS),
  ];
  const b2 = await startBroker({ env: brokerEnv(chain, [source(ACL, { server: down }), source(ACL)]) });
  try {
    assert.ok(b2.logs.some((l) => l.msg === 'postgresql not reachable at start; clients are checked when it is' && l.server === down && !JSON.stringify(l).includes(pg.password)));
    // Well within the 5 s hook timeout: the refused connection and the 300 ms timeout are skipped.
    const t0 = Date.now();
    assert.equal(await connackCode(b2.url, { clientId: 'd1', username: 'alice', password: 'alice-pw', protocolVersion: 5 }), 0);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    // mal is only in the table whose query has no password_hash: refused, with the reason logged.
    assert.equal(await connackCode(b2.url, { clientId: 'd2', username: 'mal', password: 'x', protocolVersion: 5 }), 0x87);
    const failures = (): string[] => b2.logs.filter((l) => l.msg === 'authenticator failed; trying the next').map((l) => String(l.err));
    // The broker's log lines arrive through its stdout, possibly after the CONNACK.
    await waitUntil(() => failures().some((e) => /password_hash/.test(e)), `the password_hash failure in the log (${failures().join('; ')})`);
    assert.ok(failures().some((e) => /ECONNREFUSED/.test(e)), failures().join('\n'));
    assert.ok(failures().some((e) => /300 ms|timeout/i.test(e)), failures().join('\n'));
    // Authorization skips the source that is down; the next one decides.
    const alice = await RawClient.connected(b2.mqttPort, 'd3', 5, { username: 'alice', password: Buffer.from('alice-pw') });
    raws.push(alice);
    assert.equal(await pubackCode(alice, 'room/alice/x'), 0);
    assert.equal(await pubackCode(alice, 'forbidden/x'), 0x87);
    await waitUntil(() => b2.logs.some((l) => l.msg === 'authorization source failed; trying the next' && /ECONNREFUSED/.test(String(l.err))), 'the authorization source failure in the log');
  } finally {
    for (const r of raws.splice(0)) r.destroy();
    await b2.stop();
    await hang.close();
  }
});
