/**
 * A column value of an event, as the rule engine computes with it (services/rules value.ts):
 * text is a string, bytes that are not valid UTF-8 a Buffer, maps are plain objects. An
 * undefined map entry is a missing column and is not stored.
 */
export type EventValue = undefined | null | boolean | number | string | Buffer | EventValue[] | EventColumns;

/** The columns of an event by EMQX's names. */
export interface EventColumns {
  [column: string]: EventValue;
}

/**
 * One event of the events topic (io.tributary.v1.Event): the columns every event has (or most
 * do) typed, the rest in `columns`. Together they are exactly what a rule selecting from the
 * event's `$events/...` source sees.
 */
export interface EventRecord {
  /** EMQX's event name, e.g. `client.connected`. */
  event: string;
  /** When it happened, ms since the epoch. */
  timestamp: number;
  node: string;
  clientid: string | undefined;
  username: string | undefined;
  /** Every other column (without event, timestamp, node, clientid, username). */
  columns: EventColumns;
}
