/**
 * Hand-written encoders for the packets on the hot path (PUBLISH without properties and the
 * four acknowledgements), byte-identical to mqtt-packet's output but with one allocation each.
 * Everything else goes through mqtt-packet's generator.
 */

import { writeUtf8 } from '@tributary/common';

const ACK_HEADER = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const;

/** PUBACK/PUBREC/PUBREL/PUBCOMP with reason Success (the 2-byte form is valid in 3.x and 5.0). */
export function encodeAck(cmd: keyof typeof ACK_HEADER, packetId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = ACK_HEADER[cmd];
  b[1] = 2;
  b[2] = packetId >> 8;
  b[3] = packetId & 0xff;
  return b;
}

function varIntLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/**
 * PUBLISH without properties. `v5` adds the empty property length byte. `topicBytes` is the
 * topic's UTF-8 length (callers fanning one message out compute it once).
 */
export function encodePublish(topic: string, topicBytes: number, payload: Buffer, qos: number, retain: boolean, dup: boolean, packetId: number, v5: boolean): Buffer {
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payload.length;
  const buf = Buffer.allocUnsafe(1 + varIntLength(remaining) + remaining);
  buf[0] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  let o = 1;
  let n = remaining;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[o++] = byte;
  } while (n > 0);
  buf[o++] = topicBytes >> 8;
  buf[o++] = topicBytes & 0xff;
  o += writeUtf8(buf, o, topic);
  if (qos > 0) {
    buf[o++] = packetId >> 8;
    buf[o++] = packetId & 0xff;
  }
  if (v5) buf[o++] = 0;
  payload.copy(buf, o);
  return buf;
}
