import type * as mp from 'mqtt-packet';
import { RC } from '@tributary/mqtt';
import type { AuthStep, EnhancedAuthProvider } from '../../addons/enhanced-auth';
import type { Channel } from '../channel';
import { ProtocolViolation } from '../protocol';
import { handleConnect } from './connect';

const CONTINUE = 0x18;
const REAUTHENTICATE = 0x19;

/** An AUTH exchange in progress: for a CONNECT not yet answered, or a re-authentication. */
export interface AuthExchange {
  method: string;
  provider: EnhancedAuthProvider;
  connect: mp.IConnectPacket | undefined;
}

/** CONNECT with an Authentication Method: starts the exchange, or CONNACK 0x8C if nobody handles it. */
export function startConnectAuth(ch: Channel, packet: mp.IConnectPacket, method: string): void {
  const provider = ch.broker.enhancedAuth.get(method);
  if (!provider) {
    ch.send(ch.dialect.connack(RC.BAD_AUTHENTICATION_METHOD, false));
    ch.close(RC.BAD_AUTHENTICATION_METHOD);
    return;
  }
  ch.auth = { method, provider, connect: packet };
  const ctx = { clientId: packet.clientId, username: packet.username, reauthenticate: false };
  run(ch, () => provider.start(ctx, packet.properties?.authenticationData));
}

/** AUTH from the client (§3.15): continue the exchange, or start a re-authentication. */
export function handleAuth(ch: Channel, packet: mp.IAuthPacket): void {
  const method = packet.properties?.authenticationMethod;
  const rc = packet.reasonCode ?? 0;
  const exchange = ch.auth;
  // The method must stay the one given at CONNECT [MQTT-4.12.0-5], [MQTT-4.12.1-1].
  if (!method || (exchange && method !== exchange.method) || (!exchange && method !== ch.authMethod)) {
    throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'AUTH with a different or missing authentication method');
  }
  const data = packet.properties?.authenticationData;
  if (rc === CONTINUE && exchange) {
    const ctx = { clientId: ch.clientId || exchange.connect?.clientId || '', username: ch.username, reauthenticate: !exchange.connect };
    return run(ch, () => exchange.provider.continue(ctx, data));
  }
  if (rc === REAUTHENTICATE && !exchange && ch.state === 'connected') {
    const provider = ch.broker.enhancedAuth.get(method)!;
    ch.auth = { method, provider, connect: undefined };
    return run(ch, () => provider.start({ clientId: ch.clientId, username: ch.username, reauthenticate: true }, data));
  }
  throw new ProtocolViolation(RC.PROTOCOL_ERROR, `unexpected AUTH reason 0x${rc.toString(16)}`);
}

function run(ch: Channel, step: () => AuthStep | Promise<AuthStep>): void {
  Promise.resolve()
    .then(step)
    .then(
      (s) => apply(ch, s),
      (err: Error) => {
        ch.log.error({ err, clientId: ch.clientId }, 'enhanced authentication provider failed');
        apply(ch, { result: 'fail', reasonCode: RC.UNSPECIFIED_ERROR });
      },
    );
}

function apply(ch: Channel, step: AuthStep): void {
  const exchange = ch.auth;
  if (!exchange || ch.state === 'closed') return;
  const props = { authenticationMethod: exchange.method, authenticationData: step.result === 'fail' ? undefined : step.data };
  if (step.result === 'continue') {
    ch.send({ cmd: 'auth', reasonCode: CONTINUE, properties: props });
    return;
  }
  ch.auth = undefined;
  const connect = exchange.connect;
  if (step.result === 'fail') {
    const rc = step.reasonCode ?? RC.NOT_AUTHORIZED;
    if (connect) ch.send(ch.dialect.connack(rc, false));
    ch.close(rc);
    return;
  }
  ch.authMethod = exchange.method;
  if (connect) handleConnect(ch, connect, props);
  else ch.send({ cmd: 'auth', reasonCode: 0, properties: props });
}
