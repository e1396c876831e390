import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs';
import { createLogger, type LogLevel } from '@tributary/common';
import type { Consumer } from '../src';
import { KafkaBackbone, type KafkaBackboneOptions } from '../src/kafka';
import { Collector, reopenable, runBackboneSuite } from './backbone-suite';

/**
 * Runs the shared suite against a real Kafka: the one at TRIBUTARY_TEST_KAFKA (host:port), or a
 * single-node broker started here with deploy/kafka/kafka.sh (needs java and mvn; without them
 * the tests fail with the install command, never skip).
 */
const repoRoot = join(__dirname, '..', '..', '..', '..');
const script = join(repoRoot, 'deploy', 'kafka', 'kafka.sh');
/** Every topic and group of this run starts with this, so runs on a shared cluster do not mix. */
const runPrefix = `tributary-test-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}.`;

let bootstrap = process.env['TRIBUTARY_TEST_KAFKA'] ?? '';
let kafkaDir: string | null = null;
let admin: Admin | null = null;
/** Why there is no Kafka: every test fails with it (a failed hook would only cancel them). */
let setupError: Error | null = null;

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

before(
  async () => {
    try {
      await setUp();
    } catch (err) {
      setupError = err instanceof Error ? err : new Error(String(err));
      console.error(setupError.message);
    }
  },
  { timeout: 300_000 },
);

async function setUp(): Promise<void> {
  if (bootstrap === '') {
    kafkaDir = await mkdtemp(join(tmpdir(), 'tributary-kafka-'));
    const started = Date.now();
    // KAFKA_OWNER_PID: the broker goes away with this process even if after() never runs.
    const r = await run(['start', kafkaDir], { ...process.env, KAFKA_OWNER_PID: String(process.pid) });
    if (r.code !== 0) throw new Error(`deploy/kafka/kafka.sh start failed (exit ${r.code}):\n${r.stderr.trim()}`);
    bootstrap = r.stdout.trim().split('\n').pop() ?? '';
    console.log(`local Kafka at ${bootstrap} (fetch + start took ${Date.now() - started} ms)`);
  }
  assert.match(bootstrap, /^[^:\s]+:\d+$/, 'TRIBUTARY_TEST_KAFKA must be host:port');
  admin = new Kafka({ clientId: 'tributary-test', brokers: [bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
}

after(
  async () => {
    if (admin !== null) {
      await deleteTopics(runPrefix).catch(() => undefined);
      await admin.disconnect();
    }
    if (kafkaDir !== null) {
      await run(['stop', kafkaDir], process.env);
      await rm(kafkaDir, { recursive: true, force: true });
    }
  },
  { timeout: 60_000 },
);

async function deleteTopics(prefix: string): Promise<void> {
  const topics = (await admin!.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length > 0) await admin!.deleteTopics({ topics });
}

/** TRIBUTARY_TEST_LOG=debug (or warn, …) shows the backbone's and kafkajs's logs. */
const logger = createLogger((process.env['TRIBUTARY_TEST_LOG'] ?? 'silent') as LogLevel, { test: 'kafka' });

let harnesses = 0;
/** Backbones on one fresh prefix; `done()` stops them and deletes the prefix's topics. */
function scratch(options: Partial<KafkaBackboneOptions> = {}) {
  if (setupError !== null) throw setupError;
  const prefix = `${runPrefix}${++harnesses}.`;
  const open: KafkaBackbone[] = [];
  const start = async (): Promise<KafkaBackbone> => {
    const bb = new KafkaBackbone({ brokers: [bootstrap], clientId: 'tributary-test', topicPrefix: prefix, logger, ...options });
    open.push(bb);
    await bb.start();
    return bb;
  };
  const done = async (): Promise<void> => {
    await Promise.allSettled(open.map((b) => b.stop()));
    await deleteTopics(prefix).catch(() => undefined);
  };
  return { prefix, start, done };
}

runBackboneSuite('kafka', async () => {
  const s = scratch();
  return reopenable(s.start, s.done);
});

describe('KafkaBackbone', () => {
  it('rejects use before start() and after stop()', { timeout: 20_000 }, async () => {
    const s = scratch();
    try {
      const bb = new KafkaBackbone({ brokers: [bootstrap], topicPrefix: s.prefix });
      await assert.rejects(bb.append('t', [{ key: null, value: null }]), /call start\(\) first/);
      await assert.rejects(bb.table('x'), /call start\(\) first/);
      const started = await s.start();
      await assert.rejects(started.append('bad/name', [{ key: null, value: null }]), /invalid backbone topic name/);
      await started.stop();
      await started.stop();
      await assert.rejects(started.append('t', [{ key: null, value: null }]), /stopped/);
      assert.throws(() => new KafkaBackbone({ brokers: [] }), /brokers/);
    } finally {
      await s.done();
    }
  });

  it('ensureTopics creates topics with their cleanup policy, retention and partitions', { timeout: 20_000 }, async () => {
    const s = scratch({ partitions: 2 });
    try {
      const bb = await s.start();
      await bb.ensureTopics([
        { name: 'log', cleanup: 'delete', retentionMs: 3_600_000, retentionBytes: 10_000_000 },
        { name: 'state', cleanup: 'compact', partitions: 3 },
      ]);
      const meta = await admin!.fetchTopicMetadata({ topics: [`${s.prefix}log`, `${s.prefix}state`] });
      const partitions = (name: string): number | undefined => meta.topics.find((t) => t.name === `${s.prefix}${name}`)?.partitions.length;
      assert.deepEqual([partitions('log'), partitions('state')], [2, 3]);
      const configs = await admin!.describeConfigs({
        includeSynonyms: false,
        resources: [`${s.prefix}log`, `${s.prefix}state`].map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
      });
      const value = (topic: string, key: string): string | undefined =>
        configs.resources
          .find((r) => r.resourceName === `${s.prefix}${topic}`)
          ?.configEntries.find((e) => e.configName === key)?.configValue;
      assert.equal(value('log', 'cleanup.policy'), 'delete');
      assert.equal(value('log', 'retention.ms'), '3600000');
      assert.equal(value('log', 'retention.bytes'), '10000000');
      assert.equal(value('state', 'cleanup.policy'), 'compact');
      // Existing topics are left alone: a second backbone asking for other settings changes nothing.
      const other = new KafkaBackbone({ brokers: [bootstrap], topicPrefix: s.prefix, partitions: 5 });
      await other.start();
      await other.ensureTopics([{ name: 'log', cleanup: 'compact' }]);
      await other.stop();
      const again = await admin!.fetchTopicMetadata({ topics: [`${s.prefix}log`] });
      assert.equal(again.topics[0]?.partitions.length, 2);
    } finally {
      await s.done();
    }
  });

  it('keyed records on several partitions: positions match what consumers see', { timeout: 20_000 }, async () => {
    const s = scratch({ partitions: 3 });
    try {
      const bb = await s.start();
      const records = Array.from({ length: 60 }, (_, i) => ({ key: `key-${i % 12}`, value: Buffer.from(String(i)) }));
      const positions = (await Promise.all(records.map((r) => bb.append('multi', [r])))).flat();
      assert.equal(new Set(positions.map((p) => p.partition)).size, 3, 'keys spread over the partitions');
      const byKey = new Map<string, number>();
      records.forEach((r, i) => {
        const p = positions[i]!.partition;
        assert.equal(byKey.get(r.key) ?? p, p, 'one key, one partition');
        byKey.set(r.key, p);
      });
      const c = new Collector();
      const consumer = await bb.consume({ topic: 'multi', from: 'earliest', eachBatch: c.eachBatch });
      await consumer.caughtUp;
      assert.equal(c.records.length, 60);
      const seen = new Map(c.records.map((r) => [`${r.partition}:${r.offset}`, r.value?.toString()]));
      positions.forEach((p, i) => assert.equal(seen.get(`${p.partition}:${p.offset}`), String(i)));
      await consumer.stop();
    } finally {
      await s.done();
    }
  });

  it('a consumer can stop itself from inside eachBatch; that batch is committed', { timeout: 20_000 }, async () => {
    const s = scratch();
    try {
      const bb = await s.start();
      await bb.append('self', ['a', 'b', 'c', 'd'].map((v) => ({ key: null, value: Buffer.from(v) })));
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
          await consumer?.stop(); // would deadlock if stop() waited for this very handler
          stoppedInside();
        },
      });
      await stopReturned;
      await consumer.stop();
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

  it('a batch whose handler throws is delivered again', { timeout: 20_000 }, async () => {
    const s = scratch();
    try {
      const bb = await s.start();
      await bb.append('retry', ['a', 'b'].map((v) => ({ key: null, value: Buffer.from(v) })));
      const attempts: string[][] = [];
      const c = new Collector();
      const consumer = await bb.consume({
        topic: 'retry',
        from: 'earliest',
        eachBatch: (batch) => {
          attempts.push(batch.map((r) => r.value?.toString() ?? ''));
          if (attempts.length < 3) throw new Error('not yet');
          c.eachBatch(batch);
        },
      });
      await consumer.caughtUp;
      assert.deepEqual(c.records.map((r) => r.value?.toString()), ['a', 'b']);
      assert.deepEqual(attempts, [['a', 'b'], ['a', 'b'], ['a', 'b']]);
      await consumer.stop();
    } finally {
      await s.done();
    }
  });

  it('a table follows changes written by another process; local writes win over stale reads', { timeout: 20_000 }, async () => {
    const s = scratch();
    try {
      const a = await (await s.start()).table('shared');
      const b = await (await s.start()).table('shared');
      await a.set('k', Buffer.from('from-a'));
      await a.apply([
        ['x', Buffer.from('1')],
        ['y', Buffer.from('2')],
      ]);
      const until = async (cond: () => boolean): Promise<void> => {
        while (!cond()) await new Promise((r) => setTimeout(r, 10));
      };
      await until(() => b.get('y')?.toString() === '2');
      assert.equal(b.get('k')?.toString(), 'from-a');
      // b writes k; its own value shows at once and is not undone when a's older record is read.
      await b.set('k', Buffer.from('from-b'));
      assert.equal(b.get('k')?.toString(), 'from-b');
      await b.delete('x');
      await until(() => a.get('k')?.toString() === 'from-b' && !a.has('x'));
      assert.deepEqual([...a.entries()].map(([k, v]) => [k, v.toString()]).sort(), [...b.entries()].map(([k, v]) => [k, v.toString()]).sort());
    } finally {
      await s.done();
    }
  });

  it('sync() resolves once the table read what others wrote before; onRemoteChange reports them, not own writes', { timeout: 20_000 }, async () => {
    const s = scratch();
    try {
      const a = await (await s.start()).table('synced');
      const b = await (await s.start()).table('synced');
      const seen: [string, string | null][] = [];
      b.onRemoteChange = (key, value) => seen.push([key, value === null ? null : value.toString()]);
      for (let i = 0; i < 50; i++) await a.set(`k${i % 5}`, Buffer.from(String(i)));
      await a.delete('k0');
      await b.set('own', Buffer.from('b'));
      await b.sync!();
      // Everything a wrote is read by now, without polling.
      assert.equal(b.get('k4')?.toString(), '49');
      assert.equal(b.has('k0'), false);
      assert.deepEqual(seen.slice(-2), [['k4', '49'], ['k0', null]]);
      assert.ok(!seen.some(([k]) => k === 'own'), 'own writes are not remote changes');
    } finally {
      await s.done();
    }
  });
});
