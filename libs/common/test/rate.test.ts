import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigProblem, configFragment, composeConfigSchema, INFINITE_RATE, loadConfig, parseRate, rate, Rate, sizeOrFraction } from '../src';

function ok(raw: unknown): Rate {
  const r = parseRate(raw);
  assert.ok(r instanceof Rate, `${String(raw)}: ${(r as ConfigProblem).message}`);
  return r;
}

describe('rate keys', () => {
  it('reads counts and byte sizes per period, and infinity', () => {
    assert.deepEqual([ok('1000/s').amount, ok('1000/s').periodMs], [1000, 1000]);
    assert.deepEqual([ok('10MB/s').amount, ok('10MB/s').periodMs], [10 * 1024 * 1024, 1000]);
    assert.deepEqual([ok('100/m').amount, ok('100/m').periodMs], [100, 60_000]);
    assert.deepEqual([ok('500/10s').amount, ok('500/10s').periodMs], [500, 10_000]);
    assert.deepEqual([ok('64kb / 100ms').amount, ok('64kb / 100ms').periodMs], [65536, 100]);
    assert.equal(ok('1000/s').perMs, 1);
    assert.equal(ok(250).perMs, 0.25);
    assert.equal(ok('250').perMs, 0.25);
    assert.equal(ok('infinity'), INFINITE_RATE);
    assert.equal(INFINITE_RATE.infinite, true);
    assert.equal(ok('1/s').infinite, false);
  });

  it('refuses what is not a positive rate, saying why', () => {
    for (const bad of ['', 'fast', '0', '0/s', '10XB/s', '10/fortnight', '-1/s', '/s', 0, true]) {
      const r = parseRate(bad);
      assert.ok(r instanceof ConfigProblem, `${String(bad)} should be refused`);
    }
    assert.match((parseRate('10/fortnight') as ConfigProblem).message, /time unit "fortnight"/);
    assert.match((parseRate('10XB/s') as ConfigProblem).message, /size unit "XB"/);
  });

  it('loads from the environment and prints as written', () => {
    const schema = composeConfigSchema([configFragment('@example/rates', { l: { r: rate('infinity', 'A rate.'), heap: sizeOrFraction('0.9', 'A heap.') } })]);
    const { config } = loadConfig(schema, { env: { TRIBUTARY_L__R: '10MB/s' } });
    assert.equal(config.l.r.amount, 10 * 1024 * 1024);
    assert.equal(JSON.stringify(config.l.r), '"10MB/s"');
    assert.equal(JSON.stringify(loadConfig(schema, { env: {} }).config.l.r), '"infinity"');
    assert.throws(() => loadConfig(schema, { env: { TRIBUTARY_L__R: 'lots' } }), /l\.r/);
  });
});

describe('size-or-fraction keys', () => {
  const leaf = sizeOrFraction('0.9', 'doc');
  it('reads a bare number up to 1 as a fraction and sizes as bytes', () => {
    assert.deepEqual(leaf.default, { fraction: 0.9 });
    assert.deepEqual(leaf.parse('0.5'), { fraction: 0.5 });
    assert.deepEqual(leaf.parse(1), { fraction: 1 });
    assert.deepEqual(leaf.parse('1B'), { bytes: 1 });
    assert.deepEqual(leaf.parse('512MB'), { bytes: 512 * 1024 * 1024 });
    assert.deepEqual(leaf.parse(4096), { bytes: 4096 });
    assert.ok(leaf.parse('0') instanceof ConfigProblem);
    assert.ok(leaf.parse('1.5') instanceof ConfigProblem);
    assert.ok(leaf.parse('lots') instanceof ConfigProblem);
  });
});
