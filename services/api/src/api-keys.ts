import { readFileSync } from 'node:fs';
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { Backbone, Table } from '@tributary/backbone';
import { ConfigError, type Logger } from '@tributary/common';

/** The compacted backbone table of the keys made with POST /api_key, keyed by name. */
export const API_KEYS_TABLE = 'api_keys';

/** scrypt's cost for stored secrets (N = 2^14, r = 8, p = 1: about 16 MiB and some 50 ms). */
const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** A key as the `api_keys` table stores it: its description and its secret's salted scrypt hash, never the secret. */
interface StoredKey extends ApiKeyInfo {
  v: 1;
  salt: string;
  hash: string;
}

/** A secret's verdict: known and good, none sent, or wrong (unknown key, bad secret, disabled, expired). */
export type KeyVerdict = 'ok' | 'missing' | 'bad';

function hashSecret(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(secret, salt, 32, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))));
}

const sha256 = (s: Buffer): Buffer => createHash('sha256').update(s).digest();

/**
 * API keys for HTTP Basic authentication (`Authorization: Basic base64(key:secret)`). Two kinds:
 * EMQX's `api_key.bootstrap_file` (one `key:secret[:role]` per line, `#` comments, loaded at
 * start, kept in memory), and the keys made with POST /api_key, which `persist()` keeps in the
 * compacted `api_keys` table of the backbone: they survive a restart and every process of the
 * installation knows them. A stored secret is a salted scrypt hash; a secret that matched once is
 * remembered by its SHA-256, so only the first request with it (and every wrong one) pays scrypt,
 * on the thread pool, not the event loop.
 */
export class ApiKeys {
  /** Bootstrap keys: key → secret. */
  private readonly bootstrap = new Map<string, Buffer>();
  /** Every key's description (never a secret), by name (bootstrap keys are named by their key). */
  private readonly meta = new Map<string, ApiKeyInfo>();
  /** Keys made with POST /api_key: api_key → name, salt and hash. */
  private readonly stored = new Map<string, { name: string; salt: Buffer; hash: Buffer }>();
  /** api_key → SHA-256 of the secret that last verified against its scrypt hash. */
  private readonly verified = new Map<string, Buffer>();
  private table: Table | undefined;
  private log: Logger | undefined;

  get size(): number {
    return this.bootstrap.size + this.stored.size;
  }

  /** Reads a bootstrap file; a line that is not `key:secret[:role]` is a ConfigError naming it. */
  static load(path: string): ApiKeys {
    const keys = new ApiKeys();
    if (!path) return keys;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`api_key.bootstrap_file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const [key, secret, role] = line.split(':');
      if (!key || !secret || (role !== undefined && !['administrator', 'viewer', 'publisher'].includes(role))) {
        throw new ConfigError(`api_key.bootstrap_file: ${path} line ${i + 1}: expected key:secret[:role]`);
      }
      keys.add(key, secret, role as ApiKeyInfo['role'] | undefined);
    });
    return keys;
  }

  /** Adds (or, same key, replaces) a bootstrap key, in memory; its name is the key itself. */
  add(key: string, secret: string, role: ApiKeyInfo['role'] = 'administrator'): void {
    this.bootstrap.set(key, Buffer.from(secret));
    this.meta.set(key, { name: key, api_key: key, expired_at: 'infinity', created_at: new Date().toISOString(), desc: 'api_key.bootstrap_file', enable: true, role });
  }

  /**
   * Keeps the keys made with POST /api_key in the backbone's compacted `api_keys` table: loads
   * those stored, and follows what other processes write. Without it they live in memory.
   */
  async persist(backbone: Backbone, log: Logger): Promise<void> {
    await backbone.ensureTopics([{ name: API_KEYS_TABLE, cleanup: 'compact' }]);
    const table = await backbone.table(API_KEYS_TABLE);
    this.log = log;
    for (const [name, value] of table.entries()) this.applyStored(name, value);
    table.onRemoteChange = (name, value) => this.applyStored(name, value);
    this.table = table;
  }

  /** Every key's description (never a secret), by name. */
  list(): ApiKeyInfo[] {
    return [...this.meta.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): ApiKeyInfo | undefined {
    return this.meta.get(name);
  }

  /** POST /api_key: a new key and secret (the only time the secret is shown); undefined when the name is taken. */
  async create(input: { name: string; desc?: string; enable?: boolean; expired_at?: string; role?: ApiKeyInfo['role'] }): Promise<(ApiKeyInfo & { api_secret: string }) | undefined> {
    if (this.meta.has(input.name)) return undefined;
    const key = randomBytes(8).toString('hex');
    const secret = randomBytes(24).toString('base64url');
    const salt = randomBytes(16);
    const hash = await hashSecret(secret, salt);
    if (this.meta.has(input.name)) return undefined;
    const info: ApiKeyInfo = { name: input.name, api_key: key, expired_at: input.expired_at ?? 'infinity', created_at: new Date().toISOString(), desc: input.desc ?? '', enable: input.enable ?? true, role: input.role ?? 'administrator' };
    await this.store({ v: 1, ...info, salt: salt.toString('base64'), hash: hash.toString('base64') });
    this.verified.set(key, sha256(Buffer.from(secret)));
    return { ...info, api_secret: secret };
  }

  /** PUT /api_key/:name: desc, enable, expired_at, role (a bootstrap key changes until the next start). */
  async update(name: string, change: Partial<Pick<ApiKeyInfo, 'desc' | 'enable' | 'expired_at' | 'role'>>): Promise<ApiKeyInfo | undefined> {
    const info = this.meta.get(name);
    if (!info) return undefined;
    const next = { ...info };
    for (const k of ['desc', 'enable', 'expired_at', 'role'] as const) if (change[k] !== undefined) (next as unknown as Record<string, unknown>)[k] = change[k];
    const s = this.stored.get(info.api_key);
    if (s?.name === name) await this.store({ v: 1, ...next, salt: s.salt.toString('base64'), hash: s.hash.toString('base64') });
    else this.meta.set(name, next);
    return next;
  }

  async delete(name: string): Promise<boolean> {
    const info = this.meta.get(name);
    if (!info) return false;
    if (this.stored.get(info.api_key)?.name === name) {
      await this.table?.delete(name);
      this.applyStored(name, null);
    } else {
      this.meta.delete(name);
      this.bootstrap.delete(info.api_key);
    }
    return true;
  }

  /** The first key of a bootstrap file, for `tributary ctl` on the same machine. */
  static first(path: string): { key: string; secret: string } | undefined {
    const keys = ApiKeys.load(path);
    for (const [key, secret] of keys.bootstrap) return { key, secret: secret.toString() };
    return undefined;
  }

  /**
   * Does an Authorization header carry a known, enabled, unexpired key and its secret? Answered
   * at once, except for a stored key whose secret has not verified yet (a promise: scrypt).
   */
  check(header: string | undefined): KeyVerdict | Promise<KeyVerdict> {
    if (!header) return 'missing';
    const m = /^Basic\s+(\S+)$/i.exec(header);
    if (!m) return 'missing';
    const decoded = Buffer.from(m[1]!, 'base64').toString();
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'bad';
    const key = decoded.slice(0, colon);
    const given = Buffer.from(decoded.slice(colon + 1));
    const boot = this.bootstrap.get(key);
    if (boot) return boot.length === given.length && timingSafeEqual(boot, given) && usable(this.meta.get(key)) ? 'ok' : 'bad';
    const s = this.stored.get(key);
    if (!s || !usable(this.meta.get(s.name))) return 'bad';
    const digest = sha256(given);
    const known = this.verified.get(key);
    if (known && timingSafeEqual(known, digest)) return 'ok';
    return hashSecret(given.toString(), s.salt).then((hash) => {
      if (!timingSafeEqual(hash, s.hash) || this.stored.get(key) !== s) return 'bad';
      this.verified.set(key, digest);
      return 'ok';
    });
  }

  /** Writes a key's record (to the table when persisted) and applies it here. */
  private async store(rec: StoredKey): Promise<void> {
    const value = Buffer.from(JSON.stringify(rec));
    await this.table?.set(rec.name, value);
    this.applyStored(rec.name, value);
  }

  /** A record of the table (ours or another process's): the key is known, changed or gone. */
  private applyStored(name: string, value: Buffer | null): void {
    const old = this.meta.get(name);
    if (old && this.stored.get(old.api_key)?.name === name) {
      this.stored.delete(old.api_key);
      this.verified.delete(old.api_key);
      this.meta.delete(name);
    }
    if (value === null) return;
    let rec: StoredKey;
    try {
      rec = JSON.parse(value.toString()) as StoredKey;
      if (rec.v !== 1 || rec.name !== name || typeof rec.api_key !== 'string' || typeof rec.hash !== 'string' || typeof rec.salt !== 'string') throw new Error('not an API key record');
    } catch (err) {
      this.log?.warn({ table: API_KEYS_TABLE, name, err: (err as Error).message }, 'undecodable API key record skipped');
      return;
    }
    const { v: _v, salt, hash, ...info } = rec;
    this.meta.set(name, info);
    this.stored.set(rec.api_key, { name, salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') });
  }
}

/** Enabled and not expired. */
function usable(info: ApiKeyInfo | undefined): boolean {
  return info !== undefined && info.enable && (info.expired_at === 'infinity' || Date.parse(info.expired_at) > Date.now());
}

/** An API key as the /api_key routes show it (EMQX's fields; the secret only when created). */
export interface ApiKeyInfo {
  name: string;
  api_key: string;
  /** RFC 3339, or "infinity". */
  expired_at: string;
  created_at: string;
  desc: string;
  enable: boolean;
  role: 'administrator' | 'viewer' | 'publisher';
}
