import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * The client side of SCRAM (RFC 5802) for tests, written apart from the broker's server side so
 * a shared mistake cannot pass: client-first, then client-final from server-first, then the
 * check of the server's signature.
 */
export class ScramClient {
  readonly nonce = randomBytes(12).toString('base64');
  private authMessage = '';
  private saltedPassword: Buffer | undefined;

  constructor(
    readonly username: string,
    private readonly password: string,
    private readonly digest: 'sha256' | 'sha512' = 'sha256',
  ) {}

  /** client-first-message: `n,,n=<user>,r=<nonce>`. */
  first(): Buffer {
    return Buffer.from(`n,,${this.bare()}`);
  }

  /** client-final-message for the server's first message. */
  final(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString();
    const attr = (k: string): string => {
      const a = text.split(',').find((x) => x.startsWith(`${k}=`));
      if (!a) throw new Error(`server-first has no ${k}=: ${text}`);
      return a.slice(2);
    };
    const nonce = attr('r');
    if (!nonce.startsWith(this.nonce)) throw new Error('server nonce does not extend the client nonce');
    const length = this.digest === 'sha256' ? 32 : 64;
    this.saltedPassword = pbkdf2Sync(this.password, Buffer.from(attr('s'), 'base64'), Number(attr('i')), length, this.digest);
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
    this.authMessage = `${this.bare()},${text},${withoutProof}`;
    const clientKey = this.hmac(this.saltedPassword, 'Client Key');
    const storedKey = createHash(this.digest).update(clientKey).digest();
    const signature = this.hmac(storedKey, this.authMessage);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Is server-final's `v=` the signature only a server knowing the password's keys can make? */
  verifyServer(serverFinal: Buffer | undefined): boolean {
    if (!serverFinal || !this.saltedPassword) return false;
    const expected = this.hmac(this.hmac(this.saltedPassword, 'Server Key'), this.authMessage).toString('base64');
    return serverFinal.toString() === `v=${expected}`;
  }

  private bare(): string {
    return `n=${this.username.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.nonce}`;
  }

  private hmac(key: Buffer, text: string): Buffer {
    return createHmac(this.digest, key).update(text).digest();
  }
}
