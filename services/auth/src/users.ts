import type { Backbone, Table } from '@tributary/backbone';
import { ConfigProblem, ConflictError, NotFoundError } from '@tributary/common';
import { PasswordHashAlgorithm, parseHashAlgorithm } from './hash';

/**
 * Users of the built-in database, in the compacted `auth_users` table, one record per user.
 * Each record says how it was made (its hash algorithm, or its SCRAM digest and iterations), so
 * changing the configured algorithm affects new and updated users only: old ones still log in.
 */

export const USERS_TABLE = 'auth_users';

/** A password user (v1): the hash of its password with `salt`, by `algorithm`. */
export interface PasswordUser {
  v: 1;
  kind: 'password';
  password_hash: string;
  salt: string;
  is_superuser: boolean;
  algorithm: PasswordHashAlgorithm;
}

/** A SCRAM user (v1, RFC 5802 §3): hex salt, StoredKey and ServerKey, and the PBKDF2 iterations. */
export interface ScramUser {
  v: 1;
  kind: 'scram';
  algorithm: 'sha256' | 'sha512';
  salt: string;
  stored_key: string;
  server_key: string;
  iterations: number;
  is_superuser: boolean;
}

export type StoredUser = PasswordUser | ScramUser;

/** What the store shows of a user: never its hash. */
export interface UserInfo {
  user_id: string;
  is_superuser: boolean;
}

/** Opens the users table (compacted), creating its topic first. */
export async function openUsersTable(backbone: Backbone): Promise<Table> {
  await backbone.ensureTopics([{ name: USERS_TABLE, cleanup: 'compact' }]);
  return backbone.table(USERS_TABLE);
}

const HEX = /^[0-9a-fA-F]*$/;

/** A record read from the table, or undefined when it is not one this version understands. */
export function decodeUser(value: Buffer | undefined): StoredUser | undefined {
  if (!value) return undefined;
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(value.toString()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!r || r.v !== 1 || typeof r.is_superuser !== 'boolean' || typeof r.salt !== 'string') return undefined;
  if (r.kind === 'password') {
    if (typeof r.password_hash !== 'string' || parseHashAlgorithm(r.algorithm) instanceof ConfigProblem) return undefined;
    return r as unknown as PasswordUser;
  }
  if (r.kind === 'scram') {
    const ok =
      (r.algorithm === 'sha256' || r.algorithm === 'sha512') &&
      typeof r.stored_key === 'string' &&
      typeof r.server_key === 'string' &&
      HEX.test(r.salt) &&
      HEX.test(r.stored_key) &&
      HEX.test(r.server_key) &&
      Number.isInteger(r.iterations) &&
      (r.iterations as number) > 0;
    return ok ? (r as unknown as ScramUser) : undefined;
  }
  return undefined;
}

export function encodeUser(user: StoredUser): Buffer {
  return Buffer.from(JSON.stringify(user));
}

/** Makes a user's record from a password. */
export type UserMaker = (password: string, isSuperuser: boolean) => Promise<StoredUser>;

/**
 * The users of one authenticator: those whose keys start with `prefix` ("username:",
 * "clientid:", "scram:"). Every read goes to the live table, so a user another process added is
 * seen as soon as the table has it. For `tributary ctl users` and the HTTP API.
 */
export class UserStore {
  constructor(
    readonly table: Table,
    readonly prefix: string,
    private readonly make: UserMaker,
  ) {}

  /** The stored record of a user, or undefined (unknown, or a record this version cannot read). */
  record(userId: string): StoredUser | undefined {
    return decodeUser(this.table.get(this.prefix + userId));
  }

  /** Adds a user; a user that exists already is a ConflictError (USER_EXISTS). */
  async add(userId: string, password: string, isSuperuser = false): Promise<UserInfo> {
    if (this.table.has(this.prefix + userId)) throw new ConflictError('USER_EXISTS', `user "${userId}" exists already`);
    await this.table.set(this.prefix + userId, encodeUser(await this.make(password, isSuperuser)));
    return { user_id: userId, is_superuser: isSuperuser };
  }

  /** Changes a user's password and/or superuser flag; an unknown user is a NotFoundError (USER_NOT_FOUND). */
  async update(userId: string, change: { password?: string; is_superuser?: boolean }): Promise<UserInfo> {
    const old = this.record(userId);
    if (!old) throw this.notFound(userId);
    const isSuperuser = change.is_superuser ?? old.is_superuser;
    const next = change.password !== undefined ? await this.make(change.password, isSuperuser) : { ...old, is_superuser: isSuperuser };
    await this.table.set(this.prefix + userId, encodeUser(next));
    return { user_id: userId, is_superuser: isSuperuser };
  }

  /** Removes a user; an unknown user is a NotFoundError. */
  async delete(userId: string): Promise<void> {
    if (!this.table.has(this.prefix + userId)) throw this.notFound(userId);
    await this.table.delete(this.prefix + userId);
  }

  /** One user; an unknown user is a NotFoundError. */
  get(userId: string): UserInfo {
    const r = this.record(userId);
    if (!r) throw this.notFound(userId);
    return { user_id: userId, is_superuser: r.is_superuser };
  }

  /** Every user, sorted by user_id (the HTTP API pages it). */
  list(): UserInfo[] {
    const users: UserInfo[] = [];
    for (const [key, value] of this.table.entries()) {
      if (!key.startsWith(this.prefix)) continue;
      const r = decodeUser(value);
      if (r) users.push({ user_id: key.slice(this.prefix.length), is_superuser: r.is_superuser });
    }
    return users.sort((a, b) => (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0));
  }

  /**
   * Inserts the users that do not exist yet, as one write (EMQX's bootstrap: existing users,
   * perhaps changed since, are left alone). Returns how many were added. Over Kafka, call
   * after `table.sync()` so users other processes added count as existing.
   */
  async insertMissing(users: readonly { userId: string; record: StoredUser }[]): Promise<number> {
    const changes: [string, Buffer][] = [];
    const seen = new Set<string>();
    for (const u of users) {
      const key = this.prefix + u.userId;
      if (this.table.has(key) || seen.has(key)) continue;
      seen.add(key);
      changes.push([key, encodeUser(u.record)]);
    }
    if (changes.length) await this.table.apply(changes);
    return changes.length;
  }

  private notFound(userId: string): NotFoundError {
    return new NotFoundError('USER_NOT_FOUND', `user "${userId}" does not exist`);
  }
}
