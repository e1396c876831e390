export { KafkaBackbone, type KafkaBackboneOptions } from './kafka-backbone';
export type { KafkaConsumer } from './consumer';
export type { KafkaTable } from './table';
