import { ConflictError } from '@tributary/common';
import type { AuthenticateReply, Credentials, HookRegistry } from '@tributary/hooks';

/**
 * MQTT 5.0 enhanced authentication (§4.12): the hook point where authentication methods
 * (SCRAM, Kerberos, ...) plug in. The channel runs the AUTH exchange; a provider only decides.
 * A CONNECT naming a method no provider handles gets CONNACK 0x8C.
 */

export type AuthStep =
  /** Authenticated; `data` goes back in CONNACK (or AUTH 0x00 on re-authentication). */
  | { result: 'success'; data?: Buffer }
  /** Another round: `data` goes to the client in AUTH 0x18 (Continue authentication). */
  | { result: 'continue'; data?: Buffer }
  /** Refused, with a CONNACK/DISCONNECT reason code (default 0x87 Not authorized). */
  | { result: 'fail'; reasonCode?: number };

export interface AuthContext {
  clientId: string;
  username: string | undefined;
  /** True for a re-authentication of a connected client (AUTH 0x19). */
  reauthenticate: boolean;
}

export interface EnhancedAuthProvider {
  /** The Authentication Method name it handles (e.g. "SCRAM-SHA-256"). */
  readonly method: string;
  /** First step, with the Authentication Data of CONNECT (or of AUTH 0x19). */
  start(ctx: AuthContext, data: Buffer | undefined): AuthStep | Promise<AuthStep>;
  /** Later steps, with the Authentication Data of the client's AUTH 0x18. */
  continue(ctx: AuthContext, data: Buffer | undefined): AuthStep | Promise<AuthStep>;
}

/**
 * The providers by method, on the hooks: client.authenticate at the built-in authentication
 * priority answers every credential that names a registered method (each AUTH step is one
 * authenticate call); a method nobody registered stays refused with 0x8C (the channel starts
 * such credentials from that refusal). Registering a method twice is an error.
 */
export class EnhancedAuthRegistry {
  private readonly providers = new Map<string, EnhancedAuthProvider>();

  constructor(private readonly hooks: HookRegistry) {}

  register(provider: EnhancedAuthProvider): void {
    if (this.providers.has(provider.method)) throw new ConflictError('AUTH_METHOD_REGISTERED', `an enhanced authentication provider for ${provider.method} is already registered`);
    if (this.providers.size === 0) this.hooks.add('client.authenticate', { name: 'enhanced_auth', priority: 'authn' }, (cred) => this.authenticate(cred));
    this.providers.set(provider.method, provider);
  }

  get(method: string): EnhancedAuthProvider | undefined {
    return this.providers.get(method);
  }

  private authenticate(cred: Credentials): AuthenticateReply | Promise<AuthenticateReply> {
    const provider = cred.authMethod === undefined ? undefined : this.providers.get(cred.authMethod);
    if (!provider) return undefined;
    const ctx = { clientId: cred.clientId, username: cred.username, reauthenticate: cred.reauthenticate === true };
    const step = cred.authContinue ? provider.continue(ctx, cred.authData) : provider.start(ctx, cred.authData);
    return step instanceof Promise ? step.then(reply) : reply(step);
  }
}

function reply(step: AuthStep): AuthenticateReply {
  if (step.result === 'fail') return { stop: true, result: 'deny', reasonCode: step.reasonCode };
  return { stop: true, result: step.result === 'success' ? 'allow' : 'continue', authData: step.data };
}
