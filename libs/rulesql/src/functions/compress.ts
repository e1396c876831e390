import { deflateRawSync, deflateSync, gunzipSync, gzipSync, inflateRawSync, inflateSync, type ZlibOptions } from 'node:zlib';
import { RuleEvalError } from '../value';
import { binOut, bytes, spec, type FunctionTable } from './args';

/** The most a decompression may produce (a guard against decompression bombs). */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const INFLATE: ZlibOptions = { maxOutputLength: MAX_INFLATED_BYTES };

/** A compression function over text or a binary. */
function codec(name: string, f: (b: Buffer) => Buffer) {
  return spec([1], (args) => {
    const input = bytes(name, args[0]);
    let out: Buffer;
    try {
      out = f(input);
    } catch (e) {
      throw new RuleEvalError('data_error', `${name}: ${(e as Error).message}`);
    }
    return binOut(out);
  });
}

/**
 * Compression functions as Erlang's zlib module has them: gzip/gunzip (gzip framing), zip/unzip
 * (raw DEFLATE, no header or checksum: zip('hello') is CB48CDC9C90700) and zip_compress/
 * zip_uncompress (zlib framing: 789CCB48CDC9C90700062C0215).
 */
export const COMPRESS_FUNCTIONS: FunctionTable = {
  gzip: codec('gzip', (b) => gzipSync(b)),
  gunzip: codec('gunzip', (b) => gunzipSync(b, INFLATE)),
  zip: codec('zip', (b) => deflateRawSync(b)),
  unzip: codec('unzip', (b) => inflateRawSync(b, INFLATE)),
  zip_compress: codec('zip_compress', (b) => deflateSync(b)),
  zip_uncompress: codec('zip_uncompress', (b) => inflateSync(b, INFLATE)),
};
