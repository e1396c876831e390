import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BannedRecord, bannedCodec, bannedKey } from '../src';

const fixture = (name: string): Buffer => readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', name));
const BAN: BannedRecord = { as: 'username_re', who: '^bad/.*', by: 'mgmt_api', reason: 'fixture', at: 1_700_000_000, until: 1_800_000_000 };

describe('banned records', () => {
  it('decodes the committed version 1 encoding and writes it again', () => {
    assert.deepEqual(bannedCodec.decode(fixture('banned.v1.avro'), bannedKey(BAN.as, BAN.who)), BAN);
    assert.deepEqual(bannedCodec.encode(BAN), fixture('banned.v1.avro'));
  });

  it('keeps a ban without an end as infinity', () => {
    const forever: BannedRecord = { ...BAN, as: 'peerhost_net', who: '10.0.0.0/8', until: 'infinity' };
    assert.deepEqual(bannedCodec.decode(bannedCodec.encode(forever)), forever);
  });

  it('rejects a record stored under another key, an empty who and JSON', () => {
    assert.throws(() => bannedCodec.decode(bannedCodec.encode(BAN), 'clientid/x'), /key/);
    assert.throws(() => bannedCodec.decode(bannedCodec.encode({ ...BAN, who: '' })), /empty who/);
    assert.throws(() => bannedCodec.decode(Buffer.from('{"as":"clientid"}')), /never JSON/);
  });
});
