import type * as mp from 'mqtt-packet';
import { RC } from '@tributary/mqtt';
import type { Channel } from '../channel';

/** PUBACK: the client acknowledged a QoS 1 delivery. Unknown ids are ignored. */
export function handlePuback(ch: Channel, packet: mp.IPubackPacket): void {
  ch.session?.complete(packet.messageId ?? 0, 1);
}

/** PUBREC: first acknowledgement of a QoS 2 delivery; answer PUBREL [MQTT-4.3.3-4]. */
export function handlePubrec(ch: Channel, packet: mp.IPubrecPacket): void {
  const id = packet.messageId ?? 0;
  // A 5.0 PUBREC with an error code ends the delivery: no PUBREL follows (§4.3.3).
  if ((packet.reasonCode ?? 0) >= 0x80) {
    ch.session?.abandon(id);
    return;
  }
  if (!ch.session?.received(id)) ch.sendAck('pubrel', id, RC.PACKET_IDENTIFIER_NOT_FOUND);
}

/** PUBCOMP: the QoS 2 delivery is complete. */
export function handlePubcomp(ch: Channel, packet: mp.IPubcompPacket): void {
  ch.session?.complete(packet.messageId ?? 0, 2);
}

/** PUBREL: release an incoming QoS 2 message; PUBCOMP once the state change is durable. */
export function handlePubrel(ch: Channel, packet: mp.IPubrelPacket): void {
  const session = ch.session;
  if (!session) return;
  const id = packet.messageId ?? 0;
  const known = session.awaitingRel.delete(id);
  // The PUBLISH stops counting against Receive Maximum with the PUBCOMP this answers (§4.9).
  if (known && ch.dialect.v5 && ch.unacked > 0) ch.unacked--;
  const reply = (): void => {
    if (ch.state === 'connected') ch.sendAck('pubcomp', id, known ? RC.SUCCESS : RC.PACKET_IDENTIFIER_NOT_FOUND);
  };
  if (known && session.persistent) ch.broker.persist(session).then(reply, (err: Error) => ch.log.error({ err }, 'session persist failed'));
  else reply();
}
