import type { Logger } from '@tributary/common';
import type { RecordCodec } from './codec';

/**
 * Decodes the records of one table or topic for a service: a record that does not decode is
 * logged with where it is (table, key, offset), counted, and skipped; never cast.
 */
export class RecordReader<T> {
  /** Records that could not be decoded so far. */
  invalid = 0;

  constructor(
    private readonly codec: RecordCodec<T>,
    /** The table or topic name, for the report. */
    readonly source: string,
    private readonly log: Pick<Logger, 'warn'>,
  ) {}

  /** The decoded record, or undefined (reported) when it cannot be decoded. */
  read(key: string | null, value: Buffer, offset: number | undefined): T | undefined {
    try {
      return this.codec.decode(value, key ?? undefined);
    } catch (err) {
      this.invalid++;
      this.log.warn({ table: this.source, key, offset, schema: this.codec.schema, err: (err as Error).message }, 'undecodable record skipped');
      return undefined;
    }
  }
}
