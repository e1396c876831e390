// Records written by an older release, and damaged ones, in a real data directory: a session
// record in the JSON v1 format (as the gateway wrote it before records were versioned) is
// restored by today's broker; an undecodable record is reported with its table and offset and
// skipped, and the broker starts and serves everyone else.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { IConnackPacket } from 'mqtt-packet';
import { EmbeddedBackbone } from '@tributary/backbone';
import { ROOT, startBroker, tempDir } from '../helpers/broker';
import { open, waitForTopic } from '../helpers/util';

const dataDir = tempDir();
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('a JSON v1 session record is restored; a corrupt one is reported with its offset and skipped', async () => {
  const v1 = JSON.parse(readFileSync(join(ROOT, 'libs', 'records', 'test', 'fixtures', 'session.v1.json'), 'utf8')) as Record<string, unknown>;
  const backbone = new EmbeddedBackbone({ dataDir, topicPrefix: 'tributary.' });
  await backbone.start();
  const sessions = await backbone.table('sessions');
  // Disconnected just now (the fixture's own time would have expired by the time this runs).
  await sessions.set('fixture-client', Buffer.from(JSON.stringify({ ...v1, disconnectedAt: Date.now() })));
  await sessions.set('damaged', Buffer.from('{"v":1,"clientId":"damaged","subscriptions":7}'));
  const damagedAt = sessions.offsetOf('damaged');
  await backbone.stop();
  assert.equal(typeof damagedAt, 'number');

  const broker = await startBroker({ dataDir });
  try {
    const report = broker.logs.find((l) => l.msg === 'undecodable record skipped');
    assert.ok(report, 'the damaged record is reported');
    assert.equal(report.table, 'sessions');
    assert.equal(report.key, 'damaged');
    assert.equal(report.offset, damagedAt);
    assert.equal(report.schema, 'io.tributary.v2.Session');

    const restored = await open(broker.url, { clientId: 'fixture-client', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    assert.equal((restored.connack as IConnackPacket).sessionPresent, true, 'the v1 session is present');
    const publisher = await open(broker.url, { clientId: 'records-pub' });
    await publisher.client.publishAsync('alerts/smoke', 'restored subscription', { qos: 1 });
    assert.equal((await waitForTopic(restored.inbox, 'alerts/smoke')).payload.toString(), 'restored subscription');
    await Promise.all([restored.client.endAsync(), publisher.client.endAsync()]);
  } finally {
    await broker.stop();
  }
});
