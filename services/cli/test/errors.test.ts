import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, silentLogger, StartupError } from '@tributary/common';
import { TributaryNode } from '../src';

it('a service role on the embedded backbone is a ConfigError; a data dir that cannot be made is a StartupError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-errors-'));
  try {
    const { config } = loadConfig({ env: {}, overrides: { 'node.data_dir': dir } });
    await assert.rejects(new TributaryNode(config, silentLogger, 'router').start(), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, /^tributary router runs against Kafka: set backbone\.type = kafka/);
      return true;
    });
    // A file where the directory should be.
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const blocked = loadConfig({ env: {}, overrides: { 'node.data_dir': join(file, 'data') } }).config;
    await assert.rejects(new TributaryNode(blocked, silentLogger, 'all').start(), (err: unknown) => {
      assert.ok(err instanceof StartupError);
      assert.equal(err.code, 'DATA_DIR_UNAVAILABLE');
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOTDIR');
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
