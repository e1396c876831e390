import type { Backbone } from '@tributary/backbone';
import type { ConfigProblem, Logger } from '@tributary/common';
import type { AuthorizeRequest, Awaitable, ClientInfo, Credentials } from '@tributary/hooks';
import type { AclRule } from './acl';
import type { UserStore } from './users';

/**
 * What one authenticator of the `authentication` chain decides (EMQX's semantics): `ignore`
 * passes the client to the next authenticator; allow and deny end the chain; `continue` is one
 * more round of an MQTT 5.0 enhanced-authentication exchange (SCRAM).
 */
export type AuthnOutcome =
  | { result: 'ignore' }
  | { result: 'allow'; isSuperuser?: boolean; acl?: AclRule[]; expireAt?: number; authData?: Buffer; clientAttrs?: Record<string, string> }
  | { result: 'deny'; reasonCode?: number }
  | { result: 'continue'; authData?: Buffer };

export interface Authenticator {
  /** `<mechanism>:<backend>` (or the mechanism alone), as EMQX names authenticators: "password_based:built_in_database", "jwt". */
  readonly id: string;
  /**
   * The MQTT 5.0 Authentication Method it runs ("SCRAM-SHA-256"), for enhanced authentication;
   * undefined for authenticators that read username and password, which ignore a CONNECT naming a method.
   */
  readonly methods?: readonly string[];
  /** True when its allow may carry the client's own rules (JWT, HTTP): authorization must then run. */
  readonly grantsAcl?: boolean;
  /** The users it keeps, when it keeps its own (built-in database). */
  readonly users?: UserStore;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  authenticate(cred: Credentials): Awaitable<AuthnOutcome>;
}

/** What one authorization source decides: `nomatch` passes the request to the next source (then `no_match`). */
export type AuthzOutcome = 'allow' | 'deny' | 'nomatch';

export interface AuthzSource {
  /** EMQX's source type: "file", "built_in_database", "postgresql", "http". */
  readonly type: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  authorize(client: ClientInfo, req: AuthorizeRequest): Awaitable<AuthzOutcome>;
}

/** What a provider gets when it is created. */
export interface ProviderContext {
  readonly backbone: Backbone;
  readonly logger: Logger;
  readonly nodeName: string;
  /** Where relative file paths in the configuration resolve from. */
  readonly dataDir: string;
  /** A provider's rules changed (a user or rule added elsewhere): clears every client's authorization cache. */
  rulesChanged(): void;
}

/**
 * One kind of authenticator or source: validates its configuration item (every field but
 * `mechanism`, `backend`, `type` and `enable`, which the chain reads) and creates it.
 */
export interface ProviderSpec<C, T> {
  /** The item's fields with the chain's own ones removed; returns the typed item or a problem naming the field. */
  parse(raw: Record<string, unknown>): C | ConfigProblem;
  create(config: C, ctx: ProviderContext): T;
}
