import { ConfigProblem, TributaryError } from '@tributary/common';
import type { Credentials } from '@tributary/hooks';
import { bootstrapUsers } from '../bootstrap';
import { hashPassword, newSalt, parseHashAlgorithm, PasswordHashAlgorithm, verifyPassword } from '../hash';
import { BootstrapFields, parseBootstrapFields, unknownField } from '../provider-config';
import type { Authenticator, AuthnOutcome, ProviderContext, ProviderSpec } from '../types';
import { openUsersTable, PasswordUser, UserStore } from '../users';

/**
 * `password_based:built_in_database`: users and password hashes in the backbone's compacted
 * `auth_users` table, shared by every gateway (EMQX's Mnesia authenticator). Unknown user:
 * ignore (the next authenticator decides); wrong password: deny (0x86); right: allow.
 */

export const BUILTIN_ID = 'password_based:built_in_database';

export interface BuiltinConfig extends BootstrapFields {
  /** Which client field names the user. */
  user_id_type: 'username' | 'clientid';
  /** How new users' passwords are hashed (stored users keep the algorithm they were made with). */
  password_hash_algorithm: PasswordHashAlgorithm;
}

/** EMQX's defaults for the built-in database. */
export const BUILTIN_DEFAULTS = {
  user_id_type: 'username',
  password_hash_algorithm: { name: 'sha256', salt_position: 'suffix' },
} as const satisfies Partial<BuiltinConfig>;

const FIELDS = ['user_id_type', 'password_hash_algorithm', 'bootstrap_file', 'bootstrap_type'];

function parse(raw: Record<string, unknown>): BuiltinConfig | ConfigProblem {
  const extra = unknownField(raw, FIELDS);
  if (extra) return extra;
  const user_id_type = raw.user_id_type ?? BUILTIN_DEFAULTS.user_id_type;
  if (user_id_type !== 'username' && user_id_type !== 'clientid') return new ConfigProblem('field "user_id_type" must be username or clientid');
  const alg = parseHashAlgorithm(raw.password_hash_algorithm ?? BUILTIN_DEFAULTS.password_hash_algorithm);
  if (alg instanceof ConfigProblem) return alg;
  const bootstrap = parseBootstrapFields(raw);
  if (bootstrap instanceof ConfigProblem) return bootstrap;
  return { user_id_type, password_hash_algorithm: alg, ...bootstrap };
}

/** A password user's record, hashed with `alg` and a new salt. */
export async function passwordUser(alg: PasswordHashAlgorithm, password: string, isSuperuser: boolean): Promise<PasswordUser> {
  const salt = newSalt(alg);
  return { v: 1, kind: 'password', password_hash: await hashPassword(alg, password, salt), salt, is_superuser: isSuperuser, algorithm: alg };
}

/** The built-in database authenticator; `users` is its store (for the CLI and HTTP API) once started. */
export class BuiltinAuthenticator implements Authenticator {
  readonly id = BUILTIN_ID;
  private store: UserStore | undefined;

  constructor(
    readonly config: BuiltinConfig,
    private readonly ctx: ProviderContext,
  ) {}

  /** The users of this authenticator; throws before start(). */
  get users(): UserStore {
    if (!this.store) throw new TributaryError('INTERNAL_ERROR', 'the built-in database authenticator is not started');
    return this.store;
  }

  async start(): Promise<void> {
    const alg = this.config.password_hash_algorithm;
    const table = await openUsersTable(this.ctx.backbone);
    this.store = new UserStore(table, `${this.config.user_id_type}:`, (password, isSuperuser) => passwordUser(alg, password, isSuperuser));
    if (this.config.bootstrap_file) await this.bootstrap(this.config.bootstrap_file);
  }

  authenticate(cred: Credentials): AuthnOutcome | Promise<AuthnOutcome> {
    const userId = this.config.user_id_type === 'username' ? cred.username : cred.clientId;
    if (userId === undefined || userId === '') return { result: 'ignore' };
    const user = this.users.record(userId);
    // Unknown here, or a SCRAM user under the same name: another authenticator may know it.
    if (!user || user.kind !== 'password') return { result: 'ignore' };
    if (cred.password === undefined) return { result: 'deny' };
    return verifyPassword(user.algorithm, cred.password, user.password_hash, user.salt).then((ok) => (ok ? { result: 'allow', isSuperuser: user.is_superuser } : { result: 'deny' }));
  }

  private bootstrap(file: string): Promise<void> {
    const alg = this.config.password_hash_algorithm;
    const hash = this.config.bootstrap_type === 'hash';
    return bootstrapUsers({
      authenticator: BUILTIN_ID,
      file,
      required: hash ? ['user_id', 'password_hash'] : ['user_id', 'password'],
      optional: hash ? ['salt', 'is_superuser'] : ['is_superuser'],
      store: this.users,
      logger: this.ctx.logger,
      record: ({ fields }, isSuperuser) =>
        hash
          ? { v: 1, kind: 'password', password_hash: fields.password_hash!, salt: fields.salt ?? '', is_superuser: isSuperuser, algorithm: alg }
          : passwordUser(alg, fields.password!, isSuperuser),
    });
  }
}

/** The ProviderSpec registered in AUTHENTICATORS. */
export const builtinAuthenticatorSpec: ProviderSpec<BuiltinConfig, Authenticator> = {
  parse,
  create: (config, ctx) => new BuiltinAuthenticator(config, ctx),
};
