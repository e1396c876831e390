import type { Table } from './backbone';

/** The read side every Table shares: the latest value per key, held in a Map. */
export abstract class MapTable implements Table {
  protected readonly map = new Map<string, Buffer>();
  /** Where each current value was read from or written to (Table.offsetOf). */
  protected readonly offsets = new Map<string, number>();
  onRemoteChange: ((key: string, value: Buffer | null, offset: number) => void) | undefined;

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

  offsetOf(key: string): number | undefined {
    return this.offsets.get(key);
  }

  /** Sets a key's value (null deletes); `offset` undefined: an own write, not yet acknowledged. */
  protected put(key: string, value: Buffer | null, offset: number | undefined): void {
    if (value === null) this.map.delete(key);
    else this.map.set(key, value);
    if (offset === undefined || value === null) this.offsets.delete(key);
    else this.offsets.set(key, offset);
  }

  /** An own write of `value` landed at `offset`: recorded unless the key changed since. */
  protected written(key: string, value: Buffer | null, offset: number): void {
    if (value !== null && this.map.get(key) === value) this.offsets.set(key, offset);
  }

  abstract apply(changes: ReadonlyArray<readonly [string, Buffer | null]>): Promise<void>;
}
