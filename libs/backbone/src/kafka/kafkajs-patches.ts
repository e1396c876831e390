/**
 * kafkajs 2.2.4 groups a produce request's messages by partition with
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

