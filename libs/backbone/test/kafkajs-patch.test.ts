// The kafkajs patch (src/kafka/kafkajs-patches.ts) is what runs while kafkajs is the Kafka client:
// loading the backbone first, as every Tributary process does, links kafkajs's producer against
// the linear grouping function, and that function gives the original's results. Nothing else in
// this file may import kafkajs before the backbone.
import { KafkaBackbone } from '../src/kafka';
import { groupMessagesPerPartition, kafkajsPatched, requestQueuePatched } from '../src/kafka/kafkajs-patches';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const modulePath = (name: string): string => require.resolve(`kafkajs/src/producer/${name}`);

test('loading the backbone links kafkajs 2.2.4 sendMessages against the patched groupMessagesPerPartition', () => {
  assert.equal(typeof KafkaBackbone, 'function');
  assert.equal((require('kafkajs/package.json') as { version: string }).version, '2.2.4', 'the patch is for kafkajs 2.2.4: review it when upgrading');
  assert.equal(kafkajsPatched, true, 'the patch did not apply');
  const grouping = require.cache[modulePath('groupMessagesPerPartition')];
  assert.equal(grouping?.exports, groupMessagesPerPartition, 'the module cache holds the patched function');
  const sendMessages = require.cache[modulePath('sendMessages')];
  assert.ok(sendMessages, 'kafkajs producer code was loaded by the backbone');
  // Node records a cached module as a child of each module that required it: the producer code
  // that groups a batch required the patched entry, not the original file.
  assert.ok(sendMessages.children.includes(grouping!), "kafkajs's sendMessages required the patched module");
});

test('the patched grouping gives the same result as kafkajs 2.2.4 original', () => {
  // The original, evaluated from kafkajs's own file (the cache entry is the patched one).
  const original = { exports: {} as (args: unknown) => unknown };
  new Function('module', 'exports', readFileSync(modulePath('groupMessagesPerPartition'), 'utf8'))(original, original.exports);
  const partitionMetadata = [{ partitionId: 0 }, { partitionId: 1 }, { partitionId: 2 }];
  const messages = Array.from({ length: 50 }, (_, i) => ({ key: `k${i % 7}`, value: String(i) }));
  const partitioner = ({ message }: { message: unknown }): number => Number((message as { key: string }).key.slice(1)) % 3;
  for (const args of [
    { topic: 't', partitionMetadata, messages, partitioner },
    { topic: 't', partitionMetadata: [], messages, partitioner },
    { topic: 't', partitionMetadata, messages: [], partitioner },
  ]) {
    assert.deepEqual(groupMessagesPerPartition(args), original.exports(args));
  }
});

interface Queue {
  push(r: { entry: object; expectResponse: boolean; sendRequest: () => void; requestTimeout?: number }): void;
  fulfillRequest(r: { correlationId: number; payload: Buffer; size: number }): void;
  maybeThrottle(ms: number): void;
  destroy(): void;
  readonly pending: unknown[];
  readonly throttleCheckTimeoutId: NodeJS.Timeout | null;
}

/** A kafkajs RequestQueue as a broker connection makes one, at most one request in flight. */
function requestQueue(): Queue {
  const RequestQueue = require('kafkajs/src/network/requestQueue') as new (o: object) => Queue;
  const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  return new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'localhost:9092', logger, isConnected: () => true });
}

/** A request whose send resolves `sent`. */
function request(correlationId: number): { req: Parameters<Queue['push']>[0]; sent: Promise<void> } {
  let sent!: () => void;
  const promise = new Promise<void>((r) => (sent = r));
  const entry = { correlationId, apiKey: 0, apiName: 'Produce', apiVersion: 0, resolve: () => undefined, reject: () => undefined };
  return { req: { entry, expectResponse: true, sendRequest: () => sent() }, sent: promise };
}

test('a kafkajs request queue with nothing pending schedules no check (2.2.4 ran a 1 ms timer for good)', async () => {
  assert.equal(requestQueuePatched, true, 'the patch did not apply');
  const q = requestQueue();
  try {
    const a = request(1);
    q.push(a.req);
    await a.sent;
    q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    // kafkajs 2.2.4 had a check scheduled here, and another after each one ran.
    assert.equal(q.throttleCheckTimeoutId, null);
  } finally {
    q.destroy();
  }
});

test('a kafkajs request held back by the in-flight limit or a throttle is still sent', async () => {
  const q = requestQueue();
  try {
    const [a, b, c] = [request(1), request(2), request(3)];
    q.push(a.req);
    await a.sent;
    // The in-flight limit holds b back; a's response sends it.
    q.push(b.req);
    assert.equal(q.pending.length, 1);
    q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    await b.sent;
    q.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 });
    // A broker's throttle holds c back with nothing in flight: the scheduled check sends it.
    q.maybeThrottle(30);
    q.push(c.req);
    assert.equal(q.pending.length, 1);
    assert.notEqual(q.throttleCheckTimeoutId, null);
    await c.sent;
    q.fulfillRequest({ correlationId: 3, payload: Buffer.alloc(0), size: 0 });
    assert.equal(q.pending.length, 0);
  } finally {
    q.destroy();
  }
});
