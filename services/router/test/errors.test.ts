import { it } from 'node:test';
import assert from 'node:assert/strict';
import { BackboneError } from '@tributary/common';
import { type BundledDelivery, bundleVersion, decodeBundle, encodeBundle } from '../src';

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

it('a bundle is version 1 without usernames (what older gateways read) and version 2 with them; an unknown version is refused', () => {
  const plain = [{ offset: 1, value: Buffer.from('a'), shared: undefined }];
  assert.equal(bundleVersion(plain), 1);
  const withUser = [...plain, { offset: 2, value: Buffer.from('bb'), shared: 'g:c1', username: 'alice' }];
  assert.equal(bundleVersion(withUser), 2);
  const seen: BundledDelivery[] = [];
  decodeBundle(encodeBundle(withUser), (d) => seen.push({ ...d, value: Buffer.from(d.value) }), '2');
  assert.deepEqual(seen, [
    { offset: 1, value: Buffer.from('a'), shared: undefined, username: undefined },
    { offset: 2, value: Buffer.from('bb'), shared: 'g:c1', username: 'alice' },
  ]);
  assert.throws(() => decodeBundle(encodeBundle(plain), () => undefined, '3'), (err: unknown) => err instanceof BackboneError && err.code === 'RECORD_INVALID');
});
