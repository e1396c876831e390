import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { TLSSocket, TlsOptions } from 'node:tls';
import { ConfigError } from '@tributary/common';

/** `psk_authentication` (EMQX's top-level key): TLS-PSK on the ssl listener. */
export interface PskConfig {
  enable: boolean;
  init_file: string;
  separator: string;
}

/**
 * PSK suites added to the ssl listener's ciphers when PSK is on: Node (OpenSSL) offers none by
 * default. ECDHE-PSK first (forward secrecy), then plain PSK, which mosquitto and most embedded
 * TLS stacks offer.
 */
export const PSK_CIPHERS = 'ECDHE-PSK-AES128-CBC-SHA256:ECDHE-PSK-CHACHA20-POLY1305:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-CBC-SHA256';

/** The identity each TLS-PSK connection authenticated with. */
const identities = new WeakMap<TLSSocket, string>();

/** The PSK identity `socket` completed its handshake with, if it used TLS-PSK. */
export function pskIdentityOf(socket: TLSSocket): string | undefined {
  return identities.get(socket);
}

/**
 * Reads the init file: one `identity<separator>hexkey` a line; blank lines and lines starting
 * with `#` are skipped. A malformed line is a ConfigError naming the file and line (never the key).
 */
export async function loadPskFile(config: PskConfig): Promise<Map<string, Buffer>> {
  if (!config.init_file) throw new ConfigError('psk_authentication.init_file: required when psk_authentication.enable is true');
  const path = resolve(config.init_file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`psk_authentication.init_file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const keys = new Map<string, Buffer>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = line.indexOf(config.separator);
    const identity = at > 0 ? line.slice(0, at) : '';
    const hex = at > 0 ? line.slice(at + config.separator.length) : '';
    const where = `psk_authentication.init_file: ${path}:${i + 1}`;
    if (!identity || !hex) throw new ConfigError(`${where}: expected identity${config.separator}hexkey`);
    if (!/^([0-9A-Fa-f]{2})+$/.test(hex)) throw new ConfigError(`${where}: the key of "${identity}" is not an even number of hex digits`);
    if (Buffer.byteLength(identity) > 128) throw new ConfigError(`${where}: identity longer than 128 bytes`);
    if (keys.has(identity)) throw new ConfigError(`${where}: identity "${identity}" appears twice`);
    keys.set(identity, Buffer.from(hex, 'hex'));
  });
  return keys;
}

/**
 * The TLS server options that turn PSK on: the lookup (an unknown identity fails as a wrong
 * key does), PSK suites ahead of the listener's ciphers, and TLS 1.2 at
 * most: Node's server callback does not take part in TLS 1.3's PSK handshake, so a PSK client
 * offered TLS 1.3 would fail instead of falling back.
 */
export function pskServerOptions(keys: Map<string, Buffer>, opts: TlsOptions, prefix: string): TlsOptions {
  if (opts.minVersion === 'TLSv1.3') throw new ConfigError(`${prefix}.ssl_options.versions: psk_authentication needs tlsv1.2 (TLS-PSK runs on TLS 1.2)`);
  // Node's default list ends with "!PSK", which would remove the PSK suites wherever they stand.
  const base = (opts.ciphers || (require('node:tls') as typeof import('node:tls')).DEFAULT_CIPHERS)
    .split(':')
    .filter((c) => c !== '!PSK' && c !== '-PSK')
    .join(':');
  return {
    ...opts,
    maxVersion: 'TLSv1.2',
    // PSK suites first and the server's order wins: a client that offers PSK (mosquitto offers
    // certificate suites too) must not end up on a certificate suite, skipping its key.
    ciphers: `${PSK_CIPHERS}:${base}`,
    honorCipherOrder: true,
    pskCallback: (socket: TLSSocket, identity: string) => {
      const key = keys.get(identity);
      // An unknown identity fails like a wrong key (bad record MAC), so identities cannot be probed.
      if (!key) return randomBytes(32);
      identities.set(socket, identity);
      return key;
    },
  };
}
