import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBackbone, MemoryBackboneStorage } from '../src';
import { Collector, reopenable, runBackboneSuite } from './backbone-suite';

// "Reopen" is a new backbone over the same storage: what a restart is without a disk.
runBackboneSuite('memory', async () => {
  const storage = new MemoryBackboneStorage();
  const open: MemoryBackbone[] = [];
  const start = async (): Promise<MemoryBackbone> => {
    const bb = new MemoryBackbone({ storage });
    await bb.start();
    open.push(bb);
    return bb;
  };
  return reopenable(start, async () => {
    await Promise.all(open.map((b) => b.stop()));
  });
});

async function started(storage = new MemoryBackboneStorage()): Promise<MemoryBackbone> {
  const bb = new MemoryBackbone({ storage });
  await bb.start();
  return bb;
}

describe('MemoryBackbone', () => {
  it('rejects use before start() and after stop()', async () => {
    const bb = new MemoryBackbone();
    await assert.rejects(bb.append('t', [{ key: null, value: null }]), /call start\(\) first/);
    await assert.rejects(bb.table('x'), /call start\(\) first/);
    await bb.start();
    await assert.rejects(bb.start(), /create a new instance/);
    await assert.rejects(bb.append('bad/name', [{ key: null, value: null }]), /invalid backbone topic name/);
    await bb.stop();
    await assert.rejects(bb.consume({ topic: 't', eachBatch: () => undefined }), /it is stopped/);
  });

  it('backbones over one storage see each other’s table writes through onRemoteChange', async () => {
    const storage = new MemoryBackboneStorage();
    const [a, b] = [await started(storage), await started(storage)];
    try {
      const [ta, tb] = [await a.table('sessions'), await b.table('sessions')];
      const remote: Array<[string, string | null]> = [];
      tb.onRemoteChange = (key, value) => remote.push([key, value?.toString() ?? null]);
      ta.onRemoteChange = () => assert.fail('a table is not told about its own writes');
      await ta.set('x', Buffer.from('1'));
      await ta.delete('x');
      await ta.set('y', Buffer.from('2'));
      assert.deepEqual(remote, [['x', '1'], ['x', null], ['y', '2']]);
      assert.equal(tb.get('y')?.toString(), '2');
      // Written in the same turn, b's write comes after a's: b keeps its own value, a takes b's.
      ta.onRemoteChange = undefined;
      const both = [ta.set('z', Buffer.from('from a')), tb.set('z', Buffer.from('from b'))];
      await Promise.all(both);
      await tb.sync?.();
      assert.equal(tb.get('z')?.toString(), 'from b');
      assert.equal(ta.get('z')?.toString(), 'from b');
      assert.deepEqual(remote.slice(3), [], "a's older write does not overwrite b's newer one");
      // append() to a table's topic is a write by someone else, for the table too.
      await a.append('sessions', [{ key: 'w', value: Buffer.from('appended') }]);
      assert.equal(ta.get('w')?.toString(), 'appended');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('retention drops the oldest records; consumers start at the oldest kept', async () => {
    const bb = await started();
    try {
      await bb.ensureTopics([{ name: 'small', cleanup: 'delete', retentionBytes: 2000 }]);
      for (let i = 0; i < 10; i++) await bb.append('small', [{ key: null, value: Buffer.alloc(400, i) }]);
      const c = new Collector();
      const consumer = await bb.consume({ topic: 'small', from: 'earliest', eachBatch: c.eachBatch });
      await consumer.caughtUp;
      await consumer.stop();
      assert.ok(c.records.length < 10 && c.records.length >= 3, `kept ${c.records.length} records`);
      assert.equal(c.records[c.records.length - 1]?.offset, 9);
    } finally {
      await bb.stop();
    }
  });

  it('a compacted topic keeps the latest record per key', async () => {
    const storage = new MemoryBackboneStorage();
    const bb = await started(storage);
    try {
      const table = await bb.table('counts');
      for (let i = 0; i < 3000; i++) await table.set(`k${i % 10}`, Buffer.from(String(i)));
      await table.delete('k0');
      const c = new Collector();
      const consumer = await bb.consume({ topic: 'counts', from: 'earliest', eachBatch: c.eachBatch });
      await consumer.caughtUp;
      await consumer.stop();
      assert.ok(c.records.length < 1100, `${c.records.length} records held for 9 keys`);
      const again = await started(storage);
      const reopened = await again.table('counts');
      await again.stop();
      assert.equal(reopened.size, 9);
      assert.equal(reopened.get('k9')?.toString(), '2999');
      assert.equal(reopened.has('k0'), false);
    } finally {
      await bb.stop();
    }
  });
});
