import { it } from 'node:test';
import assert from 'node:assert/strict';
import { BackboneError } from '@tributary/common';
import { decodeBundle, encodeBundle } from '../src';

it('a truncated delivery bundle read from the backbone is a BackboneError RECORD_INVALID', () => {
  const bundle = encodeBundle([{ offset: 7, value: Buffer.from('delivery'), shared: 'g' }]);
  const seen: number[] = [];
  decodeBundle(bundle, (d) => seen.push(d.offset));
  assert.deepEqual(seen, [7]);
  assert.throws(
    () => decodeBundle(bundle.subarray(0, bundle.length - 1), () => undefined),
    (err: unknown) => err instanceof BackboneError && err.code === 'RECORD_INVALID' && err.message === 'truncated bundle',
  );
});
