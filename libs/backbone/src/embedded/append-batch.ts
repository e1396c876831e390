import type { ConsumedRecord, ProducerRecord, RecordPosition } from '../backbone';
import { encodeRecord, FLAG_CONTINUES, maxEncodedSize } from './record-codec';
import { TributaryError } from '@tributary/common';

/** One append() call waiting for the writer. */
export interface PendingCall {
  records: readonly ProducerRecord[];
  count: number;
  /** Offset of its first record. */
  first: number;
  /** Date.now() at the call (the timestamp of records without one). */
  now: number;
  resolve: (positions: RecordPosition[]) => void;
  reject: (err: Error) => void;
  /** Rejected already (could not be encoded). */
  failed: boolean;
  /** An appendShared() call: its batch's SharedWrite settles it, it needs no positions. */
  shared: boolean;
}

/** The one promise of the appendShared() calls of one batch. */
export interface SharedWrite {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

export function sharedWrite(): SharedWrite {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Rejections reach the callers through `promise`; this one is only the batch's own.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new TributaryError('INTERNAL_ERROR', String(err), { cause: err });
}

export function positions(first: number, count: number): RecordPosition[] {
  const out = new Array<RecordPosition>(count);
  for (let i = 0; i < count; i++) out[i] = { partition: 0, offset: first + i };
  return out;
}

/**
 * Encodes every pending call into one buffer, taken from `scratch(bytes)` (an upper bound).
 * A call that cannot be encoded (bad input, too large) is rejected alone and leaves a gap.
 */
export function encodeCalls(
  calls: readonly PendingCall[],
  scratch: (bytes: number) => Buffer,
): { buf: Buffer; len: number; anyFailed: boolean } {
  let bound = 0;
  let anyFailed = false;
  for (const c of calls) {
    try {
      for (let i = 0; i < c.count; i++) bound += maxEncodedSize(c.records[i]!);
    } catch (err) {
      c.failed = anyFailed = true;
      c.reject(asError(err));
    }
  }
  const buf = scratch(bound);
  let len = 0;
  for (const c of calls) {
    if (c.failed) continue;
    const start = len;
    try {
      const n = c.count;
      for (let i = 0; i < n; i++) {
        const r = c.records[i]!;
        // All but the last record of a call say "continues": the call is all-or-nothing at recovery.
        len = encodeRecord(buf, len, c.first + i, r.timestamp ?? c.now, r, i < n - 1 ? FLAG_CONTINUES : 0);
      }
    } catch (err) {
      len = start;
      c.failed = anyFailed = true;
      c.reject(asError(err));
    }
  }
  return { buf, len, anyFailed };
}

/**
 * The written calls as consumers see them, handed over from memory. Values and headers are the
 * producer's own objects (no copy): producers must not modify them after append().
 */
export function consumedRecords(topic: string, calls: readonly PendingCall[]): ConsumedRecord[] {
  const records: ConsumedRecord[] = [];
  for (const c of calls) {
    for (let i = 0; i < c.count; i++) {
      const r = c.records[i]!;
      records.push({
        topic,
        partition: 0,
        offset: c.first + i,
        key: r.key,
        value: r.value,
        headers: r.headers ?? {},
        timestamp: r.timestamp ?? c.now,
      });
    }
  }
  return records;
}
