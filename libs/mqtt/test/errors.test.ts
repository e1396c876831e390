import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '@tributary/common';
import { createParser, generatePacket, RC } from '../src';

/** The first error the parser emits for a packet it must refuse (mqtt-packet may add its own after it). */
function parseError(bytes: Buffer): Error {
  const parser = createParser();
  const errors: Error[] = [];
  parser.on('error', (e) => errors.push(e));
  parser.parse(bytes);
  assert.ok(errors[0], 'no error emitted');
  return errors[0];
}

it("the parser's own checks emit a ProtocolError MALFORMED_PACKET with reason code 0x81", () => {
  // A PUBLISH whose topic is not UTF-8 [MQTT-1.5.4-1]: mqtt-packet alone would read it as U+FFFD.
  const publish = generatePacket({ cmd: 'publish', topic: 'ab', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false });
  publish.set([0xc3, 0x28], publish.length - 2);
  const err = parseError(publish);
  assert.ok(err instanceof ProtocolError);
  assert.equal(err.code, 'MALFORMED_PACKET');
  assert.equal(err.reasonCode, RC.MALFORMED_PACKET);
  assert.equal(err.message, 'invalid UTF-8 string');

  // QoS 1 PUBLISH with packet identifier 0 [MQTT-2.3.1-1].
  const zeroId = generatePacket({ cmd: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 1, messageId: 1, retain: false, dup: false });
  zeroId.writeUInt16BE(0, zeroId.length - 2);
  const idErr = parseError(zeroId);
  assert.ok(idErr instanceof ProtocolError);
  assert.equal(idErr.message, 'packet identifier 0');
});
