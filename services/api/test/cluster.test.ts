// API keys kept in the backbone's api_keys table (a restart over the same data directory keeps
// them; the secret is stored hashed), calls between processes (the peer secret; a peer's call is
// answered for the callee only), and the ordered merge of the cluster-wide lists.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedBackbone } from '@tributary/backbone';
import { silentLogger } from '@tributary/common';
import { ApiKeys, ApiRoute, ApiServer, Cluster, mergeSorted, NodeSnapshot, PEER_HEADER, queryString } from '../src';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const basic = (key: string, secret: string): string => `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`;

/** Every byte under `dir`, as text (to look for a secret in what the backbone wrote). */
function everything(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out += statSync(p).isDirectory() ? everything(p) : readFileSync(p).toString('latin1');
  }
  return out;
}

describe('API keys in the api_keys table', () => {
  it('survive a restart over the same backbone, hashed; changes and deletes persist too', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-api-keys-'));
    dirs.push(dataDir);
    let backbone = new EmbeddedBackbone({ dataDir, fsync: 'always' });
    await backbone.start();
    const keys = new ApiKeys();
    await keys.persist(backbone, silentLogger);
    const a = (await keys.create({ name: 'ci', desc: 'for ci' }))!;
    const b = (await keys.create({ name: 'old' }))!;
    assert.equal(await keys.create({ name: 'ci' }), undefined, 'a name in use');
    assert.equal(await keys.check(basic(a.api_key, a.api_secret)), 'ok');
    await keys.update('ci', { desc: 'changed' });
    await keys.delete('old');
    await backbone.stop();
    assert.ok(!everything(dataDir).includes(a.api_secret), 'no secret in the data directory');

    backbone = new EmbeddedBackbone({ dataDir, fsync: 'always' });
    await backbone.start();
    const again = new ApiKeys();
    await again.persist(backbone, silentLogger);
    assert.deepEqual(again.list().map((k) => [k.name, k.desc]), [['ci', 'changed']]);
    // The first check after the restart runs scrypt (a promise); a second one is answered at once.
    const first = again.check(basic(a.api_key, a.api_secret));
    assert.ok(first instanceof Promise);
    assert.equal(await first, 'ok');
    assert.equal(again.check(basic(a.api_key, a.api_secret)), 'ok');
    assert.equal(await again.check(basic(a.api_key, 'wrong')), 'bad');
    assert.equal(await again.check(basic(b.api_key, b.api_secret)), 'bad', 'the deleted key');
    await again.update('ci', { enable: false });
    assert.equal(await again.check(basic(a.api_key, a.api_secret)), 'bad', 'disabled');
    await again.update('ci', { enable: true, expired_at: new Date(Date.now() - 1000).toISOString() });
    assert.equal(await again.check(basic(a.api_key, a.api_secret)), 'bad', 'expired');
    await backbone.stop();
  });
});

describe('calls between processes', () => {
  const seen: { peer?: boolean }[] = [];
  const mine: ApiRoute = { method: 'GET', path: '/mine', summary: 'test', handler: (req) => (seen.push({ peer: req.peer }), { body: { peer: req.peer } }) };
  const internal: ApiRoute = { method: 'GET', path: '/cluster/part', summary: 'test', auth: 'peer', handler: () => ({ body: { ok: true } }) };
  const text: ApiRoute = { method: 'GET', path: '/text', summary: 'test', handler: () => ({ body: 'a log line\n', contentType: 'text/plain' }) };
  const keys = new ApiKeys();
  keys.add('ops', 'secret');
  const cluster = new Cluster({ self: 'n1', peers: () => [], log: silentLogger });
  const server = new ApiServer({ host: '127.0.0.1', port: 0 }, { nodeName: 'n1', version: '1', running: true, stats: () => ({}), metrics: () => ({}) }, silentLogger, { apiKeys: keys, routes: [mine, internal, text], dashboardDir: null, cluster });
  after(() => server.stop());

  it("a call with the node's secret is a peer's call; peer-only routes refuse API keys and wrong secrets", async () => {
    await server.start();
    const url = `http://127.0.0.1:${server.address!.port}`;
    const peer: NodeSnapshot = { node: 'n1', role: 'gateway', version: '1', at: Date.now(), uptime: 0, stats: {}, metrics: {}, broker: true, api: { url, secret: cluster.secret } };
    // Another process's Cluster calls this one with its secret from the nodes table.
    const caller = new Cluster({ self: 'n2', peers: () => [peer], log: silentLogger });
    assert.deepEqual(caller.brokers().map((n) => n.node), ['n1']);
    assert.deepEqual(await caller.call(peer, 'GET', '/mine'), { status: 200, body: { peer: true } });
    assert.deepEqual(await caller.call(peer, 'GET', '/cluster/part'), { status: 200, body: { ok: true } });
    const get = (path: string, headers: Record<string, string>): Promise<Response> => fetch(`${url}/api/v5${path}`, { headers });
    assert.deepEqual(await (await get('/mine', { authorization: basic('ops', 'secret') })).json(), { peer: false });
    assert.equal((await get('/cluster/part', { authorization: basic('ops', 'secret') })).status, 401);
    assert.equal((await get('/mine', { [PEER_HEADER]: 'not-the-secret' })).status, 401);
    assert.deepEqual(seen, [{ peer: true }, { peer: false }]);
    const plain = await caller.call(peer, 'GET', '/text');
    assert.deepEqual([plain.body, plain.contentType?.split(';')[0]], ['a log line\n', 'text/plain']);
    const down = { ...peer, api: { url: 'http://127.0.0.1:1', secret: 'x' } };
    await assert.rejects(caller.call(down, 'GET', '/mine'), (err: { status?: number; code?: string }) => err.status === 503 && err.code === 'NODE_DOWN');
  });

  it('first(): the one answer that is not a 404; NODE_DOWN when nobody has it and a node is down', async () => {
    const url = `http://127.0.0.1:${server.address!.port}`;
    const up: NodeSnapshot = { node: 'n1', role: 'gateway', version: '1', at: Date.now(), uptime: 0, stats: {}, metrics: {}, broker: true, api: { url, secret: cluster.secret } };
    const down: NodeSnapshot = { ...up, node: 'n3', api: { url: 'http://127.0.0.1:1', secret: 'x' } };
    const caller = new Cluster({ self: 'n2', peers: () => [up, down], log: silentLogger });
    assert.equal((await caller.first([down, up], 'GET', '/mine'))?.status, 200);
    await assert.rejects(caller.first([down, up], 'GET', '/nope'), (err: { code?: string }) => err.code === 'NODE_DOWN');
    assert.equal(await caller.first([up], 'GET', '/nope'), undefined);
    assert.equal((await caller.any('GET', '/mine')).status, 200, 'any(): the gateway that answers');
    await assert.rejects(new Cluster({ self: 'n2', peers: () => [down], log: silentLogger }).any('GET', '/mine'), (err: { code?: string }) => err.code === 'NODE_DOWN');
  });
});

describe('merging the lists of several processes', () => {
  it('k-way, in key order, stable, telling which list each item came from', () => {
    const merged = mergeSorted([['a', 'd', 'e'], [], ['b', 'c', 'f'], ['a2']], (x) => x);
    assert.deepEqual(merged.map((m) => m.item), ['a', 'a2', 'b', 'c', 'd', 'e', 'f']);
    assert.deepEqual(merged.map((m) => m.from), [0, 3, 2, 2, 0, 0, 2]);
    assert.deepEqual(mergeSorted([['x'], ['x']], (x) => x).map((m) => m.from), [0, 1]);
  });
  it('query strings repeat array parameters and leave out undefined', () => {
    assert.equal(queryString({ clientid: ['a', 'b'], clean_start: true, upto: 200, none: undefined }), 'clientid=a&clientid=b&clean_start=true&upto=200');
  });
});
