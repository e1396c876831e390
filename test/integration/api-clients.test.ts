// GET /clients on a real single node: EMQX's per-client traffic counters after a known exchange
// of packets with an mqtt.js client.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';
import { waitUntil } from '../helpers/util';

const dir = mkdtempSync(join(tmpdir(), 'tributary-api-clients-'));
const keys = join(dir, 'api_keys');
writeFileSync(keys, 'ops:ops-secret\n');
const AUTH = `Basic ${Buffer.from('ops:ops-secret').toString('base64')}`;
let b: BrokerProcess;

before(async () => {
  b = await startBroker({ env: { TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys } });
});
after(async () => {
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
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
