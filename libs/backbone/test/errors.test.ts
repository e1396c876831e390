import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BackboneError, StartupError, ValidationError } from '@tributary/common';
import { createKafkaBackbone, EmbeddedBackbone } from '../src';

/** The backbone's throw sites give the error tree's classes and codes, with messages unchanged. */
describe('backbone errors', () => {
  it('an invalid topic name is a ValidationError TOPIC_NAME_INVALID', async () => {
    await withDir(async (dataDir) => {
      const bb = new EmbeddedBackbone({ dataDir });
      await bb.start();
      try {
        await assert.rejects(bb.append('a topic', [{ key: null, value: Buffer.from('x') }]), (err: unknown) => {
          assert.ok(err instanceof ValidationError);
          assert.equal(err.code, 'TOPIC_NAME_INVALID');
          assert.equal(err.message, 'invalid backbone topic name "a topic" (allowed: A-Z a-z 0-9 . _ -, at most 249)');
          return true;
        });
      } finally {
        await bb.stop();
      }
    });
  });

  it('use before start() and after stop() is BACKBONE_NOT_RUNNING, not retriable', async () => {
    await withDir(async (dataDir) => {
      const bb = new EmbeddedBackbone({ dataDir });
      const notRunning = (why: string) => (err: unknown) => {
        assert.ok(err instanceof BackboneError);
        assert.equal(err.code, 'BACKBONE_NOT_RUNNING');
        assert.equal(err.retriable, false);
        assert.equal(err.message, `EmbeddedBackbone: cannot use append: ${why}`);
        return true;
      };
      await assert.rejects(bb.append('t', []), notRunning('call start() first'));
      await bb.start();
      await bb.stop();
      await assert.rejects(bb.append('t', []), notRunning('it is stopped'));
    });
  });

  it('a data directory open twice is a StartupError DATA_DIR_LOCKED', async () => {
    await withDir(async (dataDir) => {
      const first = new EmbeddedBackbone({ dataDir });
      await first.start();
      try {
        await assert.rejects(new EmbeddedBackbone({ dataDir }).start(), (err: unknown) => {
          assert.ok(err instanceof StartupError);
          assert.equal(err.code, 'DATA_DIR_LOCKED');
          assert.match(err.message, /^backbone data directory is already open in this process/);
          return true;
        });
      } finally {
        await first.stop();
      }
    });
  });

  it('bad options are a ValidationError INVALID_ARGUMENT, for both backbones', async () => {
    assert.throws(() => new EmbeddedBackbone({ dataDir: '' }), (err: unknown) => err instanceof ValidationError && err.code === 'INVALID_ARGUMENT');
    await assert.rejects(createKafkaBackbone({ brokers: [] }), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.message, 'KafkaBackbone: brokers is required');
      return true;
    });
  });
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tributary-errors-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
