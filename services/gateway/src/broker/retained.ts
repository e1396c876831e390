import type { Backbone, Table } from '@tributary/backbone';
import { decodeMessage, encodeMessage, Message, remainingExpiry, TopicSet } from '@tributary/mqtt';

/**
 * Retained messages: the latest per topic in the backbone's compacted `retained` table, with a
 * topic index so a wildcard subscribe only visits matching topics.
 */
export class RetainedStore {
  private readonly index = new TopicSet();

  private constructor(private readonly table: Table) {
    for (const [topic] of table.entries()) this.index.add(topic);
  }

  static async open(backbone: Backbone): Promise<RetainedStore> {
    return new RetainedStore(await backbone.table('retained'));
  }

  get size(): number {
    return this.index.size;
  }

  /** Stores (or, for an empty payload, clears [MQTT-3.3.1-10]) the retained message of its topic. */
  set(msg: Message): Promise<void> {
    if (msg.payload.length === 0) {
      if (!this.table.has(msg.topic)) return Promise.resolve();
      this.index.delete(msg.topic);
      return this.table.delete(msg.topic);
    }
    this.index.add(msg.topic);
    return this.table.set(msg.topic, encodeMessage({ ...msg, retain: true }));
  }

  /** The unexpired retained messages whose topics match `filter`. */
  match(filter: string, now = Date.now()): Message[] {
    const out: Message[] = [];
    for (const topic of this.index.match(filter)) {
      const value = this.table.get(topic);
      if (!value) continue;
      const msg = decodeMessage(value);
      const left = remainingExpiry(msg, now);
      if (left !== undefined && left <= 0) continue;
      out.push(msg);
    }
    return out;
  }
}
