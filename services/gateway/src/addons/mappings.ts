import type { Backbone } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import type { KafkaMapping } from '../config';
import { encodeMessage, Message, MESSAGE_HEADERS, TopicTrie } from '@tributary/mqtt';
import { brokerMessage, type HookRegistry } from '@tributary/hooks';

const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json' });

/** The JSON form of a mapped message: payload as UTF-8 text when it is, else base64. */
export function messageJson(msg: Message): Buffer {
  const utf8 = Buffer.from(msg.payload.toString('utf8')).equals(msg.payload);
  return Buffer.from(
    JSON.stringify({
      topic: msg.topic,
      payload: utf8 ? msg.payload.toString('utf8') : msg.payload.toString('base64'),
      payload_encoding: utf8 ? 'plain' : 'base64',
      qos: msg.qos,
      retain: msg.retain,
      from: msg.from,
      timestamp: msg.timestamp,
      properties: msg.properties ? { ...msg.properties, correlationData: msg.properties.correlationData?.toString('base64') } : undefined,
    }),
  );
}

/**
 * MQTT→Kafka mapping (`bridge.kafka.mappings`): messages whose topic matches a filter are also
 * appended to the named backbone topic, as JSON or as Avro (the messages-topic schema), keyed by
 * MQTT topic. All messages are in the messages topic anyway; mappings give consumers narrower,
 * differently encoded topics.
 */
export class TopicMappings {
  private readonly trie = new TopicTrie<KafkaMapping>();

  constructor(
    private readonly backbone: Backbone,
    private readonly mappings: readonly KafkaMapping[],
    private readonly log: Logger,
  ) {
    mappings.forEach((m, i) => this.trie.set(m.filter, String(i), m));
  }

  get size(): number {
    return this.mappings.length;
  }

  async start(): Promise<void> {
    const topics = [...new Set(this.mappings.map((m) => m.topic))];
    await this.backbone.ensureTopics(topics.map((name) => ({ name, cleanup: 'delete' as const })));
    if (topics.length) this.log.info({ mappings: this.mappings.length, topics }, 'copying MQTT topic filters to backbone topics');
  }

  /** Appends `msg` to every mapped topic it matches; resolves when those appends are durable. */
  copy(msg: Message): Promise<unknown> | undefined {
    let pending: Promise<unknown>[] | undefined;
    this.trie.match(msg.topic, (_id, m) => {
      const value = m.format === 'json' ? messageJson(msg) : encodeMessage(msg);
      const headers = m.format === 'json' ? JSON_HEADERS : MESSAGE_HEADERS;
      (pending ??= []).push(this.backbone.append(m.topic, [{ key: msg.topic, value, headers, timestamp: msg.timestamp }]));
    });
    return pending && Promise.all(pending);
  }
}

/**
 * MQTT→Kafka mappings on the hooks: message.publish at the lowest priority, so they copy what
 * the chain finally publishes; the publisher's acknowledgement waits for the copies.
 */
export function registerMappings(hooks: HookRegistry, mappings: TopicMappings, filters: readonly string[]): void {
  hooks.add('message.publish', { name: 'mappings', priority: 'mappings', topics: filters }, (m, ctx) => {
    const copied = mappings.copy(brokerMessage(m));
    if (copied) ctx.waitFor(copied);
    return undefined;
  });
}
