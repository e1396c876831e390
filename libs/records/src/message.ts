import { decodeMessage, encodeMessage, Message, MESSAGE_SCHEMA_NAME } from '@tributary/mqtt';
import { RecordCodec, RecordError } from './codec';

/**
 * Messages as table values (retained, delayed): the io.tributary.v1.Message Avro body, unframed,
 * byte for byte what the messages topic carries, so Kafka consumers read all three with one
 * schema. Its one version is implied by the table; a Message v2 would be framed (RECORD_MAGIC).
 */
export const messageCodec: RecordCodec<Message> = {
  schema: MESSAGE_SCHEMA_NAME,
  version: 1,
  encode: encodeMessage,
  decode(value) {
    try {
      return decodeMessage(value);
    } catch (err) {
      throw new RecordError(`not a ${MESSAGE_SCHEMA_NAME}: ${(err as Error).message}`);
    }
  },
};
