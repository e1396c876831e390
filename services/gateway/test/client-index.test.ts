// The sorted client index of GET /clients: merged, not re-sorted, as sessions come and go.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClientIndex } from '../src/client-index';
import type { Session } from '../src/session/session';

describe('ClientIndex', () => {
  it('stays sorted through additions and removals; unchanged versions reuse the array', () => {
    const map = new Map<string, Session>();
    const src = { sessionsVersion: 0, allSessions: () => map.values(), session: (id: string) => map.get(id) };
    const set = (...ids: string[]): void => {
      for (const id of ids) map.set(id, { clientId: id } as Session);
      src.sessionsVersion++;
    };
    const idx = new ClientIndex(src);
    set('c', 'a', 'b');
    assert.deepEqual(idx.sorted(), ['a', 'b', 'c']);
    const same = idx.sorted();
    assert.equal(idx.sorted(), same);
    map.delete('b');
    set('ab', 'z');
    assert.deepEqual(idx.sorted(), ['a', 'ab', 'c', 'z']);
    map.delete('a');
    src.sessionsVersion++;
    assert.deepEqual(idx.sorted(), ['ab', 'c', 'z']);
    for (let i = 0; i < 10_000; i++) {
      const id = `k${String(i).padStart(5, '0')}`;
      map.set(id, { clientId: id } as Session);
    }
    src.sessionsVersion++;
    const t = Date.now();
    const all = idx.sorted();
    assert.equal(all.length, 10_003);
    assert.ok(all.every((x, i) => i === 0 || all[i - 1]! < x));
    assert.ok(Date.now() - t < 500);
  });
});
