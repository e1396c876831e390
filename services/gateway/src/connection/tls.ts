import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls';
import { ConfigError, type Logger } from '@tributary/common';

/** The TLS settings of one listener (`listeners.{ssl,wss}.default.ssl_options`). */
export interface SslOptions {
  certfile: string;
  keyfile: string;
  cacertfile: string;
  versions: string;
  ciphers: string;
  verify: 'verify_none' | 'verify_peer';
  fail_if_no_peer_cert: boolean;
}

const VERSIONS: Record<string, SecureContextOptions['minVersion']> = { 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' };

async function readPem(path: string, key: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * The default certificate: self-signed, generated once into `<data_dir>/certs` and reused, as
 * EMQX ships default certificates. Clients must not verify it (or must trust that file).
 */
export async function defaultCertificate(dataDir: string, log: Logger): Promise<{ cert: Buffer; key: Buffer; path: string }> {
  const dir = join(dataDir, 'certs');
  const certPath = join(dir, 'default-cert.pem');
  const keyPath = join(dir, 'default-key.pem');
  const exists = await stat(certPath).then(
    () => true,
    () => false,
  );
  if (!exists) {
    const selfsigned = require('selfsigned') as { generate(attrs: { name: string; value: string }[], opts: object): Promise<{ cert: string; private: string }> };
    const notAfter = new Date();
    notAfter.setFullYear(notAfter.getFullYear() + 10);
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'tributary' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate: notAfter,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
    });
    await mkdir(dir, { recursive: true });
    await writeFile(keyPath, pems.private, { mode: 0o600 });
    await writeFile(certPath, pems.cert);
    log.warn({ cert: certPath }, 'generated a self-signed TLS certificate for the TLS/WSS listeners; configure ssl_options.certfile/keyfile for production');
  } else {
    log.info({ cert: certPath }, 'TLS/WSS listeners use the self-signed certificate in the data directory');
  }
  return { cert: await readFile(certPath), key: await readFile(keyPath), path: certPath };
}

/** Node TLS server options from a listener's ssl_options; a configured but unreadable file is an error naming the key. */
export async function tlsServerOptions(prefix: string, ssl: SslOptions, dataDir: string, log: Logger): Promise<TlsOptions> {
  let cert: Buffer;
  let key: Buffer;
  if (ssl.certfile || ssl.keyfile) {
    if (!ssl.certfile || !ssl.keyfile) throw new ConfigError(`${prefix}.ssl_options: certfile and keyfile must be set together`);
    cert = await readPem(ssl.certfile, `${prefix}.ssl_options.certfile`);
    key = await readPem(ssl.keyfile, `${prefix}.ssl_options.keyfile`);
  } else ({ cert, key } = await defaultCertificate(dataDir, log));
  const versions = ssl.versions
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter(Boolean);
  const unknown = versions.filter((v) => !VERSIONS[v]);
  if (unknown.length || versions.length === 0) throw new ConfigError(`${prefix}.ssl_options.versions: unsupported "${ssl.versions}" (use tlsv1.2, tlsv1.3)`);
  const ordered = versions.map((v) => VERSIONS[v]!).sort();
  const opts: TlsOptions = {
    cert,
    key,
    minVersion: ordered[0],
    maxVersion: ordered[ordered.length - 1],
    requestCert: ssl.verify === 'verify_peer',
    rejectUnauthorized: ssl.verify === 'verify_peer' && ssl.fail_if_no_peer_cert,
  };
  if (ssl.cacertfile) opts.ca = await readPem(ssl.cacertfile, `${prefix}.ssl_options.cacertfile`);
  if (ssl.ciphers) opts.ciphers = ssl.ciphers;
  return opts;
}

/** The subject of a client certificate that verified against the listener's CA. */
export interface PeerCertificate {
  /** The subject's (last, most specific) common name, unescaped. */
  cn?: string;
  /** The whole subject, RFC 4514 style: most specific first, "CN=device-7,O=Acme,C=DE". */
  dn?: string;
}

/**
 * The verified client certificate of a TLS socket, or undefined when there is none or it did
 * not verify (only verify_peer asks for one). Node prints the subject one RDN a line, escaped
 * as RFC 2253 says, in certificate order; RFC 4514 lists the RDNs the other way round.
 */
export function peerCertificateOf(socket: TLSSocket): PeerCertificate | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerX509Certificate();
  if (!cert) return undefined;
  const rdns = cert.subject.split('\n').filter(Boolean);
  const cnLine = [...rdns].reverse().find((l) => l.startsWith('CN='));
  const out: PeerCertificate = { dn: rdns.reverse().map((r) => r.split(' + ').join('+')).join(',') };
  if (cnLine) out.cn = unescapeDnValue(cnLine.slice(3));
  return out;
}

/** An RFC 2253/4514 attribute value without its escapes ("\,", "\ ", "\0A"). */
export function unescapeDnValue(v: string): string {
  return v.replace(/\\([0-9A-Fa-f]{2}|[^])/g, (_m, e: string) => (e.length === 2 ? String.fromCharCode(parseInt(e, 16)) : e));
}
