export { EmbeddedBackbone, CONSUMER_OFFSETS_TABLE, type EmbeddedBackboneOptions, type FsyncPolicy } from './embedded-backbone';
export type { EmbeddedTable } from './table';
