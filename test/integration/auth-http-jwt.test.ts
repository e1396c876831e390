// The HTTP authenticator (password_based:http), the HTTP authorization source and the JWT
// authenticator (JWKS and HMAC) in a real broker, against an authentication service written here
// with fastify and a JWKS endpoint serving keys made with jose. Every refusal is a clean CONNACK
// (or PUBACK/SUBACK 0x87) and the broker keeps serving good clients afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import Fastify, { FastifyInstance } from 'fastify';
import type * as JoseModule from 'jose' with { 'resolution-mode': 'import' };
import mqtt, { IClientOptions, MqttClient } from 'mqtt';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connackCode, end } from '../helpers/clients';
import { open, Opened, waitUntil } from '../helpers/util';

type Jose = typeof JoseModule;
let jose: Jose;

const clients: MqttClient[] = [];
afterEach(async () => {
  await end(...clients.splice(0));
});

async function client(b: BrokerProcess, opts: IClientOptions): Promise<Opened> {
  const o = await open(b.url, { protocolVersion: 5, ...opts });
  clients.push(o.client);
  return o;
}

/** Connects expecting a refusal; resolves with the CONNACK reason code (3.1.1: return code). */
async function refused(b: BrokerProcess, opts: IClientOptions): Promise<number> {
  const code = await connackCode(b.url, { protocolVersion: 5, connectTimeout: 8000, ...opts });
  assert.notEqual(code, 0, `client ${opts.clientId} was accepted`);
  return code;
}

/** The reason code of a QoS 1 publish (0 when PUBACK says success). */
async function pubackCode(o: Opened, topic: string): Promise<number> {
  try {
    await o.client.publishAsync(topic, 'x', { qos: 1 });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** The SUBACK reason code of one filter (mqtt.js rejects on a failure code, with the packet). */
async function subackCode(o: Opened, topic: string): Promise<number> {
  try {
    return (await o.client.subscribeAsync(topic, { qos: 1 }))[0]!.qos;
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted[0]!;
  }
}

/** Waits for the broker to close a connected client; resolves with the DISCONNECT reason code (undefined without one). */
function disconnected(o: Opened, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    let code: number | undefined;
    const t = setTimeout(() => reject(new Error(`still connected after ${timeoutMs} ms`)), timeoutMs);
    o.client.once('disconnect', (p) => (code = p.reasonCode));
    o.client.once('close', () => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The largest password a CONNECT carries (a two-byte length). */
const MAX_PASSWORD = 65535;
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const nowS = (): number => Math.floor(Date.now() / 1000);

// --- the authentication service -----------------------------------------------------------

interface Keys {
  kid: string;
  privateKey: JoseModule.CryptoKey;
  jwk: JoseModule.JWK;
}

const authnSeen: Record<string, unknown>[] = [];
const authzSeen: { clientid: string; query: Record<string, string> }[] = [];
let jwksFetches = 0;
let jwks: Keys[] = [];
let srv: FastifyInstance;
let srvUrl: string;

async function rsaKeys(kid: string): Promise<Keys> {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256');
  return { kid, privateKey, jwk: { ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function signRs(k: Keys, claims: JoseModule.JWTPayload, kid = k.kid): Promise<string> {
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(k.privateKey);
}

/** The HTTP authenticator's answer by username; anyone else is ignored (the JWT authenticator's turn). */
function authnReply(username: string): [number, unknown] {
  switch (username) {
    case 'allow':
      return [200, { result: 'allow' }];
    case 'allow204':
      return [204, undefined];
    case 'super':
      return [200, { result: 'allow', is_superuser: true }];
    case 'deny':
      return [200, { result: 'deny' }];
    case 'nojson':
      return [200, 'this is not json'];
    case 'maybe':
      return [200, { result: 'maybe' }];
    case 'err500':
      return [500, { result: 'allow' }];
    case 'badacl':
      return [200, { result: 'allow', acl: [{ permission: 'perhaps', topic: 't' }] }];
    case 'acl':
      return [200, { result: 'allow', acl: [{ permission: 'allow', action: 'publish', topic: 'http/ok' }, { permission: 'deny', action: 'all', topic: '#' }] }];
    case 'expire':
      return [200, { result: 'allow', expire_at: nowS() + 2 }];
    case 'attrs':
      return [200, { result: 'allow', client_attrs: { tenant: 't1', n: 7 }, acl: [{ permission: 'allow', action: 'publish', topic: 'tenant/${client_attrs.tenant}/#' }, { permission: 'deny', action: 'all', topic: '#' }] }];
    case 'badattrs':
      return [200, { result: 'allow', client_attrs: 'tenant=t1' }];
    default:
      return [200, { result: 'ignore' }];
  }
}

/** The first HTTP source's answer by the topic's second level. */
function authzReply(topic: string): [number, unknown] {
  const kind = topic.split('/')[1];
  switch (kind) {
    case 'allow':
      return [200, { result: 'allow' }];
    case 'deny':
      return [200, { result: 'deny' }];
    case 'a204':
      return [204, undefined];
    case 'maybe':
      return [200, { result: 'maybe' }];
    case 'nojson':
      return [200, '<html>'];
    case 'e500':
      return [500, { result: 'allow' }];
    default:
      return [200, { result: 'ignore' }];
  }
}

async function startService(): Promise<void> {
  srv = Fastify({ forceCloseConnections: true });
  srv.post('/authn', async (req, reply) => {
    const body = req.body as Record<string, unknown>;
    authnSeen.push({ ...body, header: req.headers['x-user'], evil: req.headers['x-evil'] });
    if (body.username === 'slow') return reply.hijack(); // never answers
    const [status, answer] = authnReply(String(body.username));
    return reply.code(status).send(answer);
  });
  srv.get('/authz/:clientid', async (req, reply) => {
    const query = req.query as Record<string, string>;
    authzSeen.push({ clientid: (req.params as { clientid: string }).clientid, query });
    if (query.topic?.startsWith('authz/slow/')) return reply.hijack();
    const [status, answer] = authzReply(query.topic ?? '');
    return reply.code(status).send(answer);
  });
  // The second source: allows topics ending in /fallthrough, answers nothing usable for the rest.
  srv.get('/authz2', async (req, reply) => {
    const topic = (req.query as Record<string, string>).topic ?? '';
    return topic.endsWith('/fallthrough') ? reply.send({ result: 'allow' }) : reply.code(503).send();
  });
  srv.get('/jwks', async () => {
    jwksFetches++;
    return { keys: jwks.map((k) => k.jwk) };
  });
  await srv.listen({ host: '127.0.0.1', port: 0 });
  srvUrl = `http://127.0.0.1:${(srv.server.address() as { port: number }).port}`;
}

before(async () => {
  jose = await import('jose');
  jwks = [await rsaKeys('k1')];
  await startService();
});

after(async () => {
  await srv?.close();
});

// --- HTTP authentication and authorization, JWT over JWKS ------------------------------------

describe('HTTP authenticator, HTTP authorization sources, JWT with JWKS', () => {
  let b: BrokerProcess;
  let other: Keys;

  before(async () => {
    other = await rsaKeys('k1'); // the same kid, another key
    const down = await closedPort();
    const authn = { method: 'post', url: '', headers: { 'x-user': 'u=${username}' }, body: { username: '${username}', password: '${password}', clientid: '${clientid}', peerhost: '${peerhost}', prefix: '${client_attrs.prefix}' }, request_timeout: '500ms' };
    b = await startBroker({
      env: {
        TRIBUTARY_AUTHENTICATION: JSON.stringify([
          { mechanism: 'password_based', backend: 'http', ...authn, url: `http://127.0.0.1:${down}/authn` },
          { mechanism: 'password_based', backend: 'http', ...authn, url: `${srvUrl}/authn` },
          { mechanism: 'jwt', use_jwks: true, endpoint: `${srvUrl}/jwks`, acl_claim_name: 'acl' },
        ]),
        TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([
          { type: 'http', method: 'get', url: `${srvUrl}/authz/\${clientid}`, body: { topic: '${topic}', action: '${action}', qos: '${qos}', retain: '${retain}', username: '${username}', prefix: '${client_attrs.prefix}' }, request_timeout: '500ms' },
          { type: 'http', method: 'get', url: `${srvUrl}/authz2`, body: { topic: '${topic}' } },
        ]),
        TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny',
        TRIBUTARY_AUTHORIZATION__CACHE__ENABLE: 'false',
        // ${client_attrs.prefix} in the requests: what the client id has before its first '-'.
        TRIBUTARY_MQTT__CLIENT_ATTRS_INIT: JSON.stringify([{ expression: "nth(1, tokens(clientid, '-'))", set_as_attr: 'prefix' }]),
      },
    });
  });

  after(async () => {
    await b?.stop();
  });

  test('allow (200 and 204), deny with 0x86 (3.1.1: 4), is_superuser; a closed port first in the chain is passed over', async () => {
    assert.equal((await client(b, { clientId: 'h-allow', username: 'allow', password: 'pw' })).connack.reasonCode, 0);
    assert.equal((await client(b, { clientId: 'h-204', username: 'allow204', password: 'pw' })).connack.reasonCode, 0);
    assert.equal(await refused(b, { clientId: 'h-deny', username: 'deny', password: 'pw' }), 0x86);
    assert.equal(await refused(b, { clientId: 'h-deny4', username: 'deny', password: 'pw', protocolVersion: 4 }), 4);
    const su = await client(b, { clientId: 'h-super', username: 'super', password: 'pw' });
    assert.equal(await pubackCode(su, 'authz/deny/t'), 0, 'a superuser skips authorization');
    // Log lines arrive through the broker's stdout, possibly after the CONNACK.
    await waitUntil(() => b.logs.some((l) => l.msg === 'HTTP authentication server unreachable; trying the next authenticator'), 'the unreachable server in the log');
  });

  test('ignore goes to the next authenticator; every authenticator ignoring refuses with 0x87', async () => {
    const token = await signRs(jwks[0]!, { sub: 'x' });
    assert.equal((await client(b, { clientId: 'h-ign', username: 'ignore', password: token })).connack.reasonCode, 0);
    assert.equal(await refused(b, { clientId: 'h-ign2', username: 'ignore', password: 'not-a-token' }), 0x87);
  });

  test('malformed replies (200 non-JSON, result "maybe", 500, a bad acl) are ignored: 0x87', async () => {
    for (const username of ['nojson', 'maybe', 'err500', 'badacl']) {
      assert.equal(await refused(b, { clientId: `h-${username}`, username, password: 'pw' }), 0x87, username);
    }
  });

  test('a server that never answers: refused after request_timeout (500 ms)', async () => {
    const t0 = Date.now();
    assert.equal(await refused(b, { clientId: 'h-slow', username: 'slow', password: 'pw' }), 0x87);
    const took = Date.now() - t0;
    assert.ok(took >= 450 && took < 4000, `took ${took} ms`);
  });

  test('placeholders are sent exactly: JSON-encoded in the body, never expanded twice; a 64 KB password', async () => {
    const password = 'p'.repeat(MAX_PASSWORD);
    const username = 'odd "user" ${clientid} &x=1';
    assert.equal(await refused(b, { clientId: 'h-odd', username, password }), 0x87);
    const seen = authnSeen.filter((s) => s.clientid === 'h-odd').pop()!;
    assert.equal(seen.username, username);
    assert.equal(seen.password, password);
    assert.equal(seen.peerhost, '127.0.0.1');
    assert.equal(seen.header, `u=${username}`, 'header values are templates');
    // A value cannot add a header: what a header cannot carry is percent-encoded.
    assert.equal(await refused(b, { clientId: 'h-crlf', username: 'x\r\nx-evil: 1', password: 'pw' }), 0x87);
    const crlf = authnSeen.filter((s) => s.clientid === 'h-crlf').pop()!;
    assert.deepEqual([crlf.header, crlf.evil], ['u=x%0D%0Ax-evil: 1', undefined]);
    assert.equal(await refused(b, { clientId: 'h-big', username: 'deny', password }), 0x86);
    assert.equal((await client(b, { clientId: 'h-after-big', username: 'allow', password: 'pw' })).connack.reasonCode, 0);
    assert.ok(!JSON.stringify(b.logs).includes(password.slice(0, 64)), 'a password in the log');
  });

  test("the reply's acl is the client's own rules; expire_at disconnects the client with 0x87", async () => {
    const c = await client(b, { clientId: 'h-acl', username: 'acl', password: 'pw' });
    assert.equal(await pubackCode(c, 'http/ok'), 0);
    assert.equal(await pubackCode(c, 'authz/allow/t'), 0x87, 'its own deny rule comes before the sources');
    const e = await client(b, { clientId: 'h-exp', username: 'expire', password: 'pw' });
    const exp = (nowS() + 2) * 1000;
    assert.equal(await disconnected(e, 6000), 0x87);
    assert.ok(Date.now() <= exp + 2500, `closed ${Date.now() - exp} ms after expire_at`);
  });

  test("the reply's client_attrs become the client's attributes: ${client_attrs.tenant} in its acl; client_attrs that is not an object is ignored: 0x87; ${client_attrs.NAME} in request templates", async () => {
    const c = await client(b, { clientId: 'h-attrs', username: 'attrs', password: 'pw' });
    assert.equal(await pubackCode(c, 'tenant/t1/x'), 0);
    assert.equal(await pubackCode(c, 'tenant/t2/x'), 0x87);
    assert.equal(await refused(b, { clientId: 'h-badattrs', username: 'badattrs', password: 'pw' }), 0x87);
    // mqtt.client_attrs_init's attributes fill ${client_attrs.NAME} in the authenticator's and the source's requests.
    assert.equal(authnSeen.filter((s) => s.clientid === 'h-attrs').pop()!.prefix, 'h');
    const z = await client(b, { clientId: 'zz-1', username: 'allow', password: 'pw' });
    assert.equal(await pubackCode(z, 'authz/allow/t'), 0);
    assert.equal(authzSeen.filter((s) => s.clientid === 'zz-1').pop()!.query.prefix, 'zz');
  });

  test('HTTP sources: allow, deny, 204, ignore and malformed replies go to the next source, no_match denies', async () => {
    const c = await client(b, { clientId: 'z c/1', username: 'allow', password: 'pw' });
    assert.equal(await pubackCode(c, 'authz/allow/t'), 0);
    assert.equal(await pubackCode(c, 'authz/a204/t'), 0);
    assert.equal(await pubackCode(c, 'authz/deny/fallthrough'), 0x87, 'deny ends the sources');
    assert.equal(await pubackCode(c, 'authz/ignore/fallthrough'), 0);
    assert.equal(await pubackCode(c, 'authz/ignore/t'), 0x87, 'nomatch everywhere: no_match = deny');
    for (const kind of ['maybe', 'nojson', 'e500']) {
      assert.equal(await pubackCode(c, `authz/${kind}/fallthrough`), 0, `${kind}: the next source decides`);
      assert.equal(await pubackCode(c, `authz/${kind}/t`), 0x87, `${kind}: not an allow`);
    }
    assert.equal(await subackCode(c, 'authz/deny/t'), 0x87);
    assert.equal(await subackCode(c, 'authz/allow/t'), 1);
    const asked = authzSeen.find((s) => s.query.topic === 'authz/allow/t' && s.query.action === 'subscribe')!;
    assert.equal(asked.clientid, 'z c/1', 'the client id is URL-encoded in the path');
    assert.deepEqual({ ...asked.query }, { topic: 'authz/allow/t', action: 'subscribe', qos: '1', retain: 'false', username: 'allow', prefix: 'z c/1' });
  });

  test('a source that never answers is nomatch after request_timeout', async () => {
    const c = await client(b, { clientId: 'z-slow', username: 'allow', password: 'pw' });
    assert.equal(await pubackCode(c, 'authz/slow/fallthrough'), 0);
    assert.equal(await pubackCode(c, 'authz/slow/t'), 0x87);
  });

  test('JWT acl claim: allowed topics publish and subscribe, denied ones get PUBACK and SUBACK 0x87', async () => {
    const acl = [
      { permission: 'allow', action: 'all', topic: 'jwt/ok/#' },
      { permission: 'deny', action: 'all', topics: ['jwt/no/#', 'authz/#'] },
    ];
    const c = await client(b, { clientId: 'j-acl', username: 'jwt', password: await signRs(jwks[0]!, { acl, exp: nowS() + 600 }) });
    assert.equal(await pubackCode(c, 'jwt/ok/a'), 0);
    assert.equal(await pubackCode(c, 'jwt/no/a'), 0x87);
    assert.equal(await pubackCode(c, 'authz/allow/t'), 0x87, 'the claim comes before the sources');
    assert.equal(await subackCode(c, 'jwt/ok/+'), 1);
    assert.equal(await subackCode(c, 'jwt/no/a'), 0x87);
  });

  test('JWT client_attrs claim: the attributes fill ${client_attrs.NAME} in the acl claim; a claim that is not an object refuses with 0x86', async () => {
    const acl = [{ permission: 'allow', action: 'all', topic: 'site/${client_attrs.site}/#' }, { permission: 'deny', action: 'all', topic: '#' }];
    const c = await client(b, { clientId: 'j-attrs', username: 'jwt', password: await signRs(jwks[0]!, { acl, client_attrs: { site: 'berlin' }, exp: nowS() + 600 }) });
    assert.equal(await pubackCode(c, 'site/berlin/a'), 0);
    assert.equal(await pubackCode(c, 'site/paris/a'), 0x87);
    assert.equal(await refused(b, { clientId: 'j-badattrs', username: 'jwt', password: await signRs(jwks[0]!, { client_attrs: ['site'], exp: nowS() + 600 }) }), 0x86);
  });

  test('hostile tokens are refused with 0x86: alg none, HS256 with the public key, another key, expired, not yet valid, garbage, 64 KB', async () => {
    const k = jwks[0]!;
    const pub = new TextEncoder().encode(JSON.stringify(k.jwk));
    const tokens: [string, string][] = [
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x', exp: nowS() + 600 })}.`],
      ['alg none, kid', `${b64({ alg: 'none', kid: 'k1' })}.${b64({ sub: 'x' })}.${Buffer.from('sig').toString('base64url')}`],
      ['HS256 keyed with the public key', await new jose.SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(pub)],
      ['another key, same kid', await signRs(other, { sub: 'x' })],
      ['an unknown kid', await signRs(other, { sub: 'x' }, 'nope')],
      ['expired', await signRs(k, { sub: 'x', exp: nowS() - 60 })],
      ['not yet valid', await signRs(k, { sub: 'x', nbf: nowS() + 600 })],
      ['garbage', 'a.b.c'],
      ['64 KB garbage', `${'e'.repeat(32766)}.${'f'.repeat(32766)}.g`],
      ['a tampered payload', (await signRs(k, { sub: 'x' })).replace(/\.[^.]+\./, `.${b64({ sub: 'x', is_superuser: true })}.`)],
    ];
    for (const [what, password] of tokens) assert.equal(await refused(b, { clientId: 'j-bad', username: 'jwt', password }), 0x86, what);
    assert.equal((await client(b, { clientId: 'j-good', username: 'jwt', password: await signRs(k, { sub: 'x' }) })).connack.reasonCode, 0);
  });

  test('a flood of unknown key ids fetches the JWKS at most once per 30 s', async () => {
    const before = jwksFetches;
    for (let i = 0; i < 5; i++) assert.equal(await refused(b, { clientId: `j-kid-${i}`, username: 'jwt', password: await signRs(other, {}, `kid-${i}`) }), 0x86);
    assert.ok(jwksFetches - before <= 1, `${jwksFetches - before} fetches`);
  });

  test('a token expiring in 2 s: the client is disconnected with 0x87 soon after exp', async () => {
    const exp = nowS() + 2;
    const c = await client(b, { clientId: 'j-exp', username: 'jwt', password: await signRs(jwks[0]!, { exp }) });
    assert.equal(await disconnected(c, 6000), 0x87);
    const late = Date.now() - exp * 1000;
    assert.ok(late >= 0 && late <= 2000, `closed ${late} ms after exp`);
    assert.equal((await client(b, { clientId: 'j-final', username: 'allow', password: 'pw' })).connack.reasonCode, 0, 'the broker keeps serving');
  });
});

// --- JWT with an HMAC secret -----------------------------------------------------------------

describe('JWT with an HMAC secret (base64), verify_claims', () => {
  let b: BrokerProcess;
  const secret = randomBytes(32);

  before(async () => {
    b = await startBroker({
      env: {
        TRIBUTARY_AUTHENTICATION: JSON.stringify([
          { mechanism: 'jwt', algorithm: 'hmac-based', secret: secret.toString('base64'), secret_base64_encoded: true, from: 'password', verify_claims: { sub: '${clientid}', aud: 'tributary' }, disconnect_after_expire: true },
        ]),
      },
    });
  });

  after(async () => {
    await b?.stop();
  });

  const hs = (claims: JoseModule.JWTPayload, key: Uint8Array = secret, alg = 'HS256'): Promise<string> => new jose.SignJWT(claims).setProtectedHeader({ alg }).sign(key);

  test('a valid token connects (HS256 and HS512) and its acl claim (the legacy {pub: [...]} form) applies', async () => {
    assert.equal((await client(b, { clientId: 'm1', username: 'u', password: await hs({ sub: 'm1', aud: 'tributary' }) })).connack.reasonCode, 0);
    const c = await client(b, { clientId: 'm2', username: 'u', password: await hs({ sub: 'm2', aud: 'tributary', acl: { pub: ['m/ok'] } }, secret, 'HS512') });
    assert.equal(await pubackCode(c, 'm/ok'), 0);
  });

  test('refused with 0x86: wrong secret, claim mismatch, missing claim, expired, alg none, RS256; a password that is no JWT: 0x87', async () => {
    const rs = await signRs(jwks[0]!, { sub: 'm3', aud: 'tributary' });
    const cases: [string, string, number][] = [
      ['wrong secret', await hs({ sub: 'm3', aud: 'tributary' }, randomBytes(32)), 0x86],
      ['the base64 text as the secret', await hs({ sub: 'm3', aud: 'tributary' }, new TextEncoder().encode(secret.toString('base64'))), 0x86],
      ['sub of another client', await hs({ sub: 'someone-else', aud: 'tributary' }), 0x86],
      ['no aud', await hs({ sub: 'm3' }), 0x86],
      ['expired', await hs({ sub: 'm3', aud: 'tributary', exp: nowS() - 5 }), 0x86],
      ['alg none', `${b64({ alg: 'none' })}.${b64({ sub: 'm3', aud: 'tributary' })}.`, 0x86],
      ['RS256', rs, 0x86],
      ['not a JWT', 'hunter2', 0x87],
      ['64 KB, not a JWT', 'x'.repeat(MAX_PASSWORD), 0x87],
      ['a malformed acl claim', await hs({ sub: 'm3', aud: 'tributary', acl: 'everything' }), 0x86],
    ];
    for (const [what, password, code] of cases) assert.equal(await refused(b, { clientId: 'm3', username: 'u', password }), code, what);
    assert.equal(await refused(b, { clientId: 'm3', username: 'u' }), 0x87, 'no password');
    assert.equal((await client(b, { clientId: 'm3', username: 'u', password: await hs({ sub: 'm3', aud: 'tributary' }) })).connack.reasonCode, 0, 'the broker keeps serving');
    const logs = JSON.stringify(b.logs);
    assert.ok(!logs.includes(secret.toString('base64')) && !logs.includes(cases[0]![1]), 'a secret or token in the log');
  });
});
