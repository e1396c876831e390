import { SCHEMA_HEADER } from '@tributary/mqtt';
import { inRange, RecordCodec, RecordError } from '../codec';
import type { EventRecord } from './record';
import { decodeEventV1, encodeEventV1, EVENT_V1 } from './v1';

export * from './record';
export { EVENT_V1 } from './v1';

/** The events topic's name (the backbone adds backbone.topic_prefix). */
export const EVENTS_TOPIC = 'events';
/** Record header naming the event (`client.connected`, ...), so a consumer can pick events without decoding values. */
export const EVENT_HEADER = 'tributary-event';

const headersByEvent = new Map<string, Readonly<Record<string, string>>>();

/** The headers of an event record: the schema name (tributary-schema) and the event's name; one frozen object per event name. */
export function eventHeaders(event: string): Readonly<Record<string, string>> {
  let h = headersByEvent.get(event);
  if (h === undefined) headersByEvent.set(event, (h = Object.freeze({ [SCHEMA_HEADER]: EVENT_V1, [EVENT_HEADER]: event })));
  return h;
}

function checkEvent(e: EventRecord): void {
  if (e.event.length === 0) throw new RecordError('event: empty event name');
  inRange('event: timestamp', e.timestamp, 0, Number.MAX_SAFE_INTEGER);
}

/**
 * The events topic's records: io.tributary.v1.Event, Avro without a frame (a topic's records
 * carry their schema in the tributary-schema header, as the messages topic's do), so a Kafka
 * consumer decodes them with schemas/event/v1.avsc alone. A v2 would be told apart by that
 * header. The schema is typed fields for what every event has plus a map of typed values for
 * the rest rather than a union of one record per event: EMQX's property columns (conn_props,
 * pub_props, ...) are open maps anyway, a new event or column needs no new schema version, and
 * the values keep the difference between text and bytes and between integers and other numbers,
 * so an event decodes to exactly the columns a rule saw when it was written (JSON would not).
 */
export const eventCodec: RecordCodec<EventRecord> = {
  schema: EVENT_V1,
  version: 1,
  encode(e) {
    checkEvent(e);
    return encodeEventV1(e);
  },
  decode(value) {
    const e = decodeEventV1(value);
    checkEvent(e);
    return e;
  },
};
