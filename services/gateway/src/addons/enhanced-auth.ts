import { ConflictError } from '@tributary/common';

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

/** The providers by method. Registering a method twice is an error. */
export class EnhancedAuthRegistry {
  private readonly providers = new Map<string, EnhancedAuthProvider>();

  register(provider: EnhancedAuthProvider): void {
    if (this.providers.has(provider.method)) throw new ConflictError('AUTH_METHOD_REGISTERED', `an enhanced authentication provider for ${provider.method} is already registered`);
    this.providers.set(provider.method, provider);
  }

  get(method: string): EnhancedAuthProvider | undefined {
    return this.providers.get(method);
  }
}
