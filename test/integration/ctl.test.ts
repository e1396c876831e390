// `tributary ctl` against a real node: EMQX's command names and output over the HTTP API
// (clients, subscriptions, topics, retainer, broker, listeners, rules), and clear failures.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { BIN, BrokerProcess, startBroker } from '../helpers/broker';
import { closed, connect, end, Inbox } from '../helpers/clients';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tributary-ctl-'));
const keys = join(dir, 'api_keys');
writeFileSync(keys, 'ops:s3cret-ops\n');
let b: BrokerProcess;
let api: string;
let c: MqttClient | undefined;

before(async () => {
  b = await startBroker({
    env: {
      TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys,
      // A sink for `rules show` to name; nothing listens there and no rule sends to it here.
      TRIBUTARY_CONNECTORS: JSON.stringify({ http: { hook: { url: 'http://127.0.0.1:9' } } }),
      TRIBUTARY_ACTIONS: JSON.stringify({ http: { hook: { connector: 'hook' } } }),
    },
  });
  api = `http://127.0.0.1:${b.httpPort}`;
});
after(async () => {
  await end(c);
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `tributary ctl ...` with --url and the key from the bootstrap file the node reads. */
async function ctl(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'ctl', ...args, ...(args.includes('--url') ? [] : ['--url', api])], { env: { ...process.env, TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys }, timeout: 20_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

// Each test runs the ctl command as its own node process, a dozen times: 0.6 s each on an idle
// box, 2-5 s each on a CI box running other files and JVMs beside (the --help test once took 60 s).
const SPAWNS = { timeout: 180_000 };

describe('tributary ctl', () => {
  it('clients list and show print EMQX Client(...) lines', SPAWNS, async () => {
    assert.equal((await ctl('clients', 'list')).out, 'No clients.\n');
    c = await connect(b.url, { clientId: 'ctl-c1', username: 'alice', keepalive: 30 });
    await c.subscribeAsync('s/1');
    const port = (c.stream as unknown as { localPort: number }).localPort;
    const r = await ctl('clients', 'list');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^Client\\(ctl-c1, username=alice, peername=127\\.0\\.0\\.1:${port}, clean_start=true, keepalive=30, session_expiry_interval=0, subscriptions=1, inflight=0, awaiting_rel=0, delivered_msgs=0, enqueued_msgs=0, dropped_msgs=0, connected=true, created_at=\\d{13}, connected_at=\\d{13}\\)\\n$`));
    assert.equal((await ctl('clients', 'show', 'ctl-c1')).out, r.out);
    const missing = await ctl('clients', 'show', 'nobody');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /CLIENTID_NOT_FOUND/);
  });

  it('subscriptions list/show/add/del; topics list/show', SPAWNS, async () => {
    const inbox = new Inbox(c!);
    assert.equal((await ctl('subscriptions', 'add', 'ctl-c1', 'added/+', '1')).out, 'ok\n');
    const shown = (await ctl('subscriptions', 'show', 'ctl-c1')).out.split('\n').filter(Boolean).sort();
    assert.deepEqual(shown, ['ctl-c1 -> topic:added/+ qos:1 nl:0 rh:0 rap:0', 'ctl-c1 -> topic:s/1 qos:0 nl:0 rh:0 rap:0']);
    assert.deepEqual((await ctl('subscriptions', 'list')).out.split('\n').filter(Boolean).sort(), shown);
    const pub = await connect(b.url, { clientId: 'ctl-pub' });
    await pub.publishAsync('added/x', 'hi', { qos: 1 });
    assert.equal((await inbox.waitFor(1))[0]!.topic, 'added/x', 'the subscription added by ctl delivers');
    await end(pub);
    assert.match((await ctl('topics', 'list')).out, /^added\/\+ -> \S+$/m);
    assert.match((await ctl('topics', 'show', 'added/+')).out, /^added\/\+ -> \S+\n$/);
    assert.equal((await ctl('subscriptions', 'del', 'ctl-c1', 'added/+')).out, 'ok\n');
    assert.deepEqual((await ctl('subscriptions', 'show', 'ctl-c1')).out, 'ctl-c1 -> topic:s/1 qos:0 nl:0 rh:0 rap:0\n');
    assert.equal((await ctl('subscriptions', 'add', 'ctl-c1', 't', '7')).code, 1);
  });

  it('retainer info, topics and clean with a filter', SPAWNS, async () => {
    // The node's own $SYS/brokers/... messages are retained too.
    const count = async (): Promise<number> => Number(/^Number of retained messages: (\d+)\n$/.exec((await ctl('retainer', 'info')).out)?.[1]);
    const mine = async (): Promise<string[]> => (await ctl('retainer', 'topics')).out.split('\n').filter((t) => t && !t.startsWith('$')).sort();
    const before = await count();
    const pub = await connect(b.url, { clientId: 'ctl-ret' });
    for (const t of ['r/a', 'r/b', 'q/c']) await pub.publishAsync(t, 'x', { qos: 1, retain: true });
    await end(pub);
    assert.equal(await count(), before + 3);
    assert.deepEqual(await mine(), ['q/c', 'r/a', 'r/b']);
    assert.equal((await ctl('retainer', 'clean', 'r/#')).out, 'Cleaned 2 retained messages\n');
    assert.deepEqual(await mine(), ['q/c']);
    assert.equal(await count(), before + 1);
  });

  it('broker, broker stats, broker metrics, listeners', SPAWNS, async () => {
    const info = (await ctl('broker')).out;
    assert.match(info, /^sysdescr  : Tributary\nversion   : \S+\ndatetime  : \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\nuptime    : (\d+ \w+, )*\d+ seconds\n$/);
    const stats = (await ctl('broker', 'stats')).out.split('\n').filter(Boolean);
    assert.ok(stats.includes(`${'connections.count'.padEnd(30)} : 1`), stats.join('\n'));
    assert.deepEqual([...stats].sort(), stats, 'sorted');
    assert.match((await ctl('broker', 'metrics')).out, /^messages\.received {13} : \d+$/m);
    const ls = (await ctl('listeners')).out;
    assert.match(ls, new RegExp(`^tcp:default\\n  listen_on +: 127\\.0\\.0\\.1:${b.mqttPort}\\n  acceptors +: \\d+\\n  proxy_protocol +: false\\n  running +: true\\n  current_conn +: 1\\n  max_conns +: \\S+\\n`, 'm'));
  });

  it('rules list and rules show print EMQX Rule{...} lines and labelled blocks', SPAWNS, async () => {
    assert.equal((await ctl('rules', 'list')).out, '', 'no rules: nothing, as EMQX');
    const post = async (body: unknown): Promise<{ created_at: string }> => {
      const res = await fetch(`${api}/api/v5/rules`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from('ops:s3cret-ops').toString('base64')}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 201);
      return (await res.json()) as { created_at: string };
    };
    const one = await post({ id: 'r-one', name: 'first', sql: 'SELECT payload\nFROM "t/#"', description: 'two\nlines', actions: [{ function: 'republish', args: { topic: 'out/${topic}', qos: 1 } }, 'http:hook'] });
    await post({ id: 'r-two', sql: 'SELECT * FROM "$events/client_connected"', enable: false, actions: [] });
    const list = await ctl('rules', 'list');
    assert.equal(list.code, 0, list.err);
    assert.equal(list.out, 'Rule{id=r-one, name=first, enabled=true, descr=two\nlines}\nRule{id=r-two, name=r-two, enabled=false, descr=}\n');
    const show = await ctl('rules', 'show', 'r-one');
    assert.equal(show.code, 0, show.err);
    // Times are local RFC 3339 with milliseconds and the offset.
    const time = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d/g;
    const times = show.out.match(time) ?? [];
    assert.equal(times.length, 2);
    assert.equal(Date.parse(times[0]!), Date.parse(one.created_at), 'Created at is the rule\'s created_at');
    assert.equal(
      show.out.replace(time, '<time>'),
      [
        'Id:', '  r-one',
        'Name:', '  first',
        'Description:', '  two', '  lines',
        'Enabled:', '  true',
        'SQL:', '  SELECT payload', '  FROM "t/#"',
        'Created at:', '  <time>',
        'Updated at:', '  <time>',
        'Actions:',
        '  - Name:  republish', '    Type:  function', '    Args:  {"topic":"out/${topic}","qos":1}',
        '  - Name:         hook', '    Action Type:  http', '    Type:         data-bridge',
        '  ', '',
      ].join('\n'),
    );
    assert.match((await ctl('rules', 'show', 'r-two')).out, /^Id:\n {2}r-two\n[^]*Enabled:\n {2}false\n[^]*Actions:\n {2}\n$/);
    const missing = await ctl('rules', 'show', 'nobody');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /RULE_NOT_FOUND/);
    assert.equal((await ctl('rules', 'show')).code, 1, 'show needs an id');
  });

  it('clients kick disconnects the client', SPAWNS, async () => {
    const gone = closed(c!);
    c!.options.reconnectPeriod = 0;
    assert.equal((await ctl('clients', 'kick', 'ctl-c1')).out, 'ok\n');
    await gone;
    assert.equal((await ctl('clients', 'list')).out, 'No clients.\n');
  });

  it('--help on every command; unreachable API and a wrong key: a clear error, exit 1', SPAWNS, async () => {
    for (const g of ['clients', 'subscriptions', 'topics', 'retainer', 'broker', 'listeners', 'rules', 'users', 'banned']) {
      const h = await ctl(g, '--help');
      assert.equal(h.code, 0);
      assert.match(h.out, new RegExp(`^  ${g}\\b.*# `, 'm'));
    }
    const wrong = await ctl('clients', 'list', '--key', 'ops', '--secret', 'nope');
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /refused the API key \(BAD_API_KEY_OR_SECRET/);
    const down = await ctl('broker', 'stats', '--url', 'http://127.0.0.1:9');
    assert.equal(down.code, 1);
    assert.match(down.err, /cannot reach the HTTP API at http:\/\/127\.0\.0\.1:9 .*is the node running/);
    const bad = await ctl('clients', 'frobnicate');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /unknown command "clients frobnicate"/);
  });
});
