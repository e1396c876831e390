import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { call, fails, hex } from './functions-util';

describe('compression functions', () => {
  it("zip is raw DEFLATE and zip_compress zlib-framed (EMQX's examples)", () => {
    assert.equal(call('bin2hexstr', call('zip', 'hello')), 'CB48CDC9C90700');
    assert.equal(call('unzip', call('hexstr2bin', 'CB48CDC9C90700')), 'hello');
    assert.equal(call('bin2hexstr', call('zip_compress', 'hello')), '789CCB48CDC9C90700062C0215');
    assert.equal(call('zip_uncompress', call('hexstr2bin', '789CCB48CDC9C90700062C0215')), 'hello');
  });

  it('gzip has the gzip header and trailer; gunzip reads EMQX-made gzip', () => {
    const gz = call('gzip', 'hello') as Buffer;
    assert.deepEqual(gz.subarray(0, 3), hex('1f8b08'));
    // The docs' bytes (made on another OS: byte 9 differs) decompress the same.
    assert.equal(call('gunzip', call('hexstr2bin', '1F8B0800000000000013CB48CDC9C9070086A6103605000000')), 'hello');
    assert.equal(call('gunzip', gz), 'hello');
  });

  it('round-trip any bytes, and report corrupt input', () => {
    for (const b of [Buffer.alloc(0), randomBytes(1000), Buffer.from('x'.repeat(10000))]) {
      for (const [c, d] of [
        ['gzip', 'gunzip'],
        ['zip', 'unzip'],
        ['zip_compress', 'zip_uncompress'],
      ] as const) {
        const back = call(d, call(c, b));
        assert.deepEqual(Buffer.isBuffer(back) ? back : Buffer.from(back as string), b, c);
      }
    }
    fails(() => call('gunzip', 'not gzip'), 'data_error');
    fails(() => call('zip_uncompress', hex('0102')), 'data_error');
    fails(() => call('gzip', 1));
  });

  it('refuse to inflate past 64 MiB (decompression bombs)', () => {
    const bomb = gzipSync(Buffer.alloc(65 * 1024 * 1024));
    fails(() => call('gunzip', bomb), 'data_error');
  });
});
