import { Packet, RC } from '@tributary/mqtt';
import type { Channel } from './channel';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './handlers/acks';
import { handleAuth } from './handlers/auth';
import { handleConnect } from './handlers/connect';
import { handleDisconnect } from './handlers/disconnect';
import { handlePublish } from './handlers/publish';
import { handleSubscribe, handleUnsubscribe } from './handlers/subscribe';
import { checkProperties } from './properties';
import { dialectFor, ProtocolViolation } from './protocol';
import type { Steps } from './steps';

type Handlers = { [C in Packet['cmd']]?: (ch: Channel, packet: Extract<Packet, { cmd: C }>) => Steps };

/** One handler per packet type a connected client may send. */
const HANDLERS: Handlers = {
  publish: handlePublish,
  puback: handlePuback,
  pubrec: handlePubrec,
  pubrel: handlePubrel,
  pubcomp: handlePubcomp,
  subscribe: handleSubscribe,
  unsubscribe: handleUnsubscribe,
  pingreq: () => ({ send: { cmd: 'pingresp' } }),
  disconnect: handleDisconnect,
  connect: () => {
    // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
    throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'second CONNECT');
  },
  auth: (ch, packet) => {
    if (!ch.authMethod) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'AUTH without an authentication method');
    return handleAuth(ch, packet);
  },
};

/**
 * The connect-state rules in one place, then one handler per packet type. Returns what the
 * channel must do; throws ProtocolViolation for a packet that ends the connection.
 */
export function dispatch(ch: Channel, packet: Packet): Steps {
  if (ch.state === 'connecting') {
    // During enhanced authentication only AUTH may come (§4.12).
    if (ch.auth) {
      if (packet.cmd !== 'auth') throw new ProtocolViolation(RC.PROTOCOL_ERROR, `${packet.cmd} during authentication`);
      checkProperties(packet);
      return handleAuth(ch, packet);
    }
    // The first packet must be CONNECT [MQTT-3.1.0-1].
    if (packet.cmd !== 'connect') throw new ProtocolViolation(RC.PROTOCOL_ERROR, `${packet.cmd} before CONNECT`);
    if (packet.protocolVersion === 5) {
      ch.dialect = dialectFor(5);
      ch.io.setProtocolVersion(5);
      checkProperties(packet);
    }
    return handleConnect(ch, packet);
  }
  // Only 5.0 packets carry properties.
  if ((packet as { properties?: unknown }).properties) checkProperties(packet);
  const handler = HANDLERS[packet.cmd] as ((ch: Channel, packet: Packet) => Steps) | undefined;
  // Server-to-client packets (CONNACK, SUBACK, ...) are never valid from a client.
  if (!handler) throw new ProtocolViolation(RC.PROTOCOL_ERROR, `unexpected ${packet.cmd} from a client`);
  return handler(ch, packet);
}
