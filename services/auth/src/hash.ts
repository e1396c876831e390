import { createHash, pbkdf2 as pbkdf2Callback, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { ConfigProblem } from '@tributary/common';
import { bcryptHash } from './bcrypt-pool';

/**
 * EMQX's password hashes (`password_hash_algorithm`), shared by every password-based
 * authenticator that stores hashes: the built-in database, PostgreSQL and its kin. The stored
 * hash is lowercase hex, except bcrypt's own `$2b$...` string.
 */

const pbkdf2 = promisify(pbkdf2Callback);

/** Where the salt goes: hash(salt + password) for prefix, hash(password + salt) for suffix. */
export type SaltPosition = 'disable' | 'prefix' | 'suffix';
/** The plain digests; `plain` stores the (salted) password itself. */
export type SimpleHashName = 'plain' | 'md5' | 'sha' | 'sha256' | 'sha512';
/** PBKDF2's HMAC digest, EMQX's names (`sha` is SHA-1). */
export type MacFun = 'sha' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

export type PasswordHashAlgorithm =
  | { name: SimpleHashName; salt_position: SaltPosition }
  | { name: 'bcrypt'; salt_rounds: number }
  | { name: 'pbkdf2'; mac_fun: MacFun; iterations: number; dk_length?: number };

const SIMPLE: readonly SimpleHashName[] = ['plain', 'md5', 'sha', 'sha256', 'sha512'];
const SALT_POSITIONS: readonly SaltPosition[] = ['disable', 'prefix', 'suffix'];
const MAC_FUNS: readonly MacFun[] = ['sha', 'sha224', 'sha256', 'sha384', 'sha512'];
/** Node's names for EMQX's. */
const NODE_DIGEST: Record<Exclude<SimpleHashName, 'plain'> | MacFun, string> = { md5: 'md5', sha: 'sha1', sha224: 'sha224', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** Defaults of the fields an algorithm object may leave out (EMQX's). */
export const HASH_DEFAULTS = { salt_position: 'prefix' as SaltPosition, salt_rounds: 10 };

/**
 * A `password_hash_algorithm` object: `{name, salt_position?}` for plain/md5/sha/sha256/sha512,
 * `{name: "bcrypt", salt_rounds?}` (5-10), `{name: "pbkdf2", mac_fun, iterations, dk_length?}`.
 * A problem names the field (`password_hash_algorithm.salt_position: ...`).
 */
export function parseHashAlgorithm(raw: unknown, field = 'password_hash_algorithm'): PasswordHashAlgorithm | ConfigProblem {
  const bad = (key: string, what: string): ConfigProblem => new ConfigProblem(`field "${field}.${key}" ${what}`);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return new ConfigProblem(`field "${field}" must be an object like {"name": "sha256", "salt_position": "suffix"}`);
  const obj = raw as Record<string, unknown>;
  const { name } = obj;
  const allowed = (keys: string[]): ConfigProblem | undefined => {
    const extra = Object.keys(obj).find((k) => k !== 'name' && !keys.includes(k));
    return extra === undefined ? undefined : bad(extra, `is not a field of the ${String(name)} algorithm (fields: name, ${keys.join(', ')})`);
  };
  if (typeof name === 'string' && (SIMPLE as readonly string[]).includes(name)) {
    const salt_position = obj.salt_position ?? HASH_DEFAULTS.salt_position;
    if (typeof salt_position !== 'string' || !(SALT_POSITIONS as readonly string[]).includes(salt_position)) return bad('salt_position', `must be one of ${SALT_POSITIONS.join(', ')}`);
    return allowed(['salt_position']) ?? { name: name as SimpleHashName, salt_position: salt_position as SaltPosition };
  }
  if (name === 'bcrypt') {
    const salt_rounds = obj.salt_rounds ?? HASH_DEFAULTS.salt_rounds;
    if (!Number.isInteger(salt_rounds) || (salt_rounds as number) < 5 || (salt_rounds as number) > 10) return bad('salt_rounds', 'must be a whole number from 5 to 10');
    return allowed(['salt_rounds']) ?? { name, salt_rounds: salt_rounds as number };
  }
  if (name === 'pbkdf2') {
    const { mac_fun, iterations, dk_length } = obj;
    if (typeof mac_fun !== 'string' || !(MAC_FUNS as readonly string[]).includes(mac_fun)) return bad('mac_fun', `is required, one of ${MAC_FUNS.join(', ')}`);
    if (!Number.isInteger(iterations) || (iterations as number) < 1) return bad('iterations', 'is required, a whole number of at least 1');
    if (dk_length !== undefined && (!Number.isInteger(dk_length) || (dk_length as number) < 1 || (dk_length as number) > 1024)) return bad('dk_length', 'must be a whole number from 1 to 1024');
    const alg: PasswordHashAlgorithm = { name, mac_fun: mac_fun as MacFun, iterations: iterations as number };
    if (dk_length !== undefined) alg.dk_length = dk_length as number;
    return allowed(['mac_fun', 'iterations', 'dk_length']) ?? alg;
  }
  return bad('name', `must be one of ${[...SIMPLE, 'bcrypt', 'pbkdf2'].join(', ')}`);
}

/** A new random salt for `alg`: 32 hex digits (EMQX's), bcrypt's own salt string, or "" when salting is disabled. */
export function newSalt(alg: PasswordHashAlgorithm): string {
  if (alg.name === 'bcrypt') return bcrypt.genSaltSync(alg.salt_rounds);
  if (alg.name !== 'pbkdf2' && alg.salt_position === 'disable') return '';
  return randomBytes(16).toString('hex');
}

/**
 * The stored form of `password` with `salt`: lowercase hex (plain: the salted password itself),
 * bcrypt's `$2b$` string (its salt is a bcrypt salt, from {@link newSalt}). bcrypt and pbkdf2 run
 * off the event loop (bcrypt in worker threads, bcrypt-pool.ts; pbkdf2 on libuv's thread pool).
 */
export async function hashPassword(alg: PasswordHashAlgorithm, password: string | Buffer, salt: string): Promise<string> {
  const pw = typeof password === 'string' ? Buffer.from(password) : password;
  switch (alg.name) {
    case 'bcrypt':
      // bcryptjs hashes a string's UTF-8 bytes: decoding as UTF-8 gives back the client's bytes
      // (for any valid UTF-8 password), so hashes made by EMQX or PostgreSQL's pgcrypto verify here.
      return bcryptHash(pw.toString('utf8'), salt);
    case 'pbkdf2': {
      const digest = NODE_DIGEST[alg.mac_fun];
      const length = alg.dk_length ?? createHash(digest).digest().length;
      return (await pbkdf2(pw, salt, alg.iterations, length, digest)).toString('hex');
    }
    default: {
      const s = Buffer.from(alg.salt_position === 'disable' ? '' : salt);
      const input = alg.salt_position === 'suffix' ? Buffer.concat([pw, s]) : Buffer.concat([s, pw]);
      return alg.name === 'plain' ? input.toString() : createHash(NODE_DIGEST[alg.name]).update(input).digest('hex');
    }
  }
}

/**
 * Does `password` hash to `stored` with `salt`? The comparison takes the same time wherever the
 * two differ (timingSafeEqual). Hex hashes compare case-insensitively; a bcrypt hash carries its
 * own salt (`salt` is not needed).
 */
export async function verifyPassword(alg: PasswordHashAlgorithm, password: string | Buffer, stored: string, salt: string): Promise<boolean> {
  let computed: string;
  if (alg.name === 'bcrypt') {
    // An unparseable stored hash is a mismatch, not a crash.
    if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(stored)) return false;
    computed = await hashPassword(alg, password, stored.slice(0, 29));
  } else {
    computed = await hashPassword(alg, password, salt);
  }
  const hex = alg.name !== 'bcrypt' && alg.name !== 'plain';
  return constantTimeEqual(computed, hex ? stored.toLowerCase() : stored);
}

/** String equality in time that depends only on the lengths. */
export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const x = typeof a === 'string' ? Buffer.from(a) : a;
  const y = typeof b === 'string' ? Buffer.from(b) : b;
  // timingSafeEqual needs equal lengths; comparing x with itself keeps the time the same.
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}
