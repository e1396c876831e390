// The kafkajs patch (src/kafka/kafkajs-patches.ts) is what runs while kafkajs is the Kafka client:
// loading the backbone first, as every Tributary process does, links kafkajs's producer against
// the linear grouping function, and that function gives the original's results. Nothing else in
// this file may import kafkajs before the backbone.
import { KafkaBackbone } from '../src/kafka';
import { groupMessagesPerPartition, kafkajsPatched } from '../src/kafka/kafkajs-patches';
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
