import { readFileSync } from 'node:fs';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '@tributary/common';

/**
 * API keys for HTTP Basic authentication (`Authorization: Basic base64(key:secret)`), EMQX's
 * `api_key.bootstrap_file`: one `key:secret[:role]` per line, `#` comments, loaded at start.
 */
export class ApiKeys {
  private readonly keys = new Map<string, Buffer>();
  /** Keys by name, as EMQX's /api_key routes show them (bootstrap keys are named by their key). */
  private readonly meta = new Map<string, ApiKeyInfo>();

  get size(): number {
    return this.keys.size;
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

  /** Adds (or, same key, replaces) a key; its name is the key itself. */
  add(key: string, secret: string, role: ApiKeyInfo['role'] = 'administrator'): void {
    this.keys.set(key, Buffer.from(secret));
    this.meta.set(key, { name: key, api_key: key, expired_at: 'infinity', created_at: new Date().toISOString(), desc: 'api_key.bootstrap_file', enable: true, role });
  }

  /** Every key's description (never a secret), by name. */
  list(): ApiKeyInfo[] {
    return [...this.meta.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): ApiKeyInfo | undefined {
    return this.meta.get(name);
  }

  /** POST /api_key: a new key and secret (the only time the secret is shown); undefined when the name is taken. */
  create(input: { name: string; desc?: string; enable?: boolean; expired_at?: string; role?: ApiKeyInfo['role'] }): (ApiKeyInfo & { api_secret: string }) | undefined {
    if (this.meta.has(input.name)) return undefined;
    const key = randomBytes(8).toString('hex');
    const secret = randomBytes(24).toString('base64url');
    const info: ApiKeyInfo = { name: input.name, api_key: key, expired_at: input.expired_at ?? 'infinity', created_at: new Date().toISOString(), desc: input.desc ?? '', enable: input.enable ?? true, role: input.role ?? 'administrator' };
    this.keys.set(key, Buffer.from(secret));
    this.meta.set(input.name, info);
    return { ...info, api_secret: secret };
  }

  /** PUT /api_key/:name: desc, enable, expired_at, role. */
  update(name: string, change: Partial<Pick<ApiKeyInfo, 'desc' | 'enable' | 'expired_at' | 'role'>>): ApiKeyInfo | undefined {
    const info = this.meta.get(name);
    if (!info) return undefined;
    for (const k of ['desc', 'enable', 'expired_at', 'role'] as const) if (change[k] !== undefined) (info as unknown as Record<string, unknown>)[k] = change[k];
    return info;
  }

  delete(name: string): boolean {
    const info = this.meta.get(name);
    if (!info) return false;
    this.meta.delete(name);
    this.keys.delete(info.api_key);
    return true;
  }

  /** The first key of a bootstrap file, for `tributary ctl` on the same machine. */
  static first(path: string): { key: string; secret: string } | undefined {
    const keys = ApiKeys.load(path);
    for (const [key, secret] of keys.keys) return { key, secret: secret.toString() };
    return undefined;
  }

  /** Does an Authorization header carry a known key and its secret? */
  check(header: string | undefined): 'ok' | 'missing' | 'bad' {
    if (!header) return 'missing';
    const m = /^Basic\s+(\S+)$/i.exec(header);
    if (!m) return 'missing';
    const decoded = Buffer.from(m[1]!, 'base64').toString();
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'bad';
    const key = decoded.slice(0, colon);
    const want = this.keys.get(key);
    const given = Buffer.from(decoded.slice(colon + 1));
    if (!want || want.length !== given.length) return 'bad';
    if (!timingSafeEqual(want, given)) return 'bad';
    const info = this.byKey(key);
    if (info && (!info.enable || (info.expired_at !== 'infinity' && Date.parse(info.expired_at) <= Date.now()))) return 'bad';
    return 'ok';
  }

  private byKey(key: string): ApiKeyInfo | undefined {
    const direct = this.meta.get(key);
    if (direct?.api_key === key) return direct;
    for (const info of this.meta.values()) if (info.api_key === key) return info;
    return undefined;
  }
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
