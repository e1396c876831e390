import type { Backbone, ConsumedRecord, Consumer } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import { checkTopicName, newMessage, QoS } from '@tributary/mqtt';
import type { Broker } from './broker';

/** Record headers a command may carry (all optional). */
export const COMMAND_HEADERS = { topic: 'mqtt-topic', qos: 'mqtt-qos', retain: 'mqtt-retain' } as const;

/**
 * Cloud-to-device commands: any Kafka client produces to the commands topic and the record
 * becomes an MQTT PUBLISH. The MQTT topic is the `mqtt-topic` header, or else the record key;
 * the value is the payload; `mqtt-qos` (0-2, default 1) and `mqtt-retain` ("true") are optional.
 * Offsets are committed (consumer group "commands") only after the publish is durable, so a
 * restart neither loses nor, normally, repeats a command.
 */
export class CommandsBridge {
  private consumer: Consumer | undefined;

  constructor(
    private readonly backbone: Backbone,
    private readonly broker: Broker,
    private readonly topic: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.backbone.ensureTopics([{ name: this.topic, cleanup: 'delete' }]);
    this.consumer = await this.backbone.consume({
      topic: this.topic,
      group: 'commands',
      from: 'earliest',
      eachBatch: (records) => this.publishAll(records),
    });
    this.log.info({ topic: this.topic }, 'consuming cloud-to-device commands');
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  private async publishAll(records: ConsumedRecord[]): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const r of records) {
      const topic = r.headers[COMMAND_HEADERS.topic] ?? r.key ?? '';
      const qos = Number(r.headers[COMMAND_HEADERS.qos] ?? 1);
      if (checkTopicName(topic) || !(qos === 0 || qos === 1 || qos === 2)) {
        this.log.warn({ offset: r.offset, topic, qos: r.headers[COMMAND_HEADERS.qos] }, 'command skipped: needs a valid MQTT topic (mqtt-topic header or key) and mqtt-qos 0-2');
        continue;
      }
      const retain = r.headers[COMMAND_HEADERS.retain] === 'true';
      pending.push(this.broker.publish(newMessage(topic, r.value ?? Buffer.alloc(0), qos as QoS, retain, '')));
    }
    await Promise.all(pending);
  }
}
