import { randomBytes } from 'node:crypto';
import { ConfigProblem, TributaryError } from '@tributary/common';
import type { Credentials } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import { bootstrapUsers } from '../bootstrap';
import { BootstrapFields, parseBootstrapFields, unknownField } from '../provider-config';
import { parseClientFirst, scramKeys, scramMethod, ScramDigest, ScramExchange, scramSalt, serverFirst, verifyClientFinal } from '../scram';
import type { Authenticator, AuthnOutcome, ProviderContext, ProviderSpec } from '../types';
import { openUsersTable, ScramUser, UserStore } from '../users';

/**
 * `scram:built_in_database`: MQTT 5.0 enhanced authentication (§4.12) with SCRAM-SHA-256 or
 * SCRAM-SHA-512 against users in the `auth_users` table (keys `scram:<user>`). CONNECT (or AUTH
 * 0x19) carries client-first, the server answers server-first in AUTH 0x18, the client's AUTH
 * 0x18 carries client-final, and CONNACK (or AUTH 0x00) carries server-final.
 */

export const SCRAM_ID = 'scram:built_in_database';
/** Key prefix of SCRAM users in auth_users. */
export const SCRAM_PREFIX = 'scram:';

export interface ScramConfig extends BootstrapFields {
  /** The digest: the method is SCRAM-SHA-256 or SCRAM-SHA-512. */
  algorithm: ScramDigest;
  /** PBKDF2 iterations for users created from a password. */
  iteration_count: number;
}

export const SCRAM_DEFAULTS = { algorithm: 'sha256', iteration_count: 4096 } as const satisfies Partial<ScramConfig>;

/** Exchanges waiting for client-final: at most this many, each for at most this long. */
const MAX_EXCHANGES = 10_000;
const EXCHANGE_TIMEOUT_MS = 30_000;

function parse(raw: Record<string, unknown>): ScramConfig | ConfigProblem {
  const extra = unknownField(raw, ['algorithm', 'iteration_count', 'bootstrap_file', 'bootstrap_type']);
  if (extra) return extra;
  const algorithm = raw.algorithm ?? SCRAM_DEFAULTS.algorithm;
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return new ConfigProblem('field "algorithm" must be sha256 or sha512');
  const iteration_count = raw.iteration_count ?? SCRAM_DEFAULTS.iteration_count;
  if (!Number.isInteger(iteration_count) || (iteration_count as number) < 1 || (iteration_count as number) > 10_000_000) return new ConfigProblem('field "iteration_count" must be a whole number from 1 to 10000000');
  const bootstrap = parseBootstrapFields(raw);
  if (bootstrap instanceof ConfigProblem) return bootstrap;
  return { algorithm, iteration_count: iteration_count as number, ...bootstrap };
}

/** A SCRAM user's record from a password: a new salt, then StoredKey and ServerKey. */
export function scramUser(digest: ScramDigest, iterations: number, password: string, isSuperuser: boolean): ScramUser {
  const keys = scramKeys(digest, password, scramSalt(), iterations);
  return { v: 1, kind: 'scram', algorithm: digest, salt: keys.salt.toString('hex'), stored_key: keys.storedKey.toString('hex'), server_key: keys.serverKey.toString('hex'), iterations, is_superuser: isSuperuser };
}

interface Pending {
  exchange: ScramExchange;
  isSuperuser: boolean;
  deadline: number;
}

/** The SCRAM authenticator; `users` is its store once started. */
export class ScramAuthenticator implements Authenticator {
  readonly id = SCRAM_ID;
  readonly methods: readonly string[];
  /** Exchanges waiting for client-final, by client id, oldest first. */
  private readonly pending = new Map<string, Pending>();
  private store: UserStore | undefined;

  constructor(
    readonly config: ScramConfig,
    private readonly ctx: ProviderContext,
    /** The server's nonce (tests give a fixed one to check RFC 7677's example). */
    private readonly serverNonce: () => string = () => randomBytes(18).toString('base64'),
  ) {
    this.methods = [scramMethod(config.algorithm)];
  }

  /** The SCRAM users; throws before start(). */
  get users(): UserStore {
    if (!this.store) throw new TributaryError('INTERNAL_ERROR', 'the SCRAM authenticator is not started');
    return this.store;
  }

  async start(): Promise<void> {
    const { algorithm, iteration_count } = this.config;
    this.store = new UserStore(await openUsersTable(this.ctx.backbone), SCRAM_PREFIX, async (password, isSuperuser) => scramUser(algorithm, iteration_count, password, isSuperuser));
    if (this.config.bootstrap_file) await this.bootstrap(this.config.bootstrap_file);
  }

  async stop(): Promise<void> {
    this.pending.clear();
  }

  /** How many exchanges wait for client-final (for tests and metrics). */
  get pendingExchanges(): number {
    return this.pending.size;
  }

  authenticate(cred: Credentials): AuthnOutcome {
    try {
      return cred.authContinue ? this.final(cred) : this.first(cred);
    } catch (err) {
      // Never out of the process: a bug in a step is a failed exchange.
      this.pending.delete(cred.clientId);
      this.ctx.logger.warn({ err: (err as Error).message, clientId: cred.clientId }, 'SCRAM exchange failed');
      return { result: 'deny' };
    }
  }

  private first(cred: Credentials): AuthnOutcome {
    this.pending.delete(cred.clientId);
    const first = parseClientFirst(cred.authData);
    if (!first) return { result: 'deny' };
    // The SCRAM user is the MQTT username when the client sent one: authorization rules name it,
    // and a re-authentication may not switch to another user (and take its superuser flag).
    if (cred.username !== undefined && cred.username !== first.username) return { result: 'deny' };
    const user = this.users.record(first.username);
    // Unknown here: another authenticator with this method may know the user.
    if (!user || user.kind !== 'scram' || user.algorithm !== this.config.algorithm) return { result: 'ignore' };
    const nonce = first.clientNonce + this.serverNonce();
    const keys = { salt: Buffer.from(user.salt, 'hex'), iterations: user.iterations, storedKey: Buffer.from(user.stored_key, 'hex'), serverKey: Buffer.from(user.server_key, 'hex') };
    const exchange: ScramExchange = { digest: this.config.algorithm, first, nonce, keys, serverFirst: serverFirst(nonce, keys) };
    this.remember(cred.clientId, { exchange, isSuperuser: user.is_superuser, deadline: Date.now() + EXCHANGE_TIMEOUT_MS });
    return { result: 'continue', authData: Buffer.from(exchange.serverFirst) };
  }

  private final(cred: Credentials): AuthnOutcome {
    const p = this.pending.get(cred.clientId);
    this.pending.delete(cred.clientId);
    if (!p || p.deadline < Date.now()) return { result: 'deny' };
    const check = verifyClientFinal(p.exchange, cred.authData);
    if ('serverFinal' in check) return { result: 'allow', isSuperuser: p.isSuperuser, authData: Buffer.from(check.serverFinal) };
    // A wrong password is 0x86 in CONNACK; DISCONNECT has no 0x86 (§3.14.2.1), so a re-authentication gets 0x87.
    if (check.error === 'invalid-proof' && !cred.reauthenticate) return { result: 'deny', reasonCode: RC.BAD_USERNAME_OR_PASSWORD };
    return { result: 'deny' };
  }

  private remember(clientId: string, p: Pending): void {
    const now = Date.now();
    // Oldest first: drop the expired ones at the front, then the oldest while full.
    for (const [id, old] of this.pending) {
      if (old.deadline >= now && this.pending.size < MAX_EXCHANGES) break;
      this.pending.delete(id);
    }
    this.pending.set(clientId, p);
  }

  private bootstrap(file: string): Promise<void> {
    const { algorithm, iteration_count } = this.config;
    const hash = this.config.bootstrap_type === 'hash';
    const keyBytes = algorithm === 'sha256' ? 32 : 64;
    return bootstrapUsers({
      authenticator: SCRAM_ID,
      file,
      required: hash ? ['user_id', 'stored_key', 'server_key', 'salt'] : ['user_id', 'password'],
      optional: ['is_superuser'],
      store: this.users,
      logger: this.ctx.logger,
      record: ({ fields }, isSuperuser, problem) => {
        if (!hash) return scramUser(algorithm, iteration_count, fields.password!, isSuperuser);
        const hex = (name: 'salt' | 'stored_key' | 'server_key', bytes?: number): string => {
          const v = fields[name] ?? '';
          if (!/^([0-9a-fA-F]{2})+$/.test(v) || (bytes !== undefined && v.length !== bytes * 2)) throw problem(`${name} must be ${bytes ?? 'some'} bytes in hex`);
          return v.toLowerCase();
        };
        return { v: 1, kind: 'scram', algorithm, salt: hex('salt'), stored_key: hex('stored_key', keyBytes), server_key: hex('server_key', keyBytes), iterations: iteration_count, is_superuser: isSuperuser };
      },
    });
  }
}

/** The ProviderSpec registered in AUTHENTICATORS. */
export const scramAuthenticatorSpec: ProviderSpec<ScramConfig, Authenticator> = {
  parse,
  create: (config, ctx) => new ScramAuthenticator(config, ctx),
};
