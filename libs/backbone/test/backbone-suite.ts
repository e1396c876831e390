import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Backbone, ConsumedRecord, ConsumeOptions, Consumer, ProducerRecord } from '../src';

/**
 * The behaviour every Backbone implementation must show, tested through the interface only.
 * `factory` gives a started backbone on fresh storage; `reopen` stops the current instance and
 * starts a new one on the same storage; `cleanup` stops whatever is open and removes the storage.
 */
export type BackboneFactory = () => Promise<{
  backbone: Backbone;
  reopen: () => Promise<Backbone>;
  cleanup: () => Promise<void>;
}>;

type Harness = Awaited<ReturnType<BackboneFactory>>;

/** A suite harness from `start`, which opens a backbone on the same storage every time it is called. */
export async function reopenable(start: () => Promise<Backbone>, cleanup: () => Promise<void>): Promise<Harness> {
  let current = await start();
  return {
    backbone: current,
    reopen: async () => {
      await current.stop();
      current = await start();
      return current;
    },
    cleanup,
  };
}

/** Collects delivered records; waiters resolve on deliveries (no sleeps). */
export class Collector {
  readonly records: ConsumedRecord[] = [];
  batches = 0;
  private waiters: Array<{ done: () => boolean; resolve: () => void }> = [];

  readonly eachBatch = (batch: ConsumedRecord[]): void => {
    this.batches++;
    for (const r of batch) this.records.push(r);
    this.waiters = this.waiters.filter((w) => {
      if (!w.done()) return true;
      w.resolve();
      return false;
    });
  };

  /** Resolves once `done()` holds after a delivery (or now). */
  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }

  /** Resolves once at least n records have arrived. */
  waitFor(n: number): Promise<void> {
    return this.until(() => this.records.length >= n);
  }

  get offsets(): number[] {
    return this.records.map((r) => r.offset);
  }
}

const rec = (key: string | null, value: string | null, headers?: Record<string, string>): ProducerRecord => ({
  key,
  value: value === null ? null : Buffer.from(value),
  ...(headers ? { headers } : {}),
});


function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

export function runBackboneSuite(name: string, factory: BackboneFactory): void {
  /** A unique topic per test, so implementations backed by a shared cluster can run the suite. */
  const topic = (label: string): string => `suite-${label}-${randomBytes(4).toString('hex')}`;

  /** Runs `fn` with a fresh harness; stops consumers it started and cleans up afterwards. */
  const test = (title: string, fn: (h: Harness, track: (c: Consumer) => Consumer) => Promise<void>): void => {
    it(title, { timeout: 20_000 }, async () => {
      const h = await factory();
      const consumers: Consumer[] = [];
      try {
        await fn(h, (c) => {
          consumers.push(c);
          return c;
        });
      } finally {
        await Promise.allSettled(consumers.map((c) => c.stop()));
        await h.cleanup();
      }
    });
  };

  const consume = async (bb: Backbone, options: Omit<ConsumeOptions, 'eachBatch'>, c = new Collector()) => ({
    collector: c,
    consumer: await bb.consume({ ...options, eachBatch: c.eachBatch }),
  });

  /**
   * For "nothing more was delivered": an independent consumer of topic `t`. `passed()` appends a
   * marker record after the ones under test and resolves once this consumer received it, i.e.
   * once the backbone has delivered past the records under test (a fixed number of event-loop
   * turns proves nothing on Kafka, where no record arrives that fast).
   */
  const observer = async (bb: Backbone, t: string, track: (c: Consumer) => Consumer) => {
    const { collector, consumer } = await consume(bb, { topic: t, from: 'earliest' });
    track(consumer);
    let n = 0;
    return {
      async passed(): Promise<void> {
        const marker = `marker-${n++}`;
        await bb.append(t, [rec(null, marker)]);
        await collector.until(() => collector.records.some((r) => r.value?.toString() === marker));
      },
    };
  };

  describe(`Backbone suite: ${name}`, () => {
    test('append assigns consecutive offsets in call order', async ({ backbone: bb }, track) => {
      const t = topic('order');
      await bb.ensureTopics([{ name: t, cleanup: 'delete', partitions: 1 }]);
      // Not awaited one by one: offsets follow call order even when the calls share a write.
      const results = await Promise.all([
        bb.append(t, [rec('a', '1')]),
        bb.append(t, [rec('b', '2'), rec('c', '3')]),
        bb.append(t, [rec('d', '4')]),
      ]);
      const offsets = results.flat().map((p) => p.offset);
      assert.deepEqual(offsets, range(offsets[0]!, 4));
      assert.ok(results.flat().every((p) => p.partition === 0));
      assert.deepEqual(await bb.append(t, []), []);
      const { collector, consumer } = await consume(bb, { topic: t, from: 'earliest' });
      track(consumer);
      await collector.waitFor(4);
      assert.deepEqual(collector.records.map((r) => r.value?.toString()), ['1', '2', '3', '4']);
      assert.deepEqual(collector.offsets, offsets);
    });

    test('keys, headers, null values, binary values and timestamps roundtrip', async ({ backbone: bb }, track) => {
      const t = topic('roundtrip');
      const binary = Buffer.from([0, 1, 2, 255, 254, 0, 128]);
      const big = randomBytes(1024 * 1024);
      const before = Date.now();
      await bb.append(t, [
        { key: 'k1', value: binary, headers: { traceparent: '00-abc-def-01', 'ümlaut': 'ß✓' }, timestamp: 1_234_567_890_123 },
        { key: null, value: null },
        { key: '', value: Buffer.alloc(0) },
        { key: 'ключ/🔑', value: big },
      ]);
      const after = Date.now();
      const { collector, consumer } = await consume(bb, { topic: t, from: 'earliest' });
      track(consumer);
      await collector.waitFor(4);
      const [a, b, c, d] = collector.records;
      assert.equal(a?.topic, t);
      assert.equal(a?.key, 'k1');
      assert.deepEqual(a?.value, binary);
      assert.deepEqual(a?.headers, { traceparent: '00-abc-def-01', 'ümlaut': 'ß✓' });
      assert.equal(a?.timestamp, 1_234_567_890_123);
      assert.equal(b?.key, null);
      assert.equal(b?.value, null);
      assert.deepEqual(b?.headers, {});
      assert.ok(b !== undefined && b.timestamp >= before && b.timestamp <= after, 'default timestamp is the append time');
      assert.equal(c?.key, '');
      assert.deepEqual(c?.value, Buffer.alloc(0));
      assert.equal(d?.key, 'ключ/🔑');
      assert.ok(d?.value?.equals(big));
    });

    test('consume from earliest, latest and an explicit offset', async ({ backbone: bb }, track) => {
      const t = topic('start');
      const pos = await bb.append(t, ['0', '1', '2', '3', '4'].map((v) => rec(null, v)));
      const first = pos[0]!.offset;

      const earliest = await consume(bb, { topic: t, from: 'earliest' });
      track(earliest.consumer);
      const latest = await consume(bb, { topic: t, from: 'latest' });
      track(latest.consumer);
      const def = await consume(bb, { topic: t });
      track(def.consumer);
      const explicit = await consume(bb, { topic: t, from: [{ partition: 0, offset: first + 2 }] });
      track(explicit.consumer);
      await Promise.all([earliest, latest, def, explicit].map((x) => x.consumer.caughtUp));

      await bb.append(t, [rec(null, '5'), rec(null, '6')]);
      await earliest.collector.waitFor(7);
      await latest.collector.waitFor(2);
      await def.collector.waitFor(2);
      await explicit.collector.waitFor(5);
      const values = (c: Collector): string[] => c.records.map((r) => r.value?.toString() ?? 'null');
      assert.deepEqual(values(earliest.collector), ['0', '1', '2', '3', '4', '5', '6']);
      assert.deepEqual(values(latest.collector), ['5', '6'], "'latest' skips what existed");
      assert.deepEqual(values(def.collector), ['5', '6'], "the default is 'latest'");
      assert.deepEqual(values(explicit.collector), ['2', '3', '4', '5', '6']);
    });

    test('a consumer tails live appends in order', async ({ backbone: bb }, track) => {
      const t = topic('tail');
      await bb.append(t, [rec(null, 'old')]);
      const { collector, consumer } = await consume(bb, { topic: t, from: 'latest' });
      track(consumer);
      const expected: number[] = [];
      for (let round = 0; round < 5; round++) {
        const pos = await bb.append(t, [rec(`k${round}`, `a${round}`), rec(`k${round}`, `b${round}`)]);
        expected.push(...pos.map((p) => p.offset));
        await collector.waitFor(expected.length);
      }
      assert.deepEqual(collector.offsets, expected);
      assert.deepEqual(
        collector.records.slice(0, 2).map((r) => r.value?.toString()),
        ['a0', 'b0'],
      );
    });

    test('caughtUp resolves after everything that existed was delivered', async ({ backbone: bb }, track) => {
      const empty = await consume(bb, { topic: topic('empty'), from: 'earliest' });
      track(empty.consumer);
      await empty.consumer.caughtUp;

      const t = topic('caughtup');
      await bb.append(t, range(0, 100).map((i) => rec(String(i), String(i))));
      const { collector, consumer } = await consume(bb, { topic: t, from: 'earliest', maxBatch: 7 });
      track(consumer);
      await consumer.caughtUp;
      assert.ok(collector.records.length >= 100, `delivered ${collector.records.length} of 100 at caughtUp`);
      assert.ok(collector.batches >= 15, 'maxBatch bounds the batch size');
    });

    test('the next batch waits for the handler (backpressure)', async ({ backbone: bb }, track) => {
      const t = topic('backpressure');
      await bb.append(t, [rec(null, '0'), rec(null, '1'), rec(null, '2')]);
      let inFlight = 0;
      let overlapped = false;
      const seen: string[] = [];
      const gates: Array<() => void> = [];
      const arrivals: Array<() => void> = [];
      const arrived = (): Promise<void> => new Promise((r) => arrivals.push(r));
      let nextArrival = arrived();
      // Joins while the consumer under test starts (a Kafka consumer takes a while to join).
      const watching = observer(bb, t, track);
      track(
        await bb.consume({
          topic: t,
          from: 'earliest',
          maxBatch: 1,
          eachBatch: async (batch) => {
            if (inFlight++ > 0) overlapped = true;
            seen.push(...batch.map((r) => r.value?.toString() ?? ''));
            await new Promise<void>((release) => {
              gates.push(release);
              arrivals.shift()?.();
            });
            inFlight--;
          },
        }),
      );
      const watch = await watching;
      for (let i = 0; i < 3; i++) {
        await nextArrival;
        nextArrival = arrived();
        // While this batch is held, more records arrive and another consumer gets past them: nothing more is delivered here.
        await bb.append(t, [rec(null, `late${i}`)]);
        await watch.passed();
        assert.equal(seen.length, i + 1, 'no batch before the previous handler resolved');
        gates.shift()?.();
      }
      await nextArrival;
      gates.shift()?.();
      assert.equal(overlapped, false);
      assert.deepEqual(seen.slice(0, 4), ['0', '1', '2', 'late0']);
    });

    test('a consumer group resumes after its committed offset when reopened', async (h, track) => {
      let bb = h.backbone;
      const t = topic('group');
      const group = `g-${randomBytes(3).toString('hex')}`;
      await bb.append(t, range(0, 10).map((i) => rec(null, String(i))));
      const first = await consume(bb, { topic: t, group, from: 'earliest', maxBatch: 3 });
      await first.collector.waitFor(10);
      await first.consumer.stop();
      await bb.append(t, range(10, 5).map((i) => rec(null, String(i))));

      bb = await h.reopen();
      const second = await consume(bb, { topic: t, group, from: 'earliest' });
      track(second.consumer);
      await second.consumer.caughtUp;
      await second.collector.waitFor(5);
      assert.deepEqual(
        second.collector.records.map((r) => r.value?.toString()),
        ['10', '11', '12', '13', '14'],
      );
      // A different group starts from its own `from`.
      const other = await consume(bb, { topic: t, group: `${group}-other`, from: 'earliest' });
      track(other.consumer);
      await other.collector.waitFor(15);
    });

    test('a second group member takes over after the first stops', async ({ backbone: bb }, track) => {
      const t = topic('takeover');
      await bb.ensureTopics([{ name: t, cleanup: 'delete', partitions: 1 }]);
      const group = `g-${randomBytes(3).toString('hex')}`;
      const pos = await bb.append(t, range(0, 5).map((i) => rec(null, String(i))));
      const base = pos[0]!.offset;
      const one = await consume(bb, { topic: t, group, from: 'earliest' });
      await one.collector.waitFor(5);
      const two = await consume(bb, { topic: t, group, from: 'earliest' });
      track(two.consumer);
      await one.consumer.stop();
      await bb.append(t, range(5, 5).map((i) => rec(null, String(i))));
      await two.collector.until(() => two.collector.records.some((r) => r.offset === base + 9));
      const offsets = new Set(two.collector.offsets);
      for (const o of range(base + 5, 5)) assert.ok(offsets.has(o), `offset ${o} delivered to the new member`);
      assert.ok(two.collector.offsets.every((o) => o >= base + 5), 'the new member resumes after the commit');
    });

    test('a stopped consumer delivers nothing more', async ({ backbone: bb }, track) => {
      const t = topic('stop');
      const [{ collector, consumer }, watch] = await Promise.all([consume(bb, { topic: t, from: 'earliest' }), observer(bb, t, track)]);
      await bb.append(t, [rec(null, 'a')]);
      await collector.waitFor(1);
      await consumer.stop();
      await consumer.stop();
      await bb.append(t, [rec(null, 'b')]);
      await watch.passed();
      assert.equal(collector.records.length, 1);
    });

    test('records survive reopen; appending continues the offsets', async (h, track) => {
      const t = topic('durable');
      const pos = await h.backbone.append(t, range(0, 50).map((i) => rec(`k${i}`, `v${i}`, { i: String(i) })));
      const bb = await h.reopen();
      const more = await bb.append(t, [rec('after', 'reopen')]);
      assert.equal(more[0]!.offset, pos[49]!.offset + 1);
      const { collector, consumer } = await consume(bb, { topic: t, from: 'earliest' });
      track(consumer);
      await collector.waitFor(51);
      assert.deepEqual(collector.offsets, [...pos.map((p) => p.offset), more[0]!.offset]);
      assert.deepEqual(collector.records[7]?.headers, { i: '7' });
      assert.equal(collector.records[50]?.value?.toString(), 'reopen');
    });

    test('ensureTopics is idempotent and leaves existing topics alone', async ({ backbone: bb }) => {
      const t = topic('ensure');
      await bb.ensureTopics([{ name: t, cleanup: 'delete' }]);
      await bb.append(t, [rec(null, 'x')]);
      await bb.ensureTopics([{ name: t, cleanup: 'delete' }, { name: topic('ensure2'), cleanup: 'compact' }]);
      const pos = await bb.append(t, [rec(null, 'y')]);
      assert.ok(pos[0]!.offset >= 1);
    });

    test('table set/get/has/delete/apply/size/entries', async ({ backbone: bb }) => {
      const table = await bb.table(topic('table'));
      assert.equal(table.size, 0);
      const setA = table.set('a', Buffer.from('1'));
      // Reads see a change at once; the promise says when it is durable.
      assert.deepEqual(table.get('a'), Buffer.from('1'));
      await setA;
      await table.set('b', Buffer.from('2'));
      assert.equal(table.has('b'), true);
      assert.equal(table.has('zz'), false);
      assert.equal(table.get('zz'), undefined);
      assert.equal(table.size, 2);
      await table.delete('a');
      assert.equal(table.has('a'), false);
      await table.apply([
        ['c', Buffer.from('3')],
        ['b', null],
        ['d', Buffer.from('4')],
        ['d', Buffer.from('5')],
      ]);
      await table.apply([]);
      assert.deepEqual(
        [...table.entries()].map(([k, v]) => [k, v.toString()]).sort(),
        [
          ['c', '3'],
          ['d', '5'],
        ],
      );
      assert.equal(table.size, 2);
    });

    test('opening a table twice gives the same table', async ({ backbone: bb }) => {
      const name = topic('same');
      const [a, b] = await Promise.all([bb.table(name), bb.table(name)]);
      assert.equal(a, b);
      assert.equal(await bb.table(name), a);
    });

    test('table contents and tombstones survive reopen', async (h) => {
      const name = topic('tablereopen');
      let table = await h.backbone.table(name);
      await table.set('a', Buffer.from('1'));
      await table.set('b', Buffer.from('2'));
      await table.set('c', Buffer.from('3'));
      await table.delete('b');
      await table.apply([
        ['a', Buffer.from('1b')],
        ['d', Buffer.from('4')],
        ['d', null],
      ]);
      const bb = await h.reopen();
      table = await bb.table(name);
      assert.deepEqual(
        [...table.entries()].map(([k, v]) => [k, v.toString()]).sort(),
        [
          ['a', '1b'],
          ['c', '3'],
        ],
      );
      assert.equal(table.has('b'), false);
      assert.equal(table.has('d'), false);
      await table.set('b', Buffer.from('again'));
      const again = await (await h.reopen()).table(name);
      assert.equal(again.get('b')?.toString(), 'again');
      assert.equal(again.size, 3);
    });

    test("offsetOf names the record holding a key's value, after the write and after reopen", async (h) => {
      const name = topic('offsets');
      const table = await h.backbone.table(name);
      await table.set('a', Buffer.from('1'));
      const write = table.apply([
        ['b', Buffer.from('2')],
        ['a', Buffer.from('1b')],
      ]);
      assert.equal(table.offsetOf('a'), undefined, 'own write not acknowledged yet');
      await write;
      const a = table.offsetOf('a');
      const b = table.offsetOf('b');
      assert.ok(a !== undefined && b !== undefined && a === b + 1, `offsets a=${a} b=${b}`);
      await table.delete('b');
      assert.equal(table.offsetOf('b'), undefined);
      const again = await (await h.reopen()).table(name);
      assert.equal(again.offsetOf('a'), a);
      assert.equal(again.offsetOf('missing'), undefined);
    });

    test('20,000 single-record appends in one turn', async ({ backbone: bb }, track) => {
      const t = topic('many');
      await bb.ensureTopics([{ name: t, cleanup: 'delete', partitions: 1 }]);
      const tail = await consume(bb, { topic: t, from: 'latest' });
      track(tail.consumer);
      const value = Buffer.alloc(100, 7);
      const pending: Array<Promise<unknown>> = [];
      for (let i = 0; i < 20_000; i++) pending.push(bb.append(t, [{ key: `k${i}`, value }]));
      const positions = ((await Promise.all(pending)) as Array<Array<{ offset: number }>>).map((p) => p[0]!.offset);
      assert.deepEqual(positions, range(positions[0]!, 20_000));
      await tail.collector.waitFor(20_000);
      assert.deepEqual(tail.collector.offsets, positions);
      assert.equal(tail.collector.records[12_345]?.key, 'k12345');
      const full = await consume(bb, { topic: t, from: 'earliest', maxBatch: 5000 });
      track(full.consumer);
      await full.consumer.caughtUp;
      assert.equal(full.collector.records.length, 20_000);
      assert.deepEqual(full.collector.records[19_999]?.value, value);
    });
  });
}
