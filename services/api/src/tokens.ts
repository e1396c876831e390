import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a bearer token's check says. */
export type TokenVerdict = { ok: true; username: string } | { ok: false; code: 'TOKEN_TIME_OUT' | 'BAD_TOKEN' };

/**
 * Bearer tokens for dashboard users (POST /login): `base64url(JSON {u, exp}) . base64url(HMAC-SHA256)`
 * signed with a random secret made when the process starts. So a token is good on this node only
 * and until it restarts (or `ttlMs` passes); logout revokes it until its expiry.
 */
export class TokenSigner {
  private readonly secret = randomBytes(32);
  private readonly revoked = new Map<string, number>();

  constructor(private readonly ttlMs: number) {}

  issue(username: string, now = Date.now()): string {
    const body = Buffer.from(JSON.stringify({ u: username, exp: now + this.ttlMs, n: randomBytes(6).toString('hex') })).toString('base64url');
    return `${body}.${this.sign(body)}`;
  }

  verify(token: string, now = Date.now()): TokenVerdict {
    const dot = token.indexOf('.');
    if (dot <= 0) return { ok: false, code: 'BAD_TOKEN' };
    const body = token.slice(0, dot);
    const want = Buffer.from(this.sign(body));
    const given = Buffer.from(token.slice(dot + 1));
    if (want.length !== given.length || !timingSafeEqual(want, given)) return { ok: false, code: 'BAD_TOKEN' };
    let claims: { u?: unknown; exp?: unknown };
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as typeof claims;
    } catch {
      return { ok: false, code: 'BAD_TOKEN' };
    }
    if (typeof claims.u !== 'string' || typeof claims.exp !== 'number') return { ok: false, code: 'BAD_TOKEN' };
    if (claims.exp <= now || this.revoked.has(token)) return { ok: false, code: 'TOKEN_TIME_OUT' };
    return { ok: true, username: claims.u };
  }

  /** Logout: the token stops working (kept until its own expiry, then forgotten). */
  revoke(token: string, now = Date.now()): void {
    for (const [t, exp] of this.revoked) if (exp <= now) this.revoked.delete(t);
    this.revoked.set(token, now + this.ttlMs);
  }

  private sign(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }
}
