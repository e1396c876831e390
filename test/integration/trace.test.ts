// Log tracing (EMQX's /trace) against a real node: a trace for one client id writes that client's
// CONNECT, SUBSCRIBE, PUBLISH in/out and DISCONNECT to <data_dir>/trace/<name>.log, and nothing of
// other clients; stop, log_detail, delete, and the checks on the request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';

const dir = mkdtempSync(join(tmpdir(), 'tributary-trace-'));
const keys = join(dir, 'api_keys');
writeFileSync(keys, 'ops:s3cret-ops\n');
const AUTH = `Basic ${Buffer.from('ops:s3cret-ops').toString('base64')}`;
let b: BrokerProcess;

before(async () => {
  b = await startBroker({ env: { TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys } });
});
after(async () => {
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5${path}`, { method, headers: { authorization: AUTH, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** The trace file's lines once `until` holds for them (the DISCONNECT comes after the socket closes). */
async function lines(name: string, until: (ls: string[]) => boolean): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ls = (await call('GET', `/trace/${name}/download`)).text.split('\n').filter(Boolean);
    if (until(ls) || Date.now() > deadline) return ls;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('log trace', () => {
  it("a clientid trace writes that client's packets, one line each, and none of another client's", async () => {
    const started = await call('POST', '/trace', { name: 'mine', type: 'clientid', clientid: 'traced-1' });
    assert.equal(started.status, 200, started.text);
    assert.equal((started.json as { status: string }).status, 'running');
    assert.equal((await call('POST', '/trace', { name: 'other', type: 'clientid', clientid: 'someone-else' })).status, 200);

    const c = await connect(b.url, { clientId: 'traced-1', username: 'u1', password: 'do-not-log-me', protocolVersion: 5 });
    const bystander = await connect(b.url, { clientId: 'bystander' });
    const inbox = new Inbox(c);
    await c.subscribeAsync('tr/#', { qos: 1 });
    await c.publishAsync('tr/a', 'hello', { qos: 1 });
    await bystander.publishAsync('tr/b', 'xyz', { qos: 0 });
    await inbox.waitFor(2);
    await end(c, bystander);

    const ls = await lines('mine', (x) => x.some((l) => l.includes('DISCONNECT')));
    const kinds = ls.map((l) => l.split(' ')[1]);
    assert.deepEqual(kinds.filter((k) => k !== 'PUBLISH_OUT'), ['CONNECT', 'SUBSCRIBE', 'PUBLISH_IN', 'DISCONNECT']);
    assert.equal(kinds.filter((k) => k === 'PUBLISH_OUT').length, 2, ls.join('\n'));
    for (const l of ls) assert.match(l, /^\d{4}-\d\d-\d\dT\S+ [A-Z_]+ clientid=traced-1( |$)/);
    assert.match(ls.find((l) => l.includes('PUBLISH_IN'))!, / topic=tr\/a qos=1 retain=false payload_size=5$/);
    assert.match(ls.find((l) => l.includes('SUBSCRIBE'))!, / topic=tr\/# qos=1$/);
    assert.ok(ls.some((l) => l.includes('PUBLISH_OUT') && l.includes('from=bystander') && l.includes('payload_size=3')));
    assert.ok(!ls.join('\n').includes('do-not-log-me'), 'a password in the trace');
    assert.ok(!ls.join('\n').includes('hello'), 'a payload in the trace');
    assert.equal((await call('GET', '/trace/other/download')).text, '', 'another trace got those lines');

    const detail = (await call('GET', '/trace/mine/log_detail')).json as { size: number; mtime: number }[];
    assert.equal(detail[0]!.size, Buffer.byteLength(ls.join('\n') + '\n'));
    assert.ok(existsSync(join(b.dataDir, 'trace', 'mine.log')));
  });

  it('lists, stops and deletes traces; a stopped trace writes no more', async () => {
    const list = (await call('GET', '/trace')).json as { name: string; status: string; clientid: string }[];
    assert.deepEqual(list.map((t) => [t.name, t.status, t.clientid]), [['mine', 'running', 'traced-1'], ['other', 'running', 'someone-else']]);
    const stopped = await call('PUT', '/trace/mine/stop');
    assert.equal((stopped.json as { status: string }).status, 'stopped');
    const size = ((await call('GET', '/trace/mine/log_detail')).json as { size: number }[])[0]!.size;
    const c = await connect(b.url, { clientId: 'traced-1' });
    await end(c);
    assert.equal(((await call('GET', '/trace/mine/log_detail')).json as { size: number }[])[0]!.size, size);
    assert.equal((await call('DELETE', '/trace/mine')).status, 204);
    assert.equal((await call('GET', '/trace/mine/download')).status, 404);
    assert.ok(!existsSync(join(b.dataDir, 'trace', 'mine.log')));
  });

  it('refuses end_at in the past, a missing value, a duplicate name; a future start_at waits', async () => {
    const past = await call('POST', '/trace', { name: 'late', type: 'clientid', clientid: 'x', end_at: new Date(Date.now() - 60_000).toISOString() });
    assert.equal(past.status, 400);
    assert.equal((past.json as { code: string }).code, 'BAD_REQUEST');
    assert.equal((await call('POST', '/trace', { name: 'novalue', type: 'topic' })).status, 400);
    assert.equal((await call('POST', '/trace', { name: 'other', type: 'clientid', clientid: 'y' })).status, 409);
    const later = await call('POST', '/trace', { name: 'later', type: 'topic', topic: 'a/#', start_at: Math.floor(Date.now() / 1000) + 3600 });
    assert.equal((later.json as { status: string }).status, 'waiting');
  });
});
