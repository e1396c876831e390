import { postgresAuthenticatorSpec } from './authn/postgresql';
import { postgresSourceSpec } from './authz/postgresql';
import type { Authenticator, AuthzSource, ProviderSpec } from './types';

/**
 * Every authenticator and authorization source by the name the configuration gives it. An
 * authenticator is `<mechanism>:<backend>` (or the mechanism alone), a source its `type`,
 * EMQX's names. A new kind is one line here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const AUTHENTICATORS: Record<string, ProviderSpec<any, Authenticator>> = {
  'password_based:postgresql': postgresAuthenticatorSpec,
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const AUTHZ_SOURCES: Record<string, ProviderSpec<any, AuthzSource>> = {
  postgresql: postgresSourceSpec,
};
