/**
 * Two fixes for kafkajs 2.2.4 (its last release); neither changes what kafkajs sends, or when.
 *
 * 1. kafkajs 2.2.4 groups a produce request's messages by partition with
 * `Object.assign(result, { [partition]: [...current, message] })`: every message copies the
 * list so far, quadratic in the batch size, and the whole batch goes through it on every
 * sendBatch. This linear version is put in Node's module cache before kafkajs loads, so
 * kafkajs's producer uses it (same inputs, same result). Imported first by kafka-backbone.ts.
 */

interface GroupArgs {
  topic: string;
  partitionMetadata: unknown[];
  messages: unknown[];
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
}

export function groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner }: GroupArgs): Record<number, unknown[]> {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

/** False when kafkajs was loaded first or its file moved (another version): it then runs unpatched, only slower. */
export const kafkajsPatched: boolean = (() => {
  try {
    const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition');
    if (require.cache[path]) return false;
    require.cache[path] = { id: path, filename: path, loaded: true, exports: groupMessagesPerPartition } as unknown as NodeJS.Module;
    return true;
  } catch {
    return false;
  }
})();


/** kafkajs's RequestQueue fields the fix below reads and writes. */
interface RequestQueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL: how often requests held back by the in-flight limit are retried. */
const CHECK_PENDING_MS = 10;

/**
 * 2. Every kafkajs broker connection's RequestQueue checks its pending requests after each
 * response, and then schedules the next check even when nothing is pending and no throttle is on:
 * `throttledUntil - Date.now()` is then negative, so a 1 ms timer runs for good, per connection
 * (kafkajs issues #1556 and #1704, unfixed). In Tributary's processes that is thousands of timer
 * callbacks a second, idle or not, each allocating. This version schedules a check only when
 * something is pending (at the throttle's end, or in 10 ms as kafkajs does) or a throttle is on:
 * a push that cannot be sent at once schedules one, and every response checks again anyway.
 */
export function scheduleCheckPendingRequests(this: RequestQueueState): void {
  if (this.throttleCheckTimeoutId) return;
  let wait = this.throttledUntil - Date.now();
  if (this.pending.length > 0) {
    if (wait <= 0) wait = CHECK_PENDING_MS;
  } else if (wait <= 0) {
    return;
  }
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, wait);
}

/** False when kafkajs's RequestQueue is not where 2.2.4 has it (another version): kafkajs then runs unpatched. */
export const requestQueuePatched: boolean = (() => {
  try {
    // A prototype patch: it holds for queues kafkajs created before, too.
    const RequestQueue = require('kafkajs/src/network/requestQueue') as { prototype: { scheduleCheckPendingRequests?: unknown } };
    if (typeof RequestQueue.prototype.scheduleCheckPendingRequests !== 'function') return false;
    RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
    return true;
  } catch {
    return false;
  }
})();
