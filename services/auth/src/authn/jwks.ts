import type { Logger } from '@tributary/common';
import { HttpPool, jsonObjectOf, redactedUrl } from '../http-request';
import type { Jose, JWTVerifyGetKey } from '../jose';

/** A token's key cannot be looked up: the JWKS endpoint has not answered yet. */
export class KeysUnavailable extends Error {}

/** A token naming an unknown key fetches the set again at most this often. */
export const JWKS_REFETCH_MS = 30_000;
const FETCH_TIMEOUT_MS = 5000;

/**
 * The public keys of a JWKS endpoint: fetched at start (a failure is logged, start-up goes on),
 * again every refresh interval, and at most once per 30 s when a token names a key the set lacks,
 * so a stream of tokens with made-up key ids cannot hammer the endpoint.
 */
export class JwksKeys {
  private keys: JWTVerifyGetKey | undefined;
  private lastFetch = 0;
  private fetching: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly pool: HttpPool;

  constructor(
    private readonly jose: Jose,
    private readonly endpoint: string,
    private readonly refreshMs: number,
    private readonly logger: Logger,
  ) {
    this.pool = new HttpPool(endpoint.startsWith('https:'), 2);
  }

  async start(): Promise<void> {
    await this.fetch();
    this.timer = setInterval(() => void this.fetch(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.pool.close();
  }

  /** The key resolver for jwtVerify; a fetch first when there is no set yet (rate-limited), KeysUnavailable when there still is none. */
  async resolver(): Promise<JWTVerifyGetKey> {
    if (!this.keys) await this.refetch();
    if (!this.keys) throw new KeysUnavailable(`no key set from ${redactedUrl(this.endpoint)} yet`);
    return this.keys;
  }

  /** Fetches the set again unless that was done less than 30 s ago; true when a new set was loaded. */
  refetch(): Promise<boolean> {
    if (this.fetching) return this.fetching;
    if (Date.now() - this.lastFetch < JWKS_REFETCH_MS) return Promise.resolve(false);
    return this.fetch();
  }

  private fetch(): Promise<boolean> {
    this.lastFetch = Date.now();
    this.fetching ??= this.load().finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async load(): Promise<boolean> {
    const where = redactedUrl(this.endpoint);
    try {
      const reply = await this.pool.request(new URL(this.endpoint), 'GET', { accept: 'application/json' }, undefined, FETCH_TIMEOUT_MS);
      if (reply.status !== 200) throw new Error(`status ${reply.status}`);
      const doc = jsonObjectOf(reply.body);
      if (!doc || !Array.isArray(doc.keys)) throw new Error('not a JWKS document ({"keys": [...]})');
      this.keys = this.jose.createLocalJWKSet(doc as unknown as Parameters<Jose['createLocalJWKSet']>[0]);
      this.logger.debug({ endpoint: where, keys: doc.keys.length }, 'JWKS loaded');
      return true;
    } catch (err) {
      this.logger.warn({ endpoint: where, err: (err as Error).message }, 'could not fetch the JWKS; keeping the keys loaded before');
      return false;
    }
  }
}
