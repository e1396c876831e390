// A real single node: EMQX's per-client traffic counters in GET /clients after a known exchange
// of packets with an mqtt.js client; an API key made with POST /api_key survives a restart.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { apiKeyFile, BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';
import { waitUntil } from '../helpers/util';

const keys = apiKeyFile();
const AUTH = keys.auth;
let b: BrokerProcess;

before(async () => {
  b = await startBroker({ env: { TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys.file } });
});
after(async () => {
  await b?.stop();
  keys.remove();
});

async function get(path: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5${path}`, { headers: { authorization: AUTH } });
  assert.equal(res.status, 200, path);
  return res.json();
}

describe('per-client counters', () => {
  it('count the packets, messages by QoS and bytes each way', async () => {
    const c = await connect(b.url, { clientId: 'cnt-a', protocolVersion: 5 });
    try {
      const inbox = new Inbox(c);
      await c.subscribeAsync('cnt/#', { qos: 2 });
      await c.publishAsync('cnt/x', 'q0', { qos: 0 });
      await c.publishAsync('cnt/x', 'q1', { qos: 1 });
      await c.publishAsync('cnt/x', 'q1', { qos: 1 });
      await c.publishAsync('cnt/x', 'q2', { qos: 2 });
      await inbox.waitFor(4);
      // In: CONNECT, SUBSCRIBE, 4 PUBLISH, PUBREL; for its 4 copies PUBACK ×2, PUBREC, PUBCOMP.
      // Out: CONNACK, SUBACK, PUBACK ×2, PUBREC, PUBCOMP; 4 PUBLISH, and PUBREL for the QoS 2 copy.
      let item: Record<string, number> = {};
      await waitUntil(async () => {
        item = await get('/clients/cnt-a');
        return item.recv_pkt === 11 && item.send_pkt === 11;
      }, `11 packets each way (got ${JSON.stringify(item)})`);
      assert.equal(item.recv_msg, 4);
      assert.deepEqual([item['recv_msg.qos0'], item['recv_msg.qos1'], item['recv_msg.qos2']], [1, 2, 1]);
      assert.equal(item.send_msg, 4);
      assert.deepEqual([item['send_msg.qos0'], item['send_msg.qos1'], item['send_msg.qos2']], [1, 2, 1]);
      assert.equal(item['send_msg.dropped'], 0);
      assert.ok(item.recv_oct! > 4 * 7 && item.send_oct! > 4 * 7, JSON.stringify(item));
      assert.ok(item.recv_cnt! >= 1 && item.recv_cnt! <= 11, 'socket reads');
      assert.ok(item.send_cnt! >= 1 && item.send_cnt! <= 11, 'socket writes (coalesced)');
      assert.equal(item.inflight_max, 32);
      const listed = (await get('/clients?clientid=cnt-a')).data[0];
      assert.equal(listed.send_pkt, item.send_pkt);
    } finally {
      await end(c);
    }
  });
});

describe('API keys made with POST /api_key', () => {
  it('work again after the node restarts over the same data directory', async () => {
    const dataDir = tempDir();
    const env = { TRIBUTARY_DASHBOARD__DEFAULT_PASSWORD: 'pw' };
    let node = await startBroker({ dataDir, keepDataDir: true, env });
    const url = (path: string): string => `http://127.0.0.1:${node.httpPort}/api/v5${path}`;
    try {
      const login = (await (await fetch(url('/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'pw' }) })).json()) as { token: string };
      const res = await fetch(url('/api_key'), { method: 'POST', headers: { authorization: `Bearer ${login.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'kept', desc: 'across restarts' }) });
      const k = (await res.json()) as { api_key: string; api_secret: string };
      const key = `Basic ${Buffer.from(`${k.api_key}:${k.api_secret}`).toString('base64')}`;
      assert.equal((await fetch(url('/stats'), { headers: { authorization: key } })).status, 200);
      await node.stop();
      node = await startBroker({ dataDir, keepDataDir: true, env });
      assert.equal((await fetch(url('/stats'), { headers: { authorization: key } })).status, 200, 'the key after the restart');
      assert.equal((await fetch(url('/stats'), { headers: { authorization: `Basic ${Buffer.from(`${k.api_key}:nope`).toString('base64')}` } })).status, 401);
    } finally {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
