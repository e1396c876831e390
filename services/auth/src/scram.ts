import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { constantTimeEqual } from './hash';

/**
 * SCRAM (RFC 5802, SHA-256 per RFC 7677, SHA-512 likewise), the server side, without channel
 * binding: the client's first message starts `n,,` (or `y,,`); `p=` is refused. Messages are
 * parsed strictly and never throw: anything malformed is a failed exchange.
 */

export type ScramDigest = 'sha256' | 'sha512';

/** The keys a server keeps for a user (RFC 5802 §3), never the password. */
export interface ScramKeys {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** The Authentication Method name of a digest ("SCRAM-SHA-256"). */
export function scramMethod(digest: ScramDigest): string {
  return digest === 'sha256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-512';
}

function hmac(digest: ScramDigest, key: Buffer, text: string | Buffer): Buffer {
  return createHmac(digest, key).update(text).digest();
}

/** SaltedPassword = Hi(password, salt, i), then StoredKey = H(HMAC(SP, "Client Key")) and ServerKey = HMAC(SP, "Server Key"). */
export function scramKeys(digest: ScramDigest, password: string, salt: Buffer, iterations: number): ScramKeys {
  const length = digest === 'sha256' ? 32 : 64;
  const salted = pbkdf2Sync(Buffer.from(password), salt, iterations, length, digest);
  const clientKey = hmac(digest, salted, 'Client Key');
  return { salt, iterations, storedKey: createHash(digest).update(clientKey).digest(), serverKey: hmac(digest, salted, 'Server Key') };
}

/** A new random SCRAM salt. */
export function scramSalt(): Buffer {
  return randomBytes(16);
}

/** What the client's first message says. */
export interface ClientFirst {
  /** The gs2 header ("n,,"), echoed back base64-encoded in the final message's c=. */
  gs2Header: string;
  /** client-first-message-bare, part of the AuthMessage. */
  bare: string;
  username: string;
  clientNonce: string;
}

/** The longest message accepted; a real one is well under 1 KB. */
export const MAX_SCRAM_MESSAGE = 4096;

/** `saslname` with =2C and =3D decoded (RFC 5802 §5.1); undefined when any other `=` appears. */
function saslName(value: string): string | undefined {
  if (/=(?!2C|3D)/.test(value)) return undefined;
  return value.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** Printable ASCII but ',' (RFC 5802 §7 `printable`). */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** client-first-message, or undefined when it is not one this server accepts. */
export function parseClientFirst(data: Buffer | undefined): ClientFirst | undefined {
  if (!data || data.length === 0 || data.length > MAX_SCRAM_MESSAGE) return undefined;
  const text = data.toString('utf8');
  if (text.includes('\0') || Buffer.byteLength(text) !== data.length) return undefined;
  // gs2-header = gs2-cbind-flag "," [ authzid ] ","; channel binding (p=) is not offered.
  const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(text);
  if (!m) return undefined;
  const authzid = m[2] === undefined ? undefined : saslName(m[2].slice(2));
  const bare = m[3]!;
  const attrs = bare.split(',');
  const user = attrs[0]?.startsWith('n=') ? saslName(attrs[0].slice(2)) : undefined;
  const nonce = attrs[1]?.startsWith('r=') ? attrs[1].slice(2) : undefined;
  if (user === undefined || user === '' || nonce === undefined || !NONCE.test(nonce)) return undefined;
  // An authorization identity other than the user is not supported.
  if (m[2] !== undefined && authzid !== user) return undefined;
  // Extensions after r= are allowed and ignored (a mandatory one, m= first, failed above).
  if (attrs.slice(2).some((a) => !/^[a-zA-Z]=/.test(a))) return undefined;
  return { gs2Header: `${m[1]},${m[2] ?? ''},`, bare, username: user, clientNonce: nonce };
}

/** server-first-message: the combined nonce, the salt and the iterations. */
export function serverFirst(nonce: string, keys: Pick<ScramKeys, 'salt' | 'iterations'>): string {
  return `r=${nonce},s=${keys.salt.toString('base64')},i=${keys.iterations}`;
}

/** What an exchange keeps between the two messages. */
export interface ScramExchange {
  digest: ScramDigest;
  first: ClientFirst;
  serverFirst: string;
  /** client nonce + server nonce. */
  nonce: string;
  keys: ScramKeys;
}

/** The outcome of client-final: server-final-message (`v=...`), a wrong proof, or a message that is not client-final. */
export type ClientFinalCheck = { serverFinal: string } | { error: 'invalid-proof' | 'malformed' };

const MALFORMED = { error: 'malformed' } as const;

/** Checks client-final-message against the exchange (RFC 5802 §3, the server's side). */
export function verifyClientFinal(ex: ScramExchange, data: Buffer | undefined): ClientFinalCheck {
  if (!data || data.length === 0 || data.length > MAX_SCRAM_MESSAGE) return MALFORMED;
  const text = data.toString('utf8');
  const proofAt = text.lastIndexOf(',p=');
  if (proofAt < 0) return MALFORMED;
  const withoutProof = text.slice(0, proofAt);
  const proofText = text.slice(proofAt + 3);
  const attrs = withoutProof.split(',');
  if (attrs[0] !== `c=${Buffer.from(ex.first.gs2Header).toString('base64')}`) return MALFORMED;
  if (attrs[1] !== `r=${ex.nonce}`) return MALFORMED;
  if (!BASE64.test(proofText)) return MALFORMED;
  const proof = Buffer.from(proofText, 'base64');
  if (proof.length !== ex.keys.storedKey.length) return MALFORMED;
  const authMessage = `${ex.first.bare},${ex.serverFirst},${withoutProof}`;
  const clientSignature = hmac(ex.digest, ex.keys.storedKey, authMessage);
  const clientKey = Buffer.alloc(proof.length);
  for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
  const storedKey = createHash(ex.digest).update(clientKey).digest();
  if (!constantTimeEqual(storedKey, ex.keys.storedKey)) return { error: 'invalid-proof' };
  return { serverFinal: `v=${hmac(ex.digest, ex.keys.serverKey, authMessage).toString('base64')}` };
}
