import type * as mp from 'mqtt-packet';
import type { Message } from '@tributary/mqtt';

export type AckCmd = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp';

/**
 * What a packet handler asks of the channel, instead of doing it: replies to send, a close, and
 * operations to wait for with what follows them. Handlers return steps; `Channel.run` is the one
 * place that performs them, in order, awaits what must be awaited and drops what follows an
 * operation once the connection closed.
 */
export type Step =
  /** Send this packet. */
  | { send: mp.Packet }
  /** PUBACK/PUBREC/PUBREL/PUBCOMP (Success takes a fast path). `own`: the client's own copy of this message waits for it. `reason`: 5.0 Reason String of an error code. */
  | { ack: AckCmd; id: number; rc: number; own?: Message; reason?: string }
  /** The client's own copy of this message need not wait any longer (its acknowledgement will never be written). */
  | { release: Message }
  /** Refuse the CONNECT: CONNACK with this reason code (client.connack sees it), then close. */
  | { refuse: number; why: string }
  /** Close the connection (5.0: DISCONNECT with this reason code first). */
  | { close: number }
  /** Run `call` now, in order with the other steps (work that must follow a reply, such as attaching the session after CONNACK). */
  | { call: () => Steps }
  /** Publish through the broker, counting it as pending until durable; then `done`'s steps, or `failed`'s (default: log, close with 0x88). */
  | { publish: Message; own: boolean; done?: () => Steps; failed?: (err: Error) => Steps }
  | Wait<unknown>;

/** Wait for `wait`; then `then`'s steps (or `failed`'s), unless the connection closed meanwhile (`always`: regardless). */
export interface Wait<T> {
  wait: Promise<T>;
  then?: (value: T) => Steps;
  failed?: (err: Error) => Steps;
  /** Later packets wait for it too (reading pauses; parsed ones are kept in order). */
  hold?: boolean;
  always?: boolean;
}

export type Steps = Step | readonly Step[] | undefined | void;

/** A typed Wait (TypeScript infers `T` from the promise). */
export function wait<T>(w: Wait<T>): Step {
  return w as Wait<unknown>;
}
