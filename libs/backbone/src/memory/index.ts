export { MemoryBackbone, MemoryBackboneStorage, type MemoryBackboneOptions } from './memory-backbone';
export type { MemoryTable } from './table';
