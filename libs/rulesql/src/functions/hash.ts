import { createHash, getHashes } from 'node:crypto';
import type { Value } from '../value';
import { bytes, fail, show, spec, text, type FunctionTable } from './args';

// Erlang crypto's names for hash/2 and the OpenSSL names Node knows them by.
const ALGORITHMS: Readonly<Record<string, string>> = {
  md4: 'md4',
  md5: 'md5',
  sha: 'sha1',
  sha1: 'sha1',
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha3_224: 'sha3-224',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
  sha3_512: 'sha3-512',
  shake128: 'shake128',
  shake256: 'shake256',
  blake2b: 'blake2b512',
  blake2s: 'blake2s256',
};

let available: Set<string> | undefined;

/** Lower-case hex digest of `data` (strings hash their UTF-8 bytes). */
export function hexDigest(algorithm: string, data: Buffer | string): string {
  return createHash(algorithm).update(data).digest('hex');
}

/** The data of md5/sha/sha256: text or a binary. */
function binary(name: string, v: Value): Buffer | string {
  return typeof v === 'string' ? v : bytes(name, v);
}

/** The data of hash/2: text, binaries and the atoms true/false (undefined/null are badarg). */
function hashData(v: Value): Buffer | string {
  return typeof v === 'boolean' ? text('hash', v) : binary('hash', v);
}

/** Hash functions; digests are lower-case hex (md5('hello') is 5d41402a...). */
export const HASH_FUNCTIONS: FunctionTable = {
  md5: spec([1], (args) => hexDigest('md5', binary('md5', args[0]))),
  sha: spec([1], (args) => hexDigest('sha1', binary('sha', args[0]))),
  sha256: spec([1], (args) => hexDigest('sha256', binary('sha256', args[0]))),
  hash: spec([2], (args) => {
    const alg = text('hash', args[0]);
    const node = Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg] : undefined;
    available ??= new Set(getHashes());
    if (node === undefined || !available.has(node)) fail('hash', `unknown_hash_algorithm ${show(args[0])}`);
    return hexDigest(node, hashData(args[1]));
  }),
};
