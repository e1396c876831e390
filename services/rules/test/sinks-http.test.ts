import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { ConfigProblem } from '@tributary/common';
import { type Connector, createConnector, type HttpRequest, parseAction, parseConnector } from '../src/sinks';
import type { ValueMap } from '@tributary/rulesql';
import { closedPort, connectorSpec, sinkErrorOf, sinkOn } from './helpers/sinks';

/** What the webhook server saw. */
interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let srv: FastifyInstance;
let base: string;
const seen: Seen[] = [];
/** Requests to /flaky whose connection is cut before the next one is answered. */
let flakyCuts = 0;
const connectors: Connector[] = [];

before(async () => {
  srv = Fastify();
  srv.removeAllContentTypeParsers();
  srv.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  srv.all('/*', async (req, reply) => {
    const entry = { method: req.method, url: req.url, headers: req.headers, body: typeof req.body === 'string' ? req.body : '' };
    if (req.url.startsWith('/api/flaky') && flakyCuts > 0) {
      flakyCuts--;
      req.raw.socket.destroy();
      return reply;
    }
    seen.push(entry);
    const m = /\/status\/(\d+)$/.exec(req.url);
    return reply.code(m ? Number(m[1]) : 200).send(m ? `status ${m[1]} as asked` : 'ok');
  });
  await srv.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(srv.server.address() as { port: number }).port}/api`;
});

after(async () => {
  await Promise.all(connectors.map((c) => c.stop()));
  await srv?.close();
});

async function hook(parameters: unknown, connector: Record<string, unknown> = {}): Promise<Awaited<ReturnType<typeof sinkOn>>> {
  const made = await sinkOn('http', { url: base, ...connector }, parameters);
  connectors.push(made.connector);
  return made;
}

const event: ValueMap = { clientid: 'dev/1', topic: 't/1', qos: 1, payload: '{"v":21.5,"unit":"C"}', timestamp: 1700000000000 };

describe('HTTP sink', () => {
  it('renders method, path, headers and body from templates and sends them', async () => {
    const { sink, connector } = await hook({
      method: 'put',
      path: 'devices/${clientid}/state',
      headers: { 'X-Client': '${clientid}', 'X-Unit': 'unit=${payload.unit}' },
      body: '{"topic":"${topic}","v":${payload.v}}',
    });
    assert.equal(connector.status(), 'connected');
    seen.length = 0;
    await sink.send([event]);
    assert.equal(seen.length, 1);
    const got = seen[0]!;
    assert.equal(got.method, 'PUT');
    assert.equal(got.url, '/api/devices/dev/1/state');
    assert.equal(got.headers['x-client'], 'dev/1');
    assert.equal(got.headers['x-unit'], 'unit=C');
    assert.equal(got.headers['content-type'], 'application/json', 'the connector default headers are sent');
    assert.deepEqual(JSON.parse(got.body), { topic: 't/1', v: 21.5 });
    const r = sink.render(event) as HttpRequest;
    assert.equal(r.method, 'PUT');
    assert.equal(r.url, `${base}/devices/dev/1/state`);
    assert.equal(r.body, '{"topic":"t/1","v":21.5}');
    assert.equal(r.headers['x-client'], 'dev/1');
  });

  it('posts the whole data map as JSON when the body is empty, a batch in order', async () => {
    const { sink } = await hook({});
    seen.length = 0;
    await sink.send([event, { ...event, clientid: 'dev/2' }, { ...event, clientid: 'dev/3' }]);
    assert.deepEqual(
      seen.map((s) => s.method),
      ['POST', 'POST', 'POST'],
    );
    assert.deepEqual(JSON.parse(seen[0]!.body), event);
    assert.deepEqual(
      seen.map((s) => (JSON.parse(s.body) as { clientid: string }).clientid),
      ['dev/1', 'dev/2', 'dev/3'],
    );
    assert.equal(seen[0]!.url, '/api');
  });

  it('sends get and delete without a body', async () => {
    for (const method of ['get', 'delete']) {
      const { sink } = await hook({ method, path: '?client=${clientid}' });
      seen.length = 0;
      await sink.send([event]);
      assert.equal(seen[0]!.method, method.toUpperCase());
      assert.equal(seen[0]!.url, '/api?client=dev/1');
      assert.equal(seen[0]!.body, '');
      assert.equal((sink.render(event) as HttpRequest).body, undefined);
    }
  });

  it('percent-encodes what a header value cannot carry', async () => {
    const { sink } = await hook({ headers: { 'x-client': '${clientid}' } });
    seen.length = 0;
    await sink.send([{ clientid: 'evil\r\nx-injected: 1' }]);
    assert.equal(seen[0]!.headers['x-client'], 'evil%0D%0Ax-injected: 1');
    assert.equal(seen[0]!.headers['x-injected'], undefined);
  });

  it('rejects 500 and 429 as retriable, 400 and 404 as permanent', async () => {
    const { sink } = await hook({ path: 'status/${code}' });
    for (const [code, retriable] of [
      [500, true],
      [503, true],
      [429, true],
      [400, false],
      [404, false],
    ] as const) {
      const err = await sinkErrorOf(sink.send([{ code }]));
      assert.equal(err.code, 'SINK_UNAVAILABLE');
      assert.equal(err.retriable, retriable, `status ${code}`);
      assert.match(err.message, new RegExp(`answered ${code}: status ${code} as asked`));
      assert.match(err.message, /^http:c1_action: /);
    }
  });

  it('retries a request whose connection broke up to max_retries times', async () => {
    const { sink } = await hook({ path: 'flaky', max_retries: 2 });
    flakyCuts = 2;
    seen.length = 0;
    await sink.send([event]);
    assert.equal(flakyCuts, 0);
    assert.equal(seen.length, 1, 'delivered on the third attempt');

    const once = await hook({ path: 'flaky', max_retries: 1 });
    flakyCuts = 2;
    const err = await sinkErrorOf(once.sink.send([event]));
    assert.equal(err.retriable, true);
    assert.equal(flakyCuts, 0, 'two attempts were made');
  });

  it('rejects as retriable when the server is down, and reports the connector disconnected', async () => {
    const port = await closedPort();
    const connector = createConnector(connectorSpec('http', 'down', { url: `http://127.0.0.1:${port}/x`, connect_timeout: '2s' }));
    connectors.push(connector);
    await connector.start();
    assert.equal(connector.status(), 'disconnected');
    const { sink } = await sinkOn('http', { url: `http://127.0.0.1:${port}/x` }, { max_retries: 0 }, 'down2');
    const err = await sinkErrorOf(sink.send([event]));
    assert.equal(err.retriable, true);
    assert.match(err.message, /ECONNREFUSED/);
  });

  it('validates connectors and actions, naming the field', () => {
    const cases: [ConfigProblem | unknown, RegExp][] = [
      [parseConnector('http', 'hook1', {}), /^connectors\.http\.hook1\.url: required/],
      [parseConnector('http', 'hook1', { url: 'ftp://x' }), /^connectors\.http\.hook1\.url: expected an http/],
      [parseConnector('http', 'hook1', { url: base, pool_size: 0 }), /^connectors\.http\.hook1\.pool_size: /],
      [parseConnector('http', 'hook1', { url: base, connect_timeout: 'soon' }), /^connectors\.http\.hook1\.connect_timeout: /],
      [parseConnector('http', 'hook1', { url: base, ssl: { enable: 'yes' } }), /^connectors\.http\.hook1\.ssl\.enable: /],
      [parseConnector('http', 'hook1', { url: base, headers: { 'bad name': 'x' } }), /^connectors\.http\.hook1\.headers\.bad name: not an HTTP header name/],
      [parseConnector('http', 'hook1', { url: base, headers: { 'x-a': 'one\r\nx-b: two' } }), /^connectors\.http\.hook1\.headers\.x-a: a header value cannot/],
      [parseAction('http', 'a', { parameters: {} }), /^actions\.http\.a\.connector: required/],
      [parseAction('http', 'a', { connector: 'hook1', parameters: { method: 'patch' } }), /^actions\.http\.a\.parameters\.method: /],
      [parseAction('http', 'a', { connector: 'hook1', parameters: { body: '${a[x]}' } }), /^actions\.http\.a\.parameters\.body: template placeholder/],
      [parseAction('http', 'a', { connector: 'hook1', resource_opts: { batch_size: 0 } }), /^actions\.http\.a\.resource_opts\.batch_size: /],
    ];
    for (const [p, want] of cases) assert.ok(p instanceof ConfigProblem && want.test(p.message), `${want}: ${JSON.stringify(p)}`);
    const spec = parseConnector('http', 'hook1', { url: base });
    assert.ok(!(spec instanceof ConfigProblem) && spec.type === 'http');
    assert.equal(spec.connect_timeout, 15_000);
    assert.equal(spec.pool_size, 8);
    assert.equal(spec.enable_pipelining, 100);
    assert.equal(spec.headers['content-type'], 'application/json');
    const action = parseAction('http', 'a', { connector: 'hook1', resource_opts: { batch_time: '50ms', request_ttl: '45s', max_buffer_bytes: '1GB' } });
    assert.ok(!(action instanceof ConfigProblem) && action.type === 'http');
    assert.equal(action.parameters.method, 'post');
    assert.equal(action.parameters.max_retries, 2);
    assert.deepEqual(
      { ...action.resource_opts },
      { batch_size: 1, batch_time: 50, request_ttl: 45_000, inflight_window: 100, max_buffer_bytes: 1024 ** 3, max_buffer_messages: 1_000_000, health_check_interval: 15_000, worker_pool_size: 16, start_timeout: 5_000, query_mode: 'async', buffer_mode: 'memory_only' },
    );
    const defaults = parseAction('http', 'a', { connector: 'hook1' });
    assert.ok(!(defaults instanceof ConfigProblem));
    assert.equal(defaults.resource_opts.request_ttl, undefined, 'request_ttl is off by default');
    assert.equal(defaults.resource_opts.max_buffer_bytes, 256 * 1024 ** 2);
  });
});
