import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkTopicFilter, checkTopicName, topicMatches, TopicSet, TopicTrie } from '../src';

describe('topic names and filters', () => {
  it('rejects wildcards, empty names and U+0000 in topic names', () => {
    assert.equal(checkTopicName('a/b'), null);
    assert.equal(checkTopicName('a/+'), 'wildcard-in-name');
    assert.equal(checkTopicName('a/#'), 'wildcard-in-name');
    assert.equal(checkTopicName(''), 'empty');
    assert.equal(checkTopicName('a\u0000b'), 'null-character');
    assert.equal(checkTopicName('a/b/c', 2), 'too-many-levels');
  });

  it('validates wildcard placement in filters', () => {
    for (const ok of ['#', '+', 'a/+/b', 'a/#', '+/+', '/', '$SYS/#', 'a//b']) assert.equal(checkTopicFilter(ok), null, ok);
    for (const bad of ['a#', 'a/#/b', 'a+', 'a/b+/c', '#/a', '']) assert.notEqual(checkTopicFilter(bad), null, bad);
  });

  it('matches per the spec, including $-topics', () => {
    const cases: [string, string, boolean][] = [
      ['a/b', 'a/b', true],
      ['a/+', 'a/b', true],
      ['a/+', 'a/b/c', false],
      ['a/#', 'a', true],
      ['a/#', 'a/b/c', true],
      ['#', 'a/b', true],
      ['+/+', '/a', true],
      ['#', '$SYS/x', false],
      ['+/x', '$SYS/x', false],
      ['$SYS/#', '$SYS/x', true],
      ['a/+/c', 'a//c', true],
    ];
    for (const [f, t, want] of cases) assert.equal(topicMatches(f, t), want, `${f} ~ ${t}`);
  });
});

describe('TopicTrie', () => {
  it('finds exactly the filters topicMatches accepts', () => {
    const filters = ['#', '+', 'a', 'a/b', 'a/+', 'a/#', '+/b', '+/+', 'a/b/c', 'a/+/c', '$SYS/#', '$SYS/+', '/a', '+/#', 'a//b'];
    const topics = ['a', 'a/b', 'a/b/c', 'a/x/c', 'b', '$SYS/x', '$SYS', '/a', 'a//b', 'x/b'];
    const trie = new TopicTrie<string>();
    for (const f of filters) trie.set(f, `c-${f}`, f);
    for (const t of topics) {
      const got: string[] = [];
      trie.match(t, (_id, f) => got.push(f));
      const want = filters.filter((f) => topicMatches(f, t));
      assert.deepEqual(got.sort(), want.sort(), t);
    }
  });

  it('keeps one entry per (filter, id) and prunes on delete', () => {
    const trie = new TopicTrie<number>();
    assert.equal(trie.set('a/b', 'x', 1), true);
    assert.equal(trie.set('a/b', 'x', 2), false);
    assert.equal(trie.set('a/b', 'y', 3), true);
    assert.equal(trie.size, 2);
    assert.equal(trie.get('a/b', 'x'), 2);
    assert.equal(trie.delete('a/b', 'x'), true);
    assert.equal(trie.delete('a/b', 'x'), false);
    assert.equal(trie.delete('a/b', 'y'), true);
    assert.equal(trie.size, 0);
    const seen: string[] = [];
    trie.match('a/b', (id) => seen.push(id));
    assert.deepEqual(seen, []);
  });
});

describe('TopicSet (retained index)', () => {
  it('returns the topics a filter matches', () => {
    const set = new TopicSet();
    for (const t of ['a', 'a/b', 'a/b/c', 'x/b', '$SYS/up', '/lead']) set.add(t);
    const m = (f: string): string[] => set.match(f).sort();
    assert.deepEqual(m('#'), ['/lead', 'a', 'a/b', 'a/b/c', 'x/b']);
    assert.deepEqual(m('a/#'), ['a', 'a/b', 'a/b/c']);
    assert.deepEqual(m('+/b'), ['a/b', 'x/b']);
    assert.deepEqual(m('$SYS/#'), ['$SYS/up']);
    assert.deepEqual(m('+/lead'), ['/lead']);
    set.delete('a/b');
    assert.deepEqual(m('a/#'), ['a', 'a/b/c']);
    assert.equal(set.size, 5);
  });
});
