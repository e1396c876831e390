import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientLine, localRfc3339, nameValueLines, subscriptionLine, uptimeText } from '../src/ctl-ops';
import { ruleBlock, ruleLine } from '../src/ctl-rules';

describe('tributary ctl output (EMQX emqx ctl style)', () => {
  it('prints a client as one Client(...) line with times in ms', () => {
    const line = clientLine({
      clientid: 'c1',
      username: null,
      ip_address: '127.0.0.1',
      port: 50000,
      clean_start: true,
      keepalive: 60,
      expiry_interval: 0,
      subscriptions_cnt: 1,
      send_msg: 4,
      connected: true,
      created_at: '2024-01-01T00:00:00.000Z',
      connected_at: '2024-01-01T00:00:01.000Z',
    });
    assert.equal(
      line,
      'Client(c1, username=undefined, peername=127.0.0.1:50000, clean_start=true, keepalive=60, session_expiry_interval=0, subscriptions=1, inflight=0, awaiting_rel=0, delivered_msgs=4, enqueued_msgs=0, dropped_msgs=0, connected=true, created_at=1704067200000, connected_at=1704067201000)\n',
    );
  });

  it('prints subscriptions, sorted name : value lines and uptime as EMQX does', () => {
    assert.equal(subscriptionLine('c', { topic: 't/1', qos: 1 }), 'c -> topic:t/1 qos:1 nl:0 rh:0 rap:0\n');
    assert.equal(nameValueLines({ node: 'n', 'topics.count': 2, 'connections.count': 3 }), `${'connections.count'.padEnd(30)} : 3\n${'topics.count'.padEnd(30)} : 2\n`);
    assert.equal(uptimeText(52_000), '52 seconds');
    assert.equal(uptimeText((3600 + 5) * 1000), '1 hours, 0 minutes, 5 seconds');
  });

  it('prints rules as EMQX does: Rule{...} lines; show in labelled blocks, continued lines indented', () => {
    const at = '2024-01-01T00:00:00.250Z';
    const r = { id: 'r1', name: '', sql: 'SELECT *\nFROM "t/#"', enable: false, description: '', actions: [{ function: 'console' }, 'kafka_producer:k1'], created_at: at, updated_at: at };
    assert.equal(ruleLine(r), 'Rule{id=r1, name=, enabled=false, descr=}\n');
    const local = localRfc3339(new Date(at), true);
    assert.match(local, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.250[+-]\d\d:\d\d$/);
    assert.equal(Date.parse(local), Date.parse(at));
    assert.equal(
      ruleBlock(r),
      `Id:\n  r1\nName:\n  \nDescription:\n  \nEnabled:\n  false\nSQL:\n  SELECT *\n  FROM "t/#"\nCreated at:\n  ${local}\nUpdated at:\n  ${local}\n` +
        'Actions:\n  - Name:  console\n    Type:  function\n    Args:  {}\n  - Name:         k1\n    Action Type:  kafka_producer\n    Type:         data-bridge\n  \n',
    );
  });
});
