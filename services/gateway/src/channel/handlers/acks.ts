import type * as mp from 'mqtt-packet';
import { RC } from '@tributary/mqtt';
import type { Channel } from '../channel';
import { Steps, wait } from '../steps';

/** PUBACK: the client acknowledged a QoS 1 delivery. Unknown ids are ignored. */
export function handlePuback(ch: Channel, packet: mp.IPubackPacket): Steps {
  ch.session?.complete(packet.messageId ?? 0, 1, packet.properties);
}

/** PUBREC: first acknowledgement of a QoS 2 delivery; answer PUBREL [MQTT-4.3.3-4]. */
export function handlePubrec(ch: Channel, packet: mp.IPubrecPacket): Steps {
  const id = packet.messageId ?? 0;
  // A 5.0 PUBREC with an error code ends the delivery: no PUBREL follows (§4.3.3).
  if ((packet.reasonCode ?? 0) >= 0x80) return void ch.session?.abandon(id);
  if (!ch.session?.received(id)) return { ack: 'pubrel', id, rc: RC.PACKET_IDENTIFIER_NOT_FOUND };
}

/** PUBCOMP: the QoS 2 delivery is complete. */
export function handlePubcomp(ch: Channel, packet: mp.IPubcompPacket): Steps {
  ch.session?.complete(packet.messageId ?? 0, 2, packet.properties);
}

/** PUBREL: release an incoming QoS 2 message; PUBCOMP once the state change is durable. */
export function handlePubrel(ch: Channel, packet: mp.IPubrelPacket): Steps {
  const session = ch.session;
  if (!session) return;
  const id = packet.messageId ?? 0;
  // The PUBLISH stops counting against Receive Maximum with the PUBCOMP this answers (§4.9).
  const known = session.release(id);
  const pubcomp = { ack: 'pubcomp', id, rc: known ? RC.SUCCESS : RC.PACKET_IDENTIFIER_NOT_FOUND } as const;
  if (!known || !session.persistent) return pubcomp;
  return wait({ wait: ch.broker.persist(session), then: () => pubcomp, failed: (err) => void ch.log.error({ err }, 'session persist failed') });
}
