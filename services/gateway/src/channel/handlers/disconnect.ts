import type * as mp from 'mqtt-packet';
import { RC } from '@tributary/mqtt';
import type { Channel } from '../channel';
import { ProtocolViolation } from '../protocol';
import type { Steps } from '../steps';

/** DISCONNECT (§3.14): a normal disconnect discards the will, except 5.0's 0x04. */
export function handleDisconnect(ch: Channel, packet: mp.IDisconnectPacket): Steps {
  const requested = packet.properties?.sessionExpiryInterval;
  if (requested !== undefined && ch.session) {
    // Setting a non-zero expiry after connecting with 0 is a protocol error [MQTT-3.14.2-2].
    if (ch.expiryInterval === 0 && requested > 0) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'session expiry set on DISCONNECT after 0 at CONNECT');
    ch.session.setExpiry(Math.min(requested, Math.floor(ch.config.mqtt.max_session_expiry_interval / 1000)));
  }
  if ((packet.reasonCode ?? 0) !== RC.DISCONNECT_WITH_WILL) ch.will = undefined; // [MQTT-3.1.2-10]
  ch.disconnectProperties = packet.properties;
  ch.disconnected();
}
