import { createHash, pbkdf2, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { ConfigProblem } from '@tributary/common';

/*
 * Password hash checks for the PostgreSQL authenticator, EMQX's `password_hash_algorithm`; to be
 * merged with hash.ts by the lead.
 */

/** A digest EMQX names for simple hashes: lowercase hex of hash(salt ‖ password) or hash(password ‖ salt). */
export type SimpleHashName = 'plain' | 'md5' | 'sha' | 'sha256' | 'sha512';
export type SaltPosition = 'disable' | 'prefix' | 'suffix';
export type MacFun = 'md4' | 'md5' | 'ripemd160' | 'sha' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** EMQX's `password_hash_algorithm`. */
export type HashAlgorithm =
  | { name: SimpleHashName; salt_position: SaltPosition }
  | { name: 'bcrypt'; salt_rounds: number }
  | { name: 'pbkdf2'; mac_fun: MacFun; iterations: number; dk_length?: number };

/** EMQX's default: sha256 with the salt before the password. */
export const DEFAULT_HASH_ALGORITHM: HashAlgorithm = { name: 'sha256', salt_position: 'prefix' };

const SIMPLE: readonly string[] = ['plain', 'md5', 'sha', 'sha256', 'sha512'];
const MAC_FUNS: readonly string[] = ['md4', 'md5', 'ripemd160', 'sha', 'sha224', 'sha256', 'sha384', 'sha512'];
/** Node's digest names for EMQX's. */
const DIGEST: Record<string, string> = { md4: 'md4', md5: 'md5', ripemd160: 'ripemd160', sha: 'sha1', sha224: 'sha224', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** Validates a `password_hash_algorithm` object (undefined: the default); problems name the field. */
export function parseHashAlgorithm(raw: unknown): HashAlgorithm | ConfigProblem {
  if (raw === undefined) return DEFAULT_HASH_ALGORITHM;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return new ConfigProblem('password_hash_algorithm: expected an object {name, ...}');
  const r = raw as Record<string, unknown>;
  const known = (keys: string[]): ConfigProblem | undefined => {
    const extra = Object.keys(r).filter((k) => k !== 'name' && !keys.includes(k));
    return extra.length ? new ConfigProblem(`password_hash_algorithm: unknown field "${extra[0]}" for ${String(r.name)}`) : undefined;
  };
  if (typeof r.name === 'string' && SIMPLE.includes(r.name)) {
    const salt_position = r.salt_position ?? 'prefix';
    if (salt_position !== 'disable' && salt_position !== 'prefix' && salt_position !== 'suffix') {
      return new ConfigProblem('password_hash_algorithm.salt_position: expected disable, prefix or suffix');
    }
    return known(['salt_position']) ?? { name: r.name as SimpleHashName, salt_position };
  }
  if (r.name === 'bcrypt') {
    const salt_rounds = r.salt_rounds ?? 10;
    if (!Number.isInteger(salt_rounds) || (salt_rounds as number) < 5 || (salt_rounds as number) > 10) {
      return new ConfigProblem('password_hash_algorithm.salt_rounds: expected a whole number from 5 to 10');
    }
    return known(['salt_rounds']) ?? { name: 'bcrypt', salt_rounds: salt_rounds as number };
  }
  if (r.name === 'pbkdf2') {
    if (typeof r.mac_fun !== 'string' || !MAC_FUNS.includes(r.mac_fun)) return new ConfigProblem(`password_hash_algorithm.mac_fun: expected one of ${MAC_FUNS.join(', ')}`);
    if (!digestAvailable(DIGEST[r.mac_fun]!)) return new ConfigProblem(`password_hash_algorithm.mac_fun: ${r.mac_fun} is not available in this Node.js (OpenSSL) build`);
    if (!Number.isInteger(r.iterations) || (r.iterations as number) < 1) return new ConfigProblem('password_hash_algorithm.iterations: expected a whole number above 0');
    if (r.dk_length !== undefined && (!Number.isInteger(r.dk_length) || (r.dk_length as number) < 1)) {
      return new ConfigProblem('password_hash_algorithm.dk_length: expected a whole number above 0');
    }
    const alg: HashAlgorithm = { name: 'pbkdf2', mac_fun: r.mac_fun as MacFun, iterations: r.iterations as number };
    if (r.dk_length !== undefined) alg.dk_length = r.dk_length as number;
    return known(['mac_fun', 'iterations', 'dk_length']) ?? alg;
  }
  return new ConfigProblem(`password_hash_algorithm.name: expected one of ${[...SIMPLE, 'bcrypt', 'pbkdf2'].join(', ')}`);
}

function digestAvailable(digest: string): boolean {
  try {
    createHash(digest);
    return true;
  } catch {
    return false;
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function pbkdf2Hex(password: Buffer, salt: string, alg: Extract<HashAlgorithm, { name: 'pbkdf2' }>): Promise<string> {
  const digest = DIGEST[alg.mac_fun]!;
  const length = alg.dk_length ?? createHash(digest).digest().length;
  return new Promise((resolve, reject) => pbkdf2(password, salt, alg.iterations, length, digest, (err, key) => (err ? reject(err) : resolve(key.toString('hex')))));
}

/**
 * Does `password` match the stored `hash` (and `salt`) under `algorithm`? Simple hashes compare
 * lowercase hex (the stored hash's case does not matter), `plain` compares the salted password
 * itself, bcrypt reads its salt from the hash, pbkdf2 compares the hex of the derived key.
 */
export async function verifyPassword(algorithm: HashAlgorithm, password: Buffer, hash: string, salt: string): Promise<boolean> {
  switch (algorithm.name) {
    case 'bcrypt':
      // bcrypt's hash carries its own salt and cost.
      return hash.startsWith('$2') && bcrypt.compare(password.toString('utf8'), hash);
    case 'pbkdf2':
      return sameText(await pbkdf2Hex(password, salt, algorithm), hash.toLowerCase());
    default: {
      const s = Buffer.from(salt);
      const salted = algorithm.salt_position === 'prefix' ? Buffer.concat([s, password]) : algorithm.salt_position === 'suffix' ? Buffer.concat([password, s]) : password;
      if (algorithm.name === 'plain') {
        const stored = Buffer.from(hash);
        return stored.length === salted.length && timingSafeEqual(stored, salted);
      }
      return sameText(createHash(DIGEST[algorithm.name]!).update(salted).digest('hex'), hash.toLowerCase());
    }
  }
}
