import type { Table } from './backbone';

/** The read side every Table shares: the latest value per key, held in a Map. */
export abstract class MapTable implements Table {
  protected readonly map = new Map<string, Buffer>();
  onRemoteChange: ((key: string, value: Buffer | null) => void) | undefined;

  constructor(readonly name: string) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): Buffer | undefined {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  entries(): IterableIterator<[string, Buffer]> {
    return this.map.entries();
  }

  set(key: string, value: Buffer): Promise<void> {
    return this.apply([[key, value]]);
  }

  delete(key: string): Promise<void> {
    return this.apply([[key, null]]);
  }

  abstract apply(changes: ReadonlyArray<readonly [string, Buffer | null]>): Promise<void>;
}
