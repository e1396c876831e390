import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { ValueMap } from '../src/value';
import { callIn, fails } from './functions-util';

const event: ValueMap = {
  id: '0005F8F84FFFAFB9F44200000BE80002',
  clientid: 'c_emqx',
  username: 'u_emqx',
  payload: '{"a":{"b":{"c":"c"}},"n":[1,2]}',
  peerhost: '127.0.0.1',
  topic: 't/a/b',
  qos: 1,
  flags: { retain: true, dup: false },
};

describe('message-context functions', () => {
  it('read the event columns, undefined when the event has none', () => {
    assert.equal(callIn(event, 'msgid'), event.id);
    assert.equal(callIn(event, 'qos'), 1);
    assert.equal(callIn(event, 'clientid'), 'c_emqx');
    assert.equal(callIn(event, 'username'), 'u_emqx');
    assert.equal(callIn(event, 'clientip'), '127.0.0.1');
    assert.equal(callIn(event, 'peerhost'), '127.0.0.1');
    assert.equal(callIn(event, 'topic'), 't/a/b');
    assert.equal(callIn(event, 'payload'), event.payload);
    for (const f of ['msgid', 'qos', 'clientid', 'username', 'clientip', 'peerhost', 'topic', 'payload']) assert.equal(callIn({}, f), undefined, f);
  });

  it('flags() is the flags map ({} without one) and flag(name) one flag', () => {
    assert.deepEqual(callIn(event, 'flags'), { retain: true, dup: false });
    assert.deepEqual(callIn({}, 'flags'), {});
    assert.equal(callIn(event, 'flag', 'retain'), true);
    assert.equal(callIn(event, 'flag', 'dup'), false);
    assert.equal(callIn({}, 'flag', 'dup'), undefined);
  });

  it('topic(n) is the n-th level, 1-based; a level past the end is an error', () => {
    assert.equal(callIn(event, 'topic', 1), 't');
    assert.equal(callIn(event, 'topic', 3), 'b');
    assert.equal(callIn({ topic: 'topic/#' }, 'topic', 1), 'topic');
    fails(() => callIn(event, 'topic', 4));
    fails(() => callIn(event, 'topic', 0));
    fails(() => callIn(event, 'topic', 'x'));
  });

  it("payload(path) JSON-decodes the payload and follows the dotted path ('a.b.c')", () => {
    assert.equal(callIn(event, 'payload', 'a.b.c'), 'c');
    assert.deepEqual(callIn(event, 'payload', 'a.b'), { c: 'c' });
    assert.deepEqual(callIn(event, 'payload', 'n'), [1, 2]);
    assert.equal(callIn(event, 'payload', 'a.x'), undefined);
    assert.equal(callIn({ payload: 'not json' }, 'payload', 'a'), undefined);
    assert.equal(callIn({ payload: Buffer.from('{"k":2}') }, 'payload', 'k'), 2);
    // A payload already decoded (an alias replaced it with a map) is used as it is.
    assert.equal(callIn({ payload: { a: { b: 3 } } }, 'payload', 'a.b'), 3);
    // The same event decodes once; a changed payload is decoded again.
    const e: ValueMap = { payload: '{"v":1}' };
    assert.equal(callIn(e, 'payload', 'v'), 1);
    e.payload = '{"v":2}';
    assert.equal(callIn(e, 'payload', 'v'), 2);
  });

  it('contains_topic matches a filter exactly, contains_topic_match by MQTT wildcards, /3 also by QoS', () => {
    const filters = [
      { topic: 't/1', qos: 1 },
      { topic: 's/#', qos: 2 },
    ];
    assert.equal(callIn({}, 'contains_topic', filters, 't/1'), true);
    assert.equal(callIn({}, 'contains_topic', filters, 's/x'), false);
    assert.equal(callIn({}, 'contains_topic', filters, 't/1', 1), true);
    assert.equal(callIn({}, 'contains_topic', filters, 't/1', 0), false);
    assert.equal(callIn({}, 'contains_topic_match', filters, 's/x/y'), true);
    assert.equal(callIn({}, 'contains_topic_match', filters, 'u/1'), false);
    assert.equal(callIn({}, 'contains_topic_match', filters, 's/x', 2), true);
    assert.equal(callIn({}, 'contains_topic_match', filters, 's/x', 1), false);
    assert.equal(callIn({}, 'contains_topic_match', ['a/+'], 'a/b'), true);
    fails(() => callIn({}, 'contains_topic', 'not a list', 't'));
  });

  it('null() is undefined; coalesce skips undefined and null, coalesce_ne empty strings too', () => {
    assert.equal(callIn({}, 'null'), undefined);
    assert.equal(callIn({}, 'coalesce', []), undefined);
    assert.equal(callIn({}, 'coalesce', [undefined, undefined, undefined]), undefined);
    assert.equal(callIn({}, 'coalesce', [undefined, 42, undefined]), 42);
    assert.equal(callIn({}, 'coalesce', ['hello', undefined]), 'hello');
    assert.equal(callIn({}, 'coalesce', 'hello', 'world'), 'hello');
    assert.equal(callIn({}, 'coalesce', undefined, 'world'), 'world');
    assert.equal(callIn({}, 'coalesce', null, 0), 0);
    assert.equal(callIn({}, 'coalesce', '', 'x'), '');
    assert.equal(callIn({}, 'coalesce_ne', []), undefined);
    assert.equal(callIn({}, 'coalesce_ne', ['', undefined, '']), undefined);
    assert.equal(callIn({}, 'coalesce_ne', ['', 42, undefined]), 42);
    assert.equal(callIn({}, 'coalesce_ne', ['hello', '']), 'hello');
    assert.equal(callIn({}, 'coalesce_ne', '', 'world'), 'world');
    assert.equal(callIn({}, 'coalesce_ne', 'hello', 'world'), 'hello');
    fails(() => callIn({}, 'coalesce', 'not a list'));
  });
});
