import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { ConfigError } from '@tributary/common';

/**
 * API keys for HTTP Basic authentication (`Authorization: Basic base64(key:secret)`), EMQX's
 * `api_key.bootstrap_file`: one `key:secret[:role]` per line, `#` comments, loaded at start.
 */
export class ApiKeys {
  private readonly keys = new Map<string, Buffer>();

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
      keys.add(key, secret);
    });
    return keys;
  }

  add(key: string, secret: string): void {
    this.keys.set(key, Buffer.from(secret));
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
    const want = this.keys.get(decoded.slice(0, colon));
    const given = Buffer.from(decoded.slice(colon + 1));
    if (!want || want.length !== given.length) return 'bad';
    return timingSafeEqual(want, given) ? 'ok' : 'bad';
  }
}
