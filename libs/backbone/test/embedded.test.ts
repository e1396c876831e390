import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, open, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EmbeddedBackbone, type Consumer, type EmbeddedBackboneOptions, type EmbeddedTable } from '../src';
import { Collector, reopenable, runBackboneSuite } from './backbone-suite';

type Options = Omit<EmbeddedBackboneOptions, 'dataDir'>;

/** A temp data dir and helpers to (re)open backbones on it; `done()` stops them and removes it. */
async function scratch(options: Options = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'tributary-backbone-'));
  const open: EmbeddedBackbone[] = [];
  const start = async (more: Options = {}): Promise<EmbeddedBackbone> => {
    const bb = new EmbeddedBackbone({ dataDir: dir, ...options, ...more });
    await bb.start();
    open.push(bb);
    return bb;
  };
  const done = async (): Promise<void> => {
    await Promise.allSettled(open.map((b) => b.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, start, done };
}

/** Polls `check` every 5 ms (for events with no callback of their own). */
async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > deadline) throw new Error('timed out');
  }
}

const topicDir = (dir: string, topic: string): string => join(dir, 'backbone', topic);

async function segmentFiles(dir: string, topic: string): Promise<string[]> {
  return (await readdir(topicDir(dir, topic))).filter((n) => n.endsWith('.log')).sort();
}

async function lastSegment(dir: string, topic: string): Promise<string> {
  const files = await segmentFiles(dir, topic);
  return join(topicDir(dir, topic), files[files.length - 1]!);
}

/** Everything in a topic from the earliest offset (via a consumer). */
async function readAll(bb: EmbeddedBackbone, topic: string): Promise<Collector['records']> {
  const c = new Collector();
  const consumer = await bb.consume({ topic, from: 'earliest', eachBatch: c.eachBatch });
  await consumer.caughtUp;
  await consumer.stop();
  return c.records;
}

const value = (s: string): Buffer => Buffer.from(s);

for (const [label, options] of [
  ['embedded', {}],
  ['embedded (fsync always, 16 KiB segments)', { fsync: 'always', segmentBytes: 16 * 1024 }],
] as Array<[string, Options]>) {
  runBackboneSuite(label, async () => {
    const s = await scratch(options);
    return reopenable(s.start, s.done);
  });
}

describe('EmbeddedBackbone', () => {
  it('rejects use before start() and after stop(); stop() is idempotent', async () => {
    const s = await scratch();
    try {
      const bb = new EmbeddedBackbone({ dataDir: s.dir });
      await assert.rejects(bb.append('t', [{ key: null, value: null }]), /call start\(\) first/);
      await assert.rejects(bb.consume({ topic: 't', eachBatch: () => undefined }), /call start\(\) first/);
      await assert.rejects(bb.table('x'), /call start\(\) first/);
      await assert.rejects(bb.ensureTopics([{ name: 't', cleanup: 'delete' }]), /call start\(\) first/);
      await bb.start();
      await assert.rejects(bb.start(), /create a new instance/);
      await bb.append('t', [{ key: null, value: value('x') }]);
      // Accepted but not written yet (one to a topic still being opened): stop() writes them.
      const pending = [bb.append('t', [{ key: null, value: value('y') }]), bb.append('fresh', [{ key: 'k', value: value('z') }])];
      await Promise.all([bb.stop(), bb.stop()]);
      await bb.stop();
      assert.deepEqual((await Promise.all(pending)).map((p) => p[0]?.offset), [1, 0]);
      await assert.rejects(bb.append('t', [{ key: null, value: null }]), /stopped/);
      const reopened = await s.start();
      assert.deepEqual((await readAll(reopened, 't')).map((r) => r.value?.toString()), ['x', 'y']);
      assert.equal((await readAll(reopened, 'fresh'))[0]?.value?.toString(), 'z');
      assert.throws(() => new EmbeddedBackbone({ dataDir: s.dir, segmentBytes: 0 }), /segmentBytes/);
    } finally {
      await s.done();
    }
  });

  it('appendShared: the calls of one batch share one promise, interleave with append() in call order, and survive a reopen', async () => {
    const s = await scratch();
    try {
      const bb = await s.start();
      await bb.ensureTopics([{ name: 't', cleanup: 'delete' }]);
      assert.equal(bb.nextOffset('t'), 0);
      const a = bb.appendShared('t', [{ key: 'k', value: value('a') }]);
      const b = bb.appendShared('t', [{ key: 'k', value: value('b') }, { key: 'k', value: value('c') }]);
      const d = bb.append('t', [{ key: 'k', value: value('d') }]);
      const e = bb.appendShared('t', [{ key: 'k', value: value('e') }]);
      assert.equal(a, b, 'one batch, one promise');
      assert.equal(a, e);
      assert.equal(bb.nextOffset('t'), 5, 'offsets are assigned at the call');
      assert.equal(await a, undefined);
      assert.deepEqual(await d, [{ partition: 0, offset: 3 }]);
      const later = bb.appendShared('t', [{ key: 'k', value: value('f') }]);
      assert.notEqual(later, a, 'the next batch has a promise of its own');
      await later;
      await bb.stop();
      const reopened = await s.start();
      assert.deepEqual((await readAll(reopened, 't')).map((r) => `${r.offset}:${r.value?.toString()}`), ['0:a', '1:b', '2:c', '3:d', '4:e', '5:f']);
      await reopened.stop();
      await assert.rejects(reopened.appendShared('t', [{ key: null, value: null }]), /stopped/);
    } finally {
      await s.done();
    }
  });

  it('refuses a second backbone on the same data directory; validates topic names', async () => {
    const s = await scratch({ topicPrefix: 'tributary.' });
    try {
      const bb = await s.start();
      await assert.rejects(s.start(), /already open/);
      await assert.rejects(bb.append('bad/name', [{ key: null, value: null }]), /invalid backbone topic name/);
      await bb.append('messages', [{ key: null, value: value('x') }]);
      assert.equal((await stat(topicDir(s.dir, 'tributary.messages'))).isDirectory(), true);
    } finally {
      await s.done();
    }
  });

  it('truncates garbage after the last record at reopen and keeps what came before', async () => {
    const s = await scratch();
    try {
      let bb = await s.start();
      for (let i = 0; i < 10; i++) await bb.append('torn', [{ key: `k${i}`, value: value(`v${i}`) }]);
      await bb.stop();
      await appendFile(await lastSegment(s.dir, 'torn'), Buffer.from('\x00\x01garbage that is not a record\xff'));
      bb = await s.start();
      assert.deepEqual((await readAll(bb, 'torn')).map((r) => r.key), Array.from({ length: 10 }, (_, i) => `k${i}`));
      assert.equal((await bb.append('torn', [{ key: 'next', value: null }]))[0]?.offset, 10);
      await bb.stop();
      bb = await s.start();
      assert.equal((await readAll(bb, 'torn')).length, 11);
    } finally {
      await s.done();
    }
  });

  it('drops a record cut short, and a partly written append call as a whole', async () => {
    const s = await scratch();
    try {
      let bb = await s.start();
      for (let i = 0; i < 5; i++) await bb.append('cut', [{ key: `k${i}`, value: value(`v${i}`) }]);
      await bb.stop();
      const file = await lastSegment(s.dir, 'cut');
      await truncate(file, (await stat(file)).size - 3);
      bb = await s.start();
      assert.deepEqual((await readAll(bb, 'cut')).map((r) => r.key), ['k0', 'k1', 'k2', 'k3']);
      assert.equal((await bb.append('cut', [{ key: 'k4b', value: null }]))[0]?.offset, 4);
      // One call of three records whose last record is torn: none of the three survive.
      await bb.append('cut', ['a', 'b', 'c'].map((k) => ({ key: k, value: value(k) })));
      await bb.stop();
      await truncate(file, (await stat(file)).size - 1);
      bb = await s.start();
      assert.deepEqual((await readAll(bb, 'cut')).map((r) => r.key), ['k0', 'k1', 'k2', 'k3', 'k4b']);
    } finally {
      await s.done();
    }
  });

  it('truncates at a record whose CRC does not match', async () => {
    const s = await scratch();
    try {
      let bb = await s.start();
      for (let i = 0; i < 10; i++) await bb.append('crc', [{ key: `k${i}`, value: Buffer.alloc(50, i) }]);
      await bb.stop();
      const file = await lastSegment(s.dir, 'crc');
      const bytes = await readFile(file);
      const at = Math.floor(bytes.length * 0.65);
      bytes[at] = bytes[at]! ^ 0xff;
      await writeFile(file, bytes);
      bb = await s.start();
      const keys = (await readAll(bb, 'crc')).map((r) => r.key);
      assert.ok(keys.length >= 5 && keys.length < 10, `kept ${keys.length}`);
      assert.deepEqual(keys, Array.from({ length: keys.length }, (_, i) => `k${i}`));
    } finally {
      await s.done();
    }
  });

  for (const fsync of ['never', 'interval', 'always'] as const) {
    // A process kill leaves the OS page cache intact, so every policy keeps what was written here;
    // what the policies promise beyond that (power loss) is tested under "fsync policies".
    it(`keeps every record whose append resolved when the process is killed (kill -9; written to the OS before resolving, fsync ${fsync})`, { timeout: 30_000 }, async () => {
      const s = await scratch();
      try {
        const script = join(s.dir, 'child.js');
        await writeFile(
          script,
          `const { EmbeddedBackbone } = require(${JSON.stringify(join(__dirname, '..', 'src', 'index.js'))});
const bb = new EmbeddedBackbone({ dataDir: ${JSON.stringify(s.dir)}, fsync: ${JSON.stringify(fsync)}, segmentBytes: 256 * 1024 });
const value = Buffer.alloc(100, 1);
let next = 0, acked = 0;
function pump() {
  // Appends resolve in offset order, so "acked N" means offsets 0..N-1 are written.
  if (next - acked < 5000) for (let i = 0; i < 500; i++) {
    const n = next++;
    bb.append('crash', [{ key: String(n), value, headers: { n: String(n) } }]).then(() => { acked++; });
  }
  setImmediate(() => { process.stdout.write('acked ' + acked + '\\n'); pump(); });
}
bb.start().then(pump);
`,
        );
        const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          const m = /acked (\d+)\n[^\n]*$/.exec(out.slice(-200));
          // Kill it mid-stream, with appends in flight.
          if (m !== null && Number(m[1]) >= 30_000 && child.exitCode === null) child.kill('SIGKILL');
        });
        await exited;
        let acked = 0;
        for (const m of out.matchAll(/acked (\d+)\n/g)) acked = Math.max(acked, Number(m[1]));
        assert.ok(acked >= 30_000, `child acknowledged ${acked}`);

        const bb = await s.start();
        const records = await readAll(bb, 'crash');
        assert.ok(records.length >= acked, `${records.length} records after the crash, ${acked} acknowledged`);
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!;
          if (r.offset !== i || r.key !== String(i) || r.headers['n'] !== String(i)) assert.fail(`record ${i} is wrong`);
        }
        assert.equal((await bb.append('crash', [{ key: 'after', value: null }]))[0]?.offset, records.length);
      } finally {
        await s.done();
      }
    });
  }

  /**
   * What each fsync policy promises, observed where the data is synced: every FileHandle's
   * datasync() is wrapped (the backbone's segment files are written through fs/promises
   * FileHandles) and made to take 30 ms, so an append that does not wait for it shows.
   */
  describe('fsync policies', () => {
    type Event = 'datasync start' | 'datasync end' | 'append resolved';
    const watchDatasync = async (dir: string): Promise<{ events: Event[]; restore: () => void }> => {
      const probe = await open(join(dir, 'probe'), 'w');
      const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
      await probe.close();
      const original = proto.datasync;
      const events: Event[] = [];
      proto.datasync = async function (this: unknown) {
        events.push('datasync start');
        await new Promise((r) => setTimeout(r, 30));
        await original.call(this);
        events.push('datasync end');
      };
      return { events, restore: () => void (proto.datasync = original) };
    };
    /** A started backbone with the 'fsync' topic, datasync watched while `fn` runs. */
    const watched = async (options: Options, fn: (bb: EmbeddedBackbone, events: Event[]) => Promise<void>): Promise<void> => {
      const s = await scratch(options);
      const bb = await s.start();
      await bb.ensureTopics([{ name: 'fsync', cleanup: 'delete' }]);
      const w = await watchDatasync(s.dir);
      try {
        await fn(bb, w.events);
      } finally {
        w.restore();
        await s.done();
      }
    };
    const appendOne = async (bb: EmbeddedBackbone, events: Event[]): Promise<void> => {
      await bb.append('fsync', [{ key: 'k', value: Buffer.from('v') }]);
      events.push('append resolved');
    };

    it("'always': an append resolves only after the segment's datasync finished", () =>
      watched({ fsync: 'always' }, async (bb, events) => {
        await appendOne(bb, events);
        await appendOne(bb, events);
        assert.deepEqual(events, ['datasync start', 'datasync end', 'append resolved', 'datasync start', 'datasync end', 'append resolved']);
      }));

    it("'interval': appends resolve without waiting for a datasync, which follows within the interval", () =>
      watched({ fsync: 'interval', fsyncIntervalMs: 50 }, async (bb, events) => {
        await appendOne(bb, events);
        assert.deepEqual(events, ['append resolved'], 'no datasync before the append resolved');
        // The interval timer syncs what was written: an observable event, no fixed sleep.
        await waitFor(() => events.includes('datasync end'));
        assert.deepEqual(events, ['append resolved', 'datasync start', 'datasync end']);
      }));

    it("'never': appends resolve without a datasync; only stop() syncs, when it closes the files", () =>
      watched({ fsync: 'never' }, async (bb, events) => {
        for (let i = 0; i < 20; i++) await appendOne(bb, events);
        assert.deepEqual(events, Array(20).fill('append resolved'), 'no datasync while appending');
        await bb.stop();
        assert.deepEqual(events.slice(20), ['datasync start', 'datasync end'], 'stop() syncs what was written');
      }));
  });

  it('rolls segments and deletes old ones past retentionBytes', async () => {
    const s = await scratch({ segmentBytes: 1024 });
    try {
      const bb = await s.start();
      await bb.ensureTopics([
        { name: 'kept', cleanup: 'delete' },
        { name: 'capped', cleanup: 'delete', retentionBytes: 3000 },
      ]);
      for (let i = 0; i < 60; i++) {
        const rec = { key: `k${i}`, value: Buffer.alloc(100, i) };
        await Promise.all([bb.append('kept', [rec]), bb.append('capped', [rec])]);
      }
      assert.ok((await segmentFiles(s.dir, 'kept')).length >= 7, 'segments roll at segmentBytes');
      assert.equal((await readAll(bb, 'kept')).length, 60);
      const capped = await readAll(bb, 'capped');
      const files = await segmentFiles(s.dir, 'capped');
      let bytes = 0;
      for (const f of files) bytes += (await stat(join(topicDir(s.dir, 'capped'), f))).size;
      assert.ok(bytes <= 3000 + 1024, `capped topic holds ${bytes} bytes`);
      assert.ok(capped[0]!.offset > 0, 'the oldest records are gone');
      assert.deepEqual(capped.map((r) => r.offset), Array.from({ length: capped.length }, (_, i) => capped[0]!.offset + i));
      assert.equal(capped[capped.length - 1]?.offset, 59);
    } finally {
      await s.done();
    }
  });

  it('deletes segments older than retentionMs (checked when a segment rolls)', async () => {
    const s = await scratch({ segmentBytes: 1024 });
    try {
      let bb = await s.start();
      await bb.ensureTopics([{ name: 'aging', cleanup: 'delete', retentionMs: 3_600_000 }]);
      for (let i = 0; i < 30; i++) await bb.append('aging', [{ key: null, value: Buffer.alloc(100, i) }]);
      await bb.stop();
      const files = await segmentFiles(s.dir, 'aging');
      assert.ok(files.length >= 3);
      const twoHoursAgo = new Date(Date.now() - 7_200_000);
      for (const f of files.slice(0, -1)) await utimes(join(topicDir(s.dir, 'aging'), f), twoHoursAgo, twoHoursAgo);
      bb = await s.start();
      // retentionMs from the stored topic config: ensureTopics is not called again.
      for (let i = 30; i < 45; i++) await bb.append('aging', [{ key: null, value: Buffer.alloc(100, i) }]);
      const left = await segmentFiles(s.dir, 'aging');
      assert.ok(!left.includes(files[0]!), 'the aged segments are deleted');
      assert.ok(left.includes(files[files.length - 1]!), 'recent segments stay');
      const records = await readAll(bb, 'aging');
      assert.ok(records[0]!.offset > 0);
      assert.equal(records[records.length - 1]?.offset, 44);
    } finally {
      await s.done();
    }
  });

  it('compaction keeps the latest value per key and drops tombstones', async () => {
    const s = await scratch({ segmentBytes: 16 * 1024 });
    try {
      let bb = await s.start();
      const table = (await bb.table('state')) as EmbeddedTable;
      for (let round = 0; round < 300; round++) {
        await Promise.all(Array.from({ length: 10 }, (_, k) => table.set(`key${k}`, value(`${k}@${round}`))));
      }
      await table.apply([
        ['key8', null],
        ['key9', null],
      ]);
      await table.compact();
      const expected = Array.from({ length: 8 }, (_, k) => [`key${k}`, `${k}@299`]);
      const entries = (): string[][] => [...table.entries()].map(([k, v]) => [k, v.toString()]).sort();
      assert.deepEqual(entries(), expected);
      // The topic itself now holds one record per live key.
      const records = await readAll(bb, 'state');
      assert.equal(records.length, 8);
      assert.ok(records.every((r) => r.value !== null && r.value.toString().endsWith('@299')));
      let bytes = 0;
      for (const f of await segmentFiles(s.dir, 'state')) bytes += (await stat(join(topicDir(s.dir, 'state'), f))).size;
      assert.ok(bytes < 1000, `compacted log is ${bytes} bytes`);
      await bb.stop();
      bb = await s.start();
      const reopened = await bb.table('state');
      assert.deepEqual([...reopened.entries()].map(([k, v]) => [k, v.toString()]).sort(), expected);
      assert.equal((await bb.append('state', [{ key: 'x', value: null }]))[0]?.offset, 3002);
    } finally {
      await s.done();
    }
  });

  it('maxBuffered: a consumer whose handler is busy keeps at most that many new records in memory, and reads the rest back from the files, in order', async () => {
    const s = await scratch();
    try {
      const bb = await s.start();
      await bb.append('busy', [{ key: null, value: value('0') }]);
      const seen: string[] = [];
      let release!: () => void;
      const busy = new Promise<void>((resolve) => (release = resolve));
      let first = true;
      const consumer = await bb.consume({
        topic: 'busy',
        from: 'earliest',
        maxBuffered: 10,
        eachBatch: async (batch) => {
          seen.push(...batch.map((r) => r.value?.toString() ?? ''));
          if (first) {
            first = false;
            await busy;
          }
        },
      });
      await waitFor(() => seen.length === 1);
      // Written while the handler waits: 5 appends of 20 records.
      for (let a = 0; a < 5; a++) await bb.append('busy', Array.from({ length: 20 }, (_, i) => ({ key: null, value: value(String(1 + a * 20 + i)) })));
      const held = (consumer as unknown as { tail: unknown[]; tailIdx: number }).tail.length;
      assert.ok(held <= 10, `held ${held} records in memory`);
      release();
      await waitFor(() => seen.length === 101);
      assert.deepEqual(seen, Array.from({ length: 101 }, (_, i) => String(i)));
      await consumer.stop();
    } finally {
      await s.done();
    }
  });

  it('a consumer can stop itself from inside eachBatch; that batch is committed', async () => {
    const s = await scratch();
    try {
      const bb = await s.start();
      await bb.append('self', ['a', 'b', 'c', 'd'].map((v) => ({ key: null, value: value(v) })));
      const seen: string[] = [];
      let stoppedInside!: () => void;
      const stopReturned = new Promise<void>((resolve) => (stoppedInside = resolve));
      let consumer: Consumer | undefined;
      consumer = await bb.consume({
        topic: 'self',
        group: 'g',
        from: 'earliest',
        maxBatch: 2,
        eachBatch: async (batch) => {
          seen.push(...batch.map((r) => r.value?.toString() ?? ''));
          // Would deadlock if stop() waited for this very handler.
          await consumer?.stop();
          stoppedInside();
        },
      });
      await stopReturned;
      await consumer.stop();
      await assert.rejects(consumer.caughtUp, /stopped before it caught up/);
      assert.deepEqual(seen, ['a', 'b']);
      const next = new Collector();
      const again = await bb.consume({ topic: 'self', group: 'g', from: 'earliest', eachBatch: next.eachBatch });
      await next.waitFor(2);
      assert.deepEqual(next.records.map((r) => r.value?.toString()), ['c', 'd']);
      await again.stop();
    } finally {
      await s.done();
    }
  });

  it('a consumer reading a table topic while compaction replaces its files sees the latest values', async () => {
    const s = await scratch({ segmentBytes: 4096 });
    try {
      const bb = await s.start();
      const table = (await bb.table('busy')) as EmbeddedTable;
      for (let round = 0; round < 50; round++) {
        await Promise.all(Array.from({ length: 10 }, (_, k) => table.set(`key${k}`, value(`${k}@${round}`))));
      }
      const latest = new Map<string, string>();
      const offsets: number[] = [];
      const delivered = new Collector();
      let batches = 0;
      let compacted: Promise<void> | undefined;
      const consumer = await bb.consume({
        topic: 'busy',
        from: 'earliest',
        maxBatch: 20,
        eachBatch: async (batch) => {
          delivered.eachBatch(batch);
          for (const r of batch) {
            offsets.push(r.offset);
            if (r.key !== null && r.value !== null) latest.set(r.key, r.value.toString());
          }
          // Mid-read: more updates and a compaction that deletes the segments being read.
          if (++batches === 2) {
            for (let round = 50; round < 200; round++) {
              await Promise.all(Array.from({ length: 10 }, (_, k) => table.set(`key${k}`, value(`${k}@${round}`))));
            }
            compacted = table.compact();
            await compacted;
          }
        },
      });
      await consumer.caughtUp;
      await compacted;
      // A marker written after everything: once it is delivered, so is every latest value.
      const [marker] = await bb.append('busy', [{ key: 'marker', value: value('end') }]);
      await delivered.until(() => delivered.records.some((r) => r.offset === marker!.offset));
      assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!), 'offsets only grow');
      for (let k = 0; k < 10; k++) assert.equal(latest.get(`key${k}`), `${k}@199`);
      await consumer.stop();
    } finally {
      await s.done();
    }
  });

  it('gives a group to one consumer at a time; the next waits for it to stop', async () => {
    const s = await scratch();
    try {
      const bb = await s.start();
      const one = new Collector();
      const two = new Collector();
      const c1 = await bb.consume({ topic: 'shared', group: 'g', from: 'earliest', eachBatch: one.eachBatch });
      const c2 = await bb.consume({ topic: 'shared', group: 'g', from: 'earliest', eachBatch: two.eachBatch });
      await bb.append('shared', [{ key: null, value: value('a') }, { key: null, value: value('b') }]);
      await one.waitFor(2);
      await bb.append('shared', [{ key: null, value: value('c') }]);
      await one.waitFor(3);
      assert.equal(two.records.length, 0);
      await c1.stop();
      await bb.append('shared', [{ key: null, value: value('d') }]);
      await two.waitFor(1);
      assert.deepEqual(two.records.map((r) => r.value?.toString()), ['d']);
      await c2.stop();
    } finally {
      await s.done();
    }
  });
});
