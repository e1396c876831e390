import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressLog } from '../src';

it('progress lines come at most once per interval, none before the first interval', () => {
  const lines: [object, string][] = [];
  let now = 1000;
  const p = new ProgressLog({ info: (o, m) => lines.push([o, m]) }, 'restoring', 2000, () => now);
  for (let i = 1; i <= 10; i++) {
    now += 500;
    p.report(() => ({ done: i }));
  }
  assert.deepEqual(lines, [
    [{ done: 4 }, 'restoring'],
    [{ done: 8 }, 'restoring'],
  ]);
});
