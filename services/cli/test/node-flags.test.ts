import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingNodeFlags } from '../src/cli';

const ROOT = join(__dirname, '..', '..', '..', '..');
const read = (...p: string[]): string => readFileSync(join(ROOT, ...p), 'utf8');
const FLAGS = JSON.parse(read('services', 'cli', 'bin', 'node-flags.json')) as string[];

it('every shipped start path passes the Node.js flags of bin/node-flags.json: the bin, npm start, the image', () => {
  assert.ok(FLAGS.length > 0);
  const shebang = read('services', 'cli', 'bin', 'tributary.js').split('\n')[0]!;
  const npmStart = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
  const entrypoint = read('Dockerfile').split('\n').find((l) => l.startsWith('ENTRYPOINT'))!;
  for (const flag of FLAGS) {
    assert.ok(shebang.startsWith('#!/usr/bin/env -S node ') && shebang.includes(` ${flag}`), `the bin's shebang lacks ${flag}: ${shebang}`);
    assert.ok(npmStart.includes(`node ${flag} `), `npm start lacks ${flag}: ${npmStart}`);
    assert.ok(entrypoint.includes(`"${flag}"`), `the image's ENTRYPOINT lacks ${flag}: ${entrypoint}`);
  }
});

it('missingNodeFlags: a flag on the command line or in NODE_OPTIONS, with any value, counts as given', () => {
  const names = FLAGS.map((f) => f.split('=')[0]!);
  assert.deepEqual(missingNodeFlags([], ''), FLAGS);
  assert.deepEqual(missingNodeFlags(FLAGS, ''), []);
  assert.deepEqual(missingNodeFlags([], FLAGS.join(' ')), []);
  assert.deepEqual(missingNodeFlags(names.map((n) => `${n}=64`), ''), []);
  assert.deepEqual(missingNodeFlags(['--max_semi_space_size=4'], ''), FLAGS.filter((f) => !f.startsWith('--max-semi-space-size')));
});
