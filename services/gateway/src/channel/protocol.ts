import type * as mp from 'mqtt-packet';
import { connackCodeV3, RC } from '@tributary/mqtt';

/**
 * Everything that differs between MQTT 3.x and 5.0 when the broker builds a reply, in one
 * place, so handlers never branch on the protocol version themselves.
 */
export interface Dialect {
  readonly version: 3 | 4 | 5;
  readonly v5: boolean;
  connack(reasonCode: number, sessionPresent: boolean, properties?: mp.IConnackPacket['properties']): mp.IConnackPacket;
  /** The DISCONNECT to send before closing, or undefined for 3.x (which just closes). */
  disconnect(reasonCode: number): mp.IDisconnectPacket | undefined;
  /** A SUBACK/UNSUBACK failure code for an invalid filter. */
  subscribeFailure(reasonCode: number): number;
  ack(cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', messageId: number, reasonCode: number): mp.IPubackPacket | mp.IPubrecPacket | mp.IPubrelPacket | mp.IPubcompPacket;
  unsuback(messageId: number, reasonCodes: number[]): mp.IUnsubackPacket;
}

const v3 = (version: 3 | 4): Dialect => ({
  version,
  v5: false,
  connack: (rc, sessionPresent) => ({ cmd: 'connack', returnCode: connackCodeV3(rc), sessionPresent: rc === RC.SUCCESS && sessionPresent }),
  disconnect: () => undefined,
  subscribeFailure: () => 0x80,
  ack: (cmd, messageId) => ({ cmd, messageId }) as mp.IPubackPacket,
  unsuback: (messageId) => ({ cmd: 'unsuback', messageId }) as mp.IUnsubackPacket,
});

const v5: Dialect = {
  version: 5,
  v5: true,
  connack: (rc, sessionPresent, properties) => ({ cmd: 'connack', reasonCode: rc, sessionPresent: rc === RC.SUCCESS && sessionPresent, properties }),
  disconnect: (reasonCode) => ({ cmd: 'disconnect', reasonCode }),
  subscribeFailure: (rc) => rc,
  ack: (cmd, messageId, reasonCode) => ({ cmd, messageId, reasonCode }) as mp.IPubackPacket,
  // One reason code per filter [MQTT-3.11.3-1]; mqtt-packet reads them from `granted` (without it, generate throws).
  unsuback: (messageId, reasonCodes) => ({ cmd: 'unsuback', messageId, granted: reasonCodes }),
};

const dialects = { 3: v3(3), 4: v3(4), 5: v5 } as const;

export function dialectFor(protocolVersion: number): Dialect {
  return dialects[protocolVersion as 3 | 4 | 5] ?? dialects[4];
}

/** A protocol violation detected by a handler: close with this reason code (v5 DISCONNECT). The class is the error tree's. */
export { ProtocolError as ProtocolViolation } from '@tributary/common';
