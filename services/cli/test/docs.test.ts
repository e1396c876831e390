import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configMarkdown } from '../src/cli';

it('docs/configuration.md lists every configuration key as the schema defines it', () => {
  const doc = readFileSync(join(__dirname, '..', '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
  assert.equal(doc, configMarkdown(), 'regenerate with: node services/cli/bin/tributary.js config --markdown > docs/configuration.md');
});
