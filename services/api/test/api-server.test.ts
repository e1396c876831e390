// The HTTP API server through fastify's inject(): login and bearer tokens, API keys and their
// routes, schema validation, the OpenAPI document, stats and nodes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@tributary/common';
import { ApiKeys, ApiRoute, ApiServer, TokenSigner } from '../src';

const node = { nodeName: 'n1@test', version: '9.9.9', running: true, stats: () => ({ 'connections.count': 2 }), metrics: () => ({ 'messages.received': 5 }) };
const echo: ApiRoute = {
  method: 'POST',
  path: '/echo/:id',
  summary: 'test route',
  schema: { body: { type: 'object', required: ['topic'], properties: { topic: { type: 'string' }, qos: { type: 'integer', minimum: 0, maximum: 2 } } }, query: { type: 'object', properties: { n: { type: 'integer' } } } },
  handler: (req) => ({ body: { id: req.params.id, body: req.body, n: req.query.n } }),
};
const keys = new ApiKeys();
keys.add('ops', 'secret');
const basic = `Basic ${Buffer.from('ops:secret').toString('base64')}`;
const server = new ApiServer({ host: '127.0.0.1', port: 0 }, node, silentLogger, { apiKeys: keys, routes: [echo], dashboard: { username: 'admin', password: 'pw', tokenTtlMs: 60_000 } });
type R = { statusCode: number; json(): Record<string, unknown> & { code?: string } };
const inject = (method: string, url: string, opts: { auth?: string; body?: unknown } = {}): Promise<R> =>
  server.fastify!.inject({ method: method as 'GET', url: `/api/v5${url}`, headers: opts.auth ? { authorization: opts.auth } : {}, ...(opts.body !== undefined ? { payload: opts.body as object } : {}) }) as unknown as Promise<R>;
let bearer: string;

before(async () => {
  await server.start();
  const res = await inject('POST', '/login', { body: { username: 'admin', password: 'pw' } });
  assert.equal(res.statusCode, 200);
  const b = res.json();
  assert.deepEqual({ ...b, token: typeof b.token }, { token: 'string', version: '9.9.9', license: { edition: 'opensource' }, role: 'administrator' });
  bearer = `Bearer ${b.token as string}`;
});
after(() => server.stop());

describe('authentication', () => {
  it('a wrong password is 401 BAD_USERNAME_OR_PWD', async () => {
    const res = await inject('POST', '/login', { body: { username: 'admin', password: 'nope' } });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'BAD_USERNAME_OR_PWD');
  });
  it('routes take an API key or a bearer token; none, a garbage or an expired token are 401 with their codes', async () => {
    assert.equal((await inject('GET', '/stats', { auth: basic })).statusCode, 200);
    assert.equal((await inject('GET', '/stats', { auth: bearer })).statusCode, 200);
    assert.equal((await inject('GET', '/stats')).json().code, 'AUTHORIZATION_HEADER_ERROR');
    assert.equal((await inject('GET', '/stats', { auth: 'Bearer garbage' })).json().code, 'BAD_TOKEN');
    assert.equal((await inject('GET', '/stats', { auth: `Basic ${Buffer.from('ops:bad').toString('base64')}` })).json().code, 'BAD_API_KEY_OR_SECRET');
    const expired = new TokenSigner(60_000);
    const old = expired.issue('admin', Date.now() - 120_000);
    assert.equal(expired.verify(old).ok, false);
    assert.deepEqual(expired.verify(old), { ok: false, code: 'TOKEN_TIME_OUT' });
  });
  it('logout revokes the token', async () => {
    const t = `Bearer ${(await inject('POST', '/login', { body: { username: 'admin', password: 'pw' } })).json().token as string}`;
    assert.equal((await inject('POST', '/logout', { auth: t, body: { username: 'admin' } })).statusCode, 204);
    const res = await inject('GET', '/stats', { auth: t });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'TOKEN_TIME_OUT');
  });
});

describe('API keys', () => {
  it('bearer only: an API key gets 401 API_KEY_NOT_ALLOW', async () => {
    const res = await inject('GET', '/api_key', { auth: basic });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'API_KEY_NOT_ALLOW');
  });
  it('create, use, change, delete', async () => {
    const res = await inject('POST', '/api_key', { auth: bearer, body: { name: 'ci', desc: 'for ci' } });
    assert.equal(res.statusCode, 200);
    const k = res.json() as { api_key: string; api_secret: string; name: string; enable: boolean; expired_at: string; role: string };
    assert.equal(k.name, 'ci');
    assert.equal(k.expired_at, 'infinity');
    const auth = `Basic ${Buffer.from(`${k.api_key}:${k.api_secret}`).toString('base64')}`;
    assert.equal((await inject('GET', '/stats', { auth })).statusCode, 200);
    assert.equal((await inject('POST', '/api_key', { auth: bearer, body: { name: 'ci' } })).json().code, 'ALREADY_EXISTS');
    const listed = (await inject('GET', '/api_key', { auth: bearer })).json() as unknown as { name: string; api_secret?: string }[];
    assert.deepEqual(listed.map((x) => x.name), ['ci', 'ops']);
    assert.ok(listed.every((x) => x.api_secret === undefined));
    assert.equal((await inject('PUT', '/api_key/ci', { auth: bearer, body: { enable: false } })).json().enable, false);
    assert.equal((await inject('GET', '/stats', { auth })).json().code, 'BAD_API_KEY_OR_SECRET');
    assert.equal((await inject('DELETE', '/api_key/ci', { auth: bearer })).statusCode, 204);
    assert.equal((await inject('GET', '/api_key/ci', { auth: bearer })).statusCode, 404);
  });
});

describe('schemas and documents', () => {
  it('a body failing the schema is 400 BAD_REQUEST naming the field; query values are coerced', async () => {
    const res = await inject('POST', '/echo/x', { auth: basic, body: { qos: 1 } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().code, 'BAD_REQUEST');
    assert.match(String(res.json().message), /topic/);
    const bad = await inject('POST', '/echo/x', { auth: basic, body: { topic: 't', qos: 7 } });
    assert.match(String(bad.json().message), /qos/);
    const ok = await inject('POST', '/echo/x?n=3', { auth: basic, body: { topic: 't' } });
    assert.deepEqual(ok.json(), { id: 'x', body: { topic: 't' }, n: 3 });
  });
  it('every route is in /api-docs/swagger.json, which needs no key', async () => {
    const res = await inject('GET', '/api-docs/swagger.json');
    assert.equal(res.statusCode, 200);
    const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(doc.openapi, '3.0.3');
    for (const r of server.routeList) {
      const p = r.path.replace(/:([A-Za-z_]+)/g, '{$1}');
      assert.ok(doc.paths[p]?.[r.method.toLowerCase()], `${r.method} ${r.path} is in the document`);
    }
    const op = doc.paths['/echo/{id}']!.post as { requestBody: unknown; parameters: { name: string; in: string }[] };
    assert.ok(op.requestBody);
    assert.deepEqual(op.parameters.map((p) => `${p.in}:${p.name}`), ['path:id', 'query:n']);
  });
  it('stats per node or aggregated; nodes; unknown paths 404', async () => {
    assert.deepEqual((await inject('GET', '/stats', { auth: basic })).json(), [{ node: 'n1@test', 'connections.count': 2 }]);
    assert.deepEqual((await inject('GET', '/metrics?aggregate=true', { auth: basic })).json(), { 'messages.received': 5 });
    const n = (await inject('GET', '/nodes/n1@test', { auth: basic })).json();
    assert.equal(n.node_status, 'running');
    assert.match(String(n.memory_total), /^\d+\.\d\d[GMK]$/);
    assert.equal((await inject('GET', '/nodes/other', { auth: basic })).statusCode, 404);
    assert.equal((await inject('GET', '/nope', { auth: basic })).json().code, 'NOT_FOUND');
  });
});
