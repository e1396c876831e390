import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { after, before, describe, it, mock } from 'node:test';
import { ConfigProblem, silentLogger } from '@tributary/common';
import type { Credentials } from '@tributary/hooks';
import type * as JoseModule from 'jose' with { 'resolution-mode': 'import' };
import { JwtAuthenticator, JwtConfig, parseJwtConfig } from '../src/authn/jwt';
import { JWKS_REFETCH_MS } from '../src/authn/jwks';
import { parseHttpRequest } from '../src/http-request';

let jose: typeof JoseModule;
before(async () => {
  jose = await import('jose');
});

const cred = (password: string, clientId = 'c1'): Credentials => ({ clientId, username: 'u', password: Buffer.from(password), peerhost: '127.0.0.1', protocolVersion: 5 });

function config(raw: Record<string, unknown>): JwtConfig {
  const c = parseJwtConfig(raw);
  if (c instanceof ConfigProblem) throw new Error(c.message);
  return c;
}

async function started(raw: Record<string, unknown>): Promise<JwtAuthenticator> {
  const a = new JwtAuthenticator(config(raw), silentLogger);
  await a.start();
  return a;
}

describe('jwt configuration', () => {
  const problem = (raw: Record<string, unknown>): string => {
    const c = parseJwtConfig(raw);
    assert.ok(c instanceof ConfigProblem, 'expected a problem');
    return c.message;
  };

  it('names the field that is wrong, never the secret', () => {
    assert.match(problem({ algorithm: 'hmac-based' }), /"secret" is required/);
    assert.match(problem({ algorithm: 'hmac-based', secret: 'not base64!', secret_base64_encoded: true }), /not base64/);
    assert.doesNotMatch(problem({ algorithm: 'hmac-based', secret: 'not base64!', secret_base64_encoded: true }), /not base64!/);
    assert.match(problem({ algorithm: 'public-key', public_key: 'junk' }), /"public_key" is not a PEM/);
    assert.match(problem({ algorithm: 'rsa' }), /"algorithm" must be/);
    assert.match(problem({ use_jwks: true }), /"endpoint" is required/);
    assert.match(problem({ algorithm: 'hmac-based', secret: 's', verify_claims: { sub: '${user}' } }), /unknown placeholder \$\{user\}/);
    assert.match(problem({ algorithm: 'hmac-based', secret: 's', form: 'password' }), /unknown field "form"/);
    assert.match(problem({ algorithm: 'hmac-based', secret: 's', from: 'clientid' }), /"from" must be/);
  });

  it('refresh_interval is seconds as a number, or a duration', () => {
    const k = (r: unknown): unknown => config({ use_jwks: true, endpoint: 'http://127.0.0.1/jwks', refresh_interval: r }).key;
    assert.deepEqual(k(60), { kind: 'jwks', endpoint: 'http://127.0.0.1/jwks', refreshMs: 60_000 });
    assert.deepEqual(k('2m'), { kind: 'jwks', endpoint: 'http://127.0.0.1/jwks', refreshMs: 120_000 });
    assert.deepEqual(k(undefined), { kind: 'jwks', endpoint: 'http://127.0.0.1/jwks', refreshMs: 300_000 });
  });

  it('HTTP request fields: unknown placeholders and fields are problems; POST defaults to JSON', () => {
    const p = parseHttpRequest({ url: 'http://h/auth/${clientid}', body: { u: '${username}', nested: ['${pasword}'] } }, ['username', 'clientid', 'password']);
    assert.ok(p instanceof ConfigProblem && /"body\.nested\[0\]": unknown placeholder \$\{pasword\}/.test(p.message), String((p as ConfigProblem).message));
    assert.ok(parseHttpRequest({ url: 'ftp://h/' }, []) instanceof ConfigProblem);
    assert.ok(parseHttpRequest({ url: 'http://h/', timeout: 5 }, []) instanceof ConfigProblem);
    const ok = parseHttpRequest({ url: 'http://h/', request_timeout: '2s' }, []);
    assert.ok(!(ok instanceof ConfigProblem));
    assert.equal(ok.headers['content-type'], 'application/json');
    assert.equal(ok.requestTimeout, 2000);
    assert.equal(ok.method, 'post');
  });
});

describe('jwt with a public key', () => {
  it('verifies ES256 and Ed25519 tokens and refuses other algorithms; is_superuser and exp carry over', async () => {
    for (const alg of ['ES256', 'EdDSA']) {
      const { publicKey, privateKey } = await jose.generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
      const a = await started({ algorithm: 'public-key', public_key: await jose.exportSPKI(publicKey) });
      const exp = Math.floor(Date.now() / 1000) + 60;
      const good = await new jose.SignJWT({ is_superuser: true, exp }).setProtectedHeader({ alg }).sign(privateKey);
      assert.deepEqual(await a.authenticate(cred(good)), { result: 'allow', isSuperuser: true, acl: undefined, expireAt: exp * 1000, clientAttrs: undefined }, alg);
      const hs = await new jose.SignJWT({}).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(await jose.exportSPKI(publicKey)));
      assert.deepEqual(await a.authenticate(cred(hs)), { result: 'deny' }, `${alg}: HS256 keyed with the public key`);
    }
  });

  it('takes an RSA key in PKCS#1 PEM; disconnect_after_expire false gives no expireAt', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const a = await started({ algorithm: 'public-key', public_key: publicKey.export({ type: 'pkcs1', format: 'pem' }), disconnect_after_expire: false });
    for (const alg of ['RS256', 'PS384']) {
      const token = await new jose.SignJWT({ exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg }).sign(privateKey);
      assert.deepEqual(await a.authenticate(cred(token)), { result: 'allow', isSuperuser: false, acl: undefined, expireAt: undefined, clientAttrs: undefined }, alg);
    }
  });

  it('from: username reads the token from the username; a missing token is ignored', async () => {
    const secret = 'shh';
    const a = await started({ algorithm: 'hmac-based', secret, from: 'username', verify_claims: { client: '${clientid}' } });
    const token = await new jose.SignJWT({ client: 'c9' }).setProtectedHeader({ alg: 'HS384' }).sign(new TextEncoder().encode(secret));
    assert.equal((await a.authenticate({ ...cred('x'), clientId: 'c9', username: token })).result, 'allow');
    assert.equal((await a.authenticate({ ...cred('x'), clientId: 'c8', username: token })).result, 'deny');
    assert.equal((await a.authenticate({ ...cred('x'), username: undefined })).result, 'ignore');
  });
});

describe('jwt with a JWKS endpoint', () => {
  let server: Server;
  let endpoint: string;
  let keys: JoseModule.JWK[] = [];
  let fetches = 0;
  let up = false;

  before(async () => {
    server = createServer((_req, res) => {
      fetches++;
      if (!up) return res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
  });

  after(() => {
    server.close();
    mock.timers.reset();
  });

  async function keyPair(kid: string): Promise<{ sign(claims?: JoseModule.JWTPayload): Promise<string>; jwk: JoseModule.JWK }> {
    const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
    return { jwk: { ...(await jose.exportJWK(publicKey)), kid, alg: 'ES256' }, sign: (claims = {}) => new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey) };
  }

  it('an endpoint down at start: start-up goes on, tokens are ignored until the keys load; a new kid refetches at most every 30 s', async () => {
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const k1 = await keyPair('k1');
    keys = [k1.jwk];
    up = false;
    const a = await started({ use_jwks: true, endpoint });
    try {
      assert.equal(fetches, 1);
      assert.equal((await a.authenticate(cred(await k1.sign()))).result, 'ignore', 'no keys yet: next authenticator');
      assert.equal(fetches, 1, 'within 30 s of the last fetch: no new one');
      up = true;
      mock.timers.tick(JWKS_REFETCH_MS + 1);
      assert.equal((await a.authenticate(cred(await k1.sign()))).result, 'allow');
      assert.equal(fetches, 2);
      const k2 = await keyPair('k2');
      keys = [k1.jwk, k2.jwk];
      assert.equal((await a.authenticate(cred(await k2.sign()))).result, 'deny', 'a rotated key within 30 s of the last fetch is not fetched');
      assert.equal(fetches, 2);
      mock.timers.tick(JWKS_REFETCH_MS + 1);
      assert.equal((await a.authenticate(cred(await k2.sign()))).result, 'allow', 'after 30 s the unknown kid fetches the set again');
      assert.equal(fetches, 3);
      assert.equal((await a.authenticate(cred(await (await keyPair('k3')).sign()))).result, 'deny');
      assert.equal(fetches, 3);
    } finally {
      await a.stop();
      mock.timers.reset();
    }
  });
});
