import { createPublicKey } from 'node:crypto';
import { ConfigError, ConfigProblem, duration, Logger } from '@tributary/common';
import { clientAttrsFrom, type Credentials } from '@tributary/hooks';
import { AclRule, rulesFromClaim } from '../acl';
import { Jose, JWTPayload, JWTVerifyGetKey, JWTVerifyOptions, loadJose } from '../jose';
import { checkPlaceholders, render } from '../template';
import type { Authenticator, AuthnOutcome, ProviderSpec } from '../types';
import { JwksKeys, KeysUnavailable } from './jwks';

/** Where the key that verifies tokens comes from. */
export type JwtKeySource =
  | { kind: 'hmac'; secret: Uint8Array }
  | { kind: 'public-key'; spki: string; algorithms: string[] }
  | { kind: 'jwks'; endpoint: string; refreshMs: number };

/** The `jwt` authenticator's configuration (EMQX's fields, parsed). */
export interface JwtConfig {
  key: JwtKeySource;
  /** The CONNECT field holding the token. */
  from: 'password' | 'username';
  /** Claim name and expected value; string values may hold ${clientid} and ${username}. */
  verifyClaims: [string, string | number | boolean][];
  aclClaimName: string;
  disconnectAfterExpire: boolean;
}

const HMAC_ALGS = ['HS256', 'HS384', 'HS512'];
/** Every asymmetric signature algorithm: what a JWKS may use. `none` and HMAC never are. */
const PUBLIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const EC_ALGS: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

const FIELDS = ['use_jwks', 'algorithm', 'secret', 'secret_base64_encoded', 'public_key', 'endpoint', 'refresh_interval', 'pool_size', 'ssl', 'from', 'verify_claims', 'acl_claim_name', 'disconnect_after_expire'];
const CLAIM_PLACEHOLDERS = ['clientid', 'username'];
const refreshInterval = duration(300_000, 'refresh_interval', 1000);

/** The signature algorithms a PEM public key (or certificate) can verify, and its SPKI PEM; a problem when it is not a usable key. */
function publicKeyOf(pem: string): { spki: string; algorithms: string[] } | ConfigProblem {
  let key;
  try {
    key = createPublicKey(pem);
  } catch {
    return new ConfigProblem('field "public_key" is not a PEM public key or certificate');
  }
  const spki = key.export({ type: 'spki', format: 'pem' }).toString();
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return { spki, algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] };
  if (type === 'ed25519') return { spki, algorithms: ['EdDSA', 'Ed25519'] };
  const ec = type === 'ec' ? EC_ALGS[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
  if (ec) return { spki, algorithms: [ec] };
  return new ConfigProblem(`field "public_key": a ${type ?? 'unknown'} key cannot verify JWTs (RSA, EC P-256/384/521 or Ed25519)`);
}

function keySource(raw: Record<string, unknown>): JwtKeySource | ConfigProblem {
  if (raw.use_jwks !== undefined && typeof raw.use_jwks !== 'boolean') return new ConfigProblem('field "use_jwks" must be a boolean');
  if (raw.use_jwks === true) {
    const endpoint = raw.endpoint;
    if (typeof endpoint !== 'string' || !/^https?:\/\//.test(endpoint)) return new ConfigProblem('field "endpoint" is required with use_jwks (an http:// or https:// URL)');
    if (raw.ssl !== undefined && !(typeof raw.ssl === 'object' && raw.ssl && (raw.ssl as Record<string, unknown>).enable !== true)) {
      return new ConfigProblem('field "ssl" is not supported: use an https:// endpoint (verified against the system CAs)');
    }
    // EMQX gives seconds as a number; "5m" and "300s" work too.
    const r = raw.refresh_interval ?? 300;
    const ms = typeof r === 'number' || (typeof r === 'string' && /^\s*\d+\s*$/.test(r)) ? refreshInterval.parse(Number(r) * 1000) : refreshInterval.parse(r);
    if (ms instanceof ConfigProblem) return new ConfigProblem(`field "refresh_interval": ${ms.message}`);
    return { kind: 'jwks', endpoint, refreshMs: ms };
  }
  if (raw.algorithm === 'hmac-based') {
    if (typeof raw.secret !== 'string' || raw.secret.length === 0) return new ConfigProblem('field "secret" is required with algorithm hmac-based');
    const b64 = raw.secret_base64_encoded ?? false;
    if (typeof b64 !== 'boolean') return new ConfigProblem('field "secret_base64_encoded" must be a boolean');
    if (b64 && !/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw.secret)) return new ConfigProblem('field "secret" is not base64 (secret_base64_encoded is true)');
    const secret = b64 ? Buffer.from(raw.secret, 'base64') : Buffer.from(raw.secret, 'utf8');
    return { kind: 'hmac', secret: new Uint8Array(secret) };
  }
  if (raw.algorithm === 'public-key') {
    if (typeof raw.public_key !== 'string') return new ConfigProblem('field "public_key" is required with algorithm public-key (PEM text)');
    const k = publicKeyOf(raw.public_key);
    return k instanceof ConfigProblem ? k : { kind: 'public-key', ...k };
  }
  return new ConfigProblem('field "algorithm" must be hmac-based or public-key (or set use_jwks: true)');
}

/** Validates a `jwt` item (every field but mechanism and enable). */
export function parseJwtConfig(raw: Record<string, unknown>): JwtConfig | ConfigProblem {
  const unknown = Object.keys(raw).find((k) => !FIELDS.includes(k));
  if (unknown !== undefined) return new ConfigProblem(`unknown field "${unknown}" (known: ${FIELDS.join(', ')})`);
  const key = keySource(raw);
  if (key instanceof ConfigProblem) return key;
  const from = raw.from ?? 'password';
  if (from !== 'password' && from !== 'username') return new ConfigProblem('field "from" must be password or username');
  const verifyClaims: [string, string | number | boolean][] = [];
  const vc = raw.verify_claims ?? {};
  if (!vc || typeof vc !== 'object' || Array.isArray(vc)) return new ConfigProblem('field "verify_claims" must be an object of claim: expected value');
  for (const [claim, want] of Object.entries(vc)) {
    if (typeof want !== 'string' && typeof want !== 'number' && typeof want !== 'boolean') return new ConfigProblem(`field "verify_claims.${claim}" must be a string, number or boolean`);
    const p = typeof want === 'string' ? checkPlaceholders(want, CLAIM_PLACEHOLDERS, `verify_claims.${claim}`) : undefined;
    if (p) return p;
    verifyClaims.push([claim, want]);
  }
  const aclClaimName = raw.acl_claim_name ?? 'acl';
  if (typeof aclClaimName !== 'string' || aclClaimName.length === 0) return new ConfigProblem('field "acl_claim_name" must be a claim name');
  const disconnectAfterExpire = raw.disconnect_after_expire ?? true;
  if (typeof disconnectAfterExpire !== 'boolean') return new ConfigProblem('field "disconnect_after_expire" must be a boolean');
  return { key, from, verifyClaims, aclClaimName, disconnectAfterExpire };
}

const IGNORE: AuthnOutcome = { result: 'ignore' };
const DENY: AuthnOutcome = { result: 'deny' };

/**
 * The `jwt` authenticator (EMQX's): the token is the password (or the username). Something that
 * is not a JWT (not three dot-separated parts) is ignored; a bad signature, an algorithm the key
 * does not allow (`none` never is), exp or nbf failing, a verify_claims mismatch or a malformed
 * acl or client_attrs claim is denied. A valid token allows, with the acl claim's rules,
 * is_superuser, the client_attrs claim's attributes (EMQX's), and
 * exp as the time the connection is closed (disconnect_after_expire).
 */
export class JwtAuthenticator implements Authenticator {
  readonly id = 'jwt';
  /** Replies may carry the client's own rules (`acl`). */
  readonly grantsAcl = true;
  private jose: Jose | undefined;
  private jwks: JwksKeys | undefined;
  private keys: JWTVerifyGetKey | Uint8Array | undefined;
  private algorithms: string[] = [];

  constructor(private readonly config: JwtConfig, private readonly logger: Logger) {}

  async start(): Promise<void> {
    const jose = (this.jose = await loadJose());
    const k = this.config.key;
    if (k.kind === 'hmac') {
      this.algorithms = HMAC_ALGS;
      this.keys = k.secret;
    } else if (k.kind === 'public-key') {
      const imported = new Map<string, Awaited<ReturnType<Jose['importSPKI']>>>();
      for (const alg of k.algorithms) {
        // Node versions differ in what Web Crypto imports (Ed25519): use what imports.
        const key = await jose.importSPKI(k.spki, alg).catch(() => undefined);
        if (key) imported.set(alg, key);
      }
      if (imported.size === 0) throw new ConfigError('jwt: "public_key" cannot be imported for any JWT algorithm');
      this.algorithms = [...imported.keys()];
      this.keys = (header) => imported.get(header.alg ?? '')!;
    } else {
      this.algorithms = PUBLIC_ALGS;
      this.jwks = new JwksKeys(jose, k.endpoint, k.refreshMs, this.logger);
      await this.jwks.start();
    }
  }

  async stop(): Promise<void> {
    this.jwks?.stop();
  }

  async authenticate(cred: Credentials): Promise<AuthnOutcome> {
    const token = this.config.from === 'password' ? cred.password?.toString('utf8') : cred.username;
    if (!token || token.split('.').length !== 3) return IGNORE;
    let payload: JWTPayload;
    try {
      payload = await this.verify(token);
    } catch (err) {
      if (err instanceof KeysUnavailable) {
        this.logger.warn({ authenticator: this.id, clientId: cred.clientId, err: err.message }, 'JWT keys unavailable; trying the next authenticator');
        return IGNORE;
      }
      this.logger.debug({ authenticator: this.id, clientId: cred.clientId, reason: (err as { code?: string }).code ?? (err as Error).message }, 'JWT refused');
      return DENY;
    }
    for (const [claim, want] of this.config.verifyClaims) {
      const expected = typeof want === 'string' ? expectedValue(want, cred) : want;
      if (expected === undefined || payload[claim] !== expected) {
        this.logger.debug({ authenticator: this.id, clientId: cred.clientId, claim }, 'JWT claim does not match verify_claims');
        return DENY;
      }
    }
    let acl: AclRule[] | undefined;
    const claim = payload[this.config.aclClaimName];
    if (claim !== undefined) {
      try {
        acl = rulesFromClaim(claim);
      } catch (err) {
        this.logger.warn({ authenticator: this.id, clientId: cred.clientId, err: (err as Error).message }, 'JWT acl claim malformed; client refused');
        return DENY;
      }
    }
    const attrs = payload.client_attrs;
    if (attrs !== undefined && (attrs === null || typeof attrs !== 'object' || Array.isArray(attrs))) {
      this.logger.warn({ authenticator: this.id, clientId: cred.clientId }, 'JWT client_attrs claim is not an object; client refused');
      return DENY;
    }
    const expireAt = this.config.disconnectAfterExpire && typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    return { result: 'allow', isSuperuser: payload.is_superuser === true || payload.is_superuser === 'true', acl, expireAt, clientAttrs: clientAttrsFrom(attrs) };
  }

  private async verify(token: string): Promise<JWTPayload> {
    const jose = this.jose!;
    const options: JWTVerifyOptions = { algorithms: this.algorithms };
    if (!this.jwks) return (await jose.jwtVerify(token, this.keys!, options)).payload;
    const jwks = this.jwks;
    try {
      return (await jose.jwtVerify(token, await jwks.resolver(), options)).payload;
    } catch (err) {
      // A key the set lacks may be a rotated one: fetch once more (at most every 30 s) and retry.
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !(await jwks.refetch())) throw err;
      return (await jose.jwtVerify(token, await jwks.resolver(), options)).payload;
    }
  }
}

/** A verify_claims value with the client's values put in; undefined when one is missing. */
function expectedValue(template: string, cred: Credentials): string | undefined {
  if (template.includes('${username}') && !cred.username) return undefined;
  return render(template, { clientid: cred.clientId, username: cred.username });
}

/** The `jwt` provider. */
export const jwtAuthenticator: ProviderSpec<JwtConfig, Authenticator> = {
  parse: parseJwtConfig,
  create: (config, ctx) => new JwtAuthenticator(config, ctx.logger),
};
