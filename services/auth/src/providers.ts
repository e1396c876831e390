import { BUILTIN_ID, builtinAuthenticatorSpec } from './authn/builtin';
import { SCRAM_ID, scramAuthenticatorSpec } from './authn/scram';
import { builtinAuthzSpec } from './authz/builtin';
import { httpAuthenticator } from './authn/http';
import { jwtAuthenticator } from './authn/jwt';
import { httpSource } from './authz/http';
import { fileSourceSpec } from './authz/file';
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
  [BUILTIN_ID]: builtinAuthenticatorSpec,
  [SCRAM_ID]: scramAuthenticatorSpec,
  'password_based:http': httpAuthenticator,
  jwt: jwtAuthenticator,
  'password_based:postgresql': postgresAuthenticatorSpec,
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const AUTHZ_SOURCES: Record<string, ProviderSpec<any, AuthzSource>> = {
  built_in_database: builtinAuthzSpec,
  http: httpSource,
  file: fileSourceSpec,
  postgresql: postgresSourceSpec,
};
