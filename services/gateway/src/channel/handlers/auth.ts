import type * as mp from 'mqtt-packet';
import { AuthResult, Credentials, mergeClientAttrs } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import type { Channel } from '../channel';
import { ProtocolViolation } from '../protocol';
import { Steps, wait } from '../steps';

const CONTINUE = 0x18;
const REAUTHENTICATE = 0x19;

/** An enhanced-authentication exchange in progress: for a CONNECT not yet answered, or a re-authentication. */
export interface AuthExchange {
  method: string;
  /** The CONNECT waiting for the exchange's outcome; undefined for a re-authentication. */
  connect: Credentials | undefined;
  /** Goes on with the CONNECT once authenticated (CONNACK carries the method and data). */
  accept: Accept | undefined;
}

type Accept = (auth: AuthProperties | undefined) => Steps;

export interface AuthProperties {
  authenticationMethod: string;
  authenticationData?: Buffer;
}

/**
 * Runs client.authenticate for a CONNECT or one AUTH step and applies its outcome: allow goes
 * on (`accept`), continue sends AUTH 0x18, deny refuses (CONNACK, or DISCONNECT when connected).
 * Credentials naming a method start refused with 0x8C: a method nobody handles stays refused.
 * An answer that waits for I/O holds the client's later packets.
 */
export function authenticate(ch: Channel, cred: Credentials, accept: Accept | undefined): Steps {
  const start: AuthResult = cred.authMethod === undefined ? { result: 'allow' } : { result: 'deny', reasonCode: RC.BAD_AUTHENTICATION_METHOD };
  const hooks = ch.broker.hooks;
  // Nothing checks credentials: the client is let in anonymously (EMQX's is_anonymous).
  const anonymous = !hooks.has('client.authenticate');
  const outcome = hooks.authenticate(cred, start);
  if (!(outcome instanceof Promise)) return apply(ch, cred, outcome, accept, anonymous);
  return wait({ wait: outcome, then: (r) => apply(ch, cred, r, accept, anonymous), hold: true });
}

function apply(ch: Channel, cred: Credentials, r: AuthResult, accept: Accept | undefined, anonymous: boolean): Steps {
  const method = cred.authMethod;
  if (r.result === 'continue' && method !== undefined) {
    ch.auth = { method, connect: cred.reauthenticate ? undefined : cred, accept };
    return { send: { cmd: 'auth', reasonCode: CONTINUE, properties: { authenticationMethod: method, authenticationData: r.authData } } };
  }
  ch.auth = undefined;
  const hooks = ch.broker.hooks;
  if (ch.client && hooks.has('client.check_authn_complete')) {
    const reasonCode = r.result === 'allow' ? RC.SUCCESS : (r.reasonCode ?? RC.NOT_AUTHORIZED);
    hooks.notify('client.check_authn_complete', ch.client, { reasonCode, isSuperuser: r.result === 'allow' && r.isSuperuser === true, isAnonymous: anonymous && r.result === 'allow' });
  }
  if (r.result !== 'allow') {
    const rc = r.reasonCode ?? RC.NOT_AUTHORIZED;
    // DISCONNECT has no 0x86 (§3.14.2.1): a failed re-authentication is 0x87.
    return ch.state === 'connecting' ? { refuse: rc, why: 'authentication failed' } : { close: rc === RC.BAD_USERNAME_OR_PASSWORD ? RC.NOT_AUTHORIZED : rc };
  }
  if (ch.client) {
    ch.client.isSuperuser = r.isSuperuser === true;
    ch.client.acl = r.acl;
    ch.client.clientAttrs = mergeClientAttrs(ch.client.clientAttrs, r.clientAttrs);
  }
  // Checked by the connection's once-a-second ticker; a re-authentication renews (or clears) it.
  ch.credentialsExpireAt = r.expireAt;
  const props = method === undefined ? undefined : { authenticationMethod: method, authenticationData: r.authData };
  if (method !== undefined) ch.authMethod = method;
  if (cred.reauthenticate) return { send: { cmd: 'auth', reasonCode: 0, properties: props } };
  return accept?.(props);
}

/** AUTH from the client (§3.15): the next step of an exchange, or the start of a re-authentication. */
export function handleAuth(ch: Channel, packet: mp.IAuthPacket): Steps {
  const method = packet.properties?.authenticationMethod;
  const rc = packet.reasonCode ?? 0;
  const exchange = ch.auth;
  // The method must stay the one given at CONNECT [MQTT-4.12.0-5], [MQTT-4.12.1-1].
  if (!method || (exchange && method !== exchange.method) || (!exchange && method !== ch.authMethod)) {
    throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'AUTH with a different or missing authentication method');
  }
  const authData = packet.properties?.authenticationData;
  if (rc === CONTINUE && exchange) {
    const base = exchange.connect ?? ch.credentials(method, true);
    return authenticate(ch, { ...base, authData, authContinue: true }, exchange.accept);
  }
  if (rc === REAUTHENTICATE && !exchange && ch.state === 'connected') {
    ch.auth = { method, connect: undefined, accept: undefined };
    return authenticate(ch, { ...ch.credentials(method, true), authData }, undefined);
  }
  throw new ProtocolViolation(RC.PROTOCOL_ERROR, `unexpected AUTH reason 0x${rc.toString(16)}`);
}
