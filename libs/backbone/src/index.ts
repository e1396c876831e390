export * from './backbone';
export * from './embedded';
export * from './memory';
export type { KafkaBackboneOptions, KafkaConsumer, KafkaTable } from './kafka';
import type { Backbone } from './backbone';
import type { KafkaBackboneOptions } from './kafka';

/**
 * The Kafka backbone, loaded on demand: kafkajs costs ~11 MB of RSS, which an embedded-only
 * node should not pay. (Import `./kafka` directly to get the class itself.)
 */
export async function createKafkaBackbone(options: KafkaBackboneOptions): Promise<Backbone> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { KafkaBackbone } = require('./kafka') as typeof import('./kafka');
  return new KafkaBackbone(options);
}
/**
 * kafkajs for other Kafka clients of the process (the rule engine's Kafka sink): loaded after the
 * backbone's produce-batching patch, and only when called, so a process without Kafka never loads it.
 */
export function loadKafkajs(): typeof import('kafkajs') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('./kafka/kafkajs-patches');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('kafkajs') as typeof import('kafkajs');
}
export * from './config';
