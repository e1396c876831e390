import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bool, composeConfigSchema, ConfigSchemaError, configFragment, describeConfig, int, loadConfig, str } from '../src';

const nodeKeys = configFragment('@tributary/common', { node: { name: str('n@h', 'Node name.') } });
const limits = configFragment('@example/limits', { limits: { max_clients: int(10, 'Most clients.', 1), strict: bool(false, 'Refuse rather than warn.') } });

describe('configuration fragments', () => {
  it('compose into one schema, keys in fragment order, loaded and documented as one', () => {
    const schema = composeConfigSchema([nodeKeys, limits]);
    assert.deepEqual(
      describeConfig(schema).map((k) => [k.key, k.env]),
      [
        ['node.name', 'TRIBUTARY_NODE__NAME'],
        ['limits.max_clients', 'TRIBUTARY_LIMITS__MAX_CLIENTS'],
        ['limits.strict', 'TRIBUTARY_LIMITS__STRICT'],
      ],
    );
    const { config } = loadConfig(schema, { env: { TRIBUTARY_LIMITS__MAX_CLIENTS: '3' } });
    assert.equal(config.node.name, 'n@h');
    assert.equal(config.limits.max_clients, 3);
    assert.equal(config.limits.strict, false);
  });

  it('refuses a top-level key owned by two packages, naming both', () => {
    const again = configFragment('@example/other', { node: { data_dir: str('data', 'Data directory.') } });
    assert.throws(
      () => composeConfigSchema([nodeKeys, limits, again]),
      (err: unknown) => err instanceof ConfigSchemaError && err.code === 'CONFIG_SCHEMA' && /config key "node" is defined by both @tributary\/common and @example\/other/.test(err.message),
    );
  });

  it('refuses a key the environment could not set (capitals, double underscore), naming it and its package', () => {
    for (const [schema, path] of [
      [{ limits: { maxClients: int(1, 'Most clients.') } }, 'limits.maxClients'],
      [{ limits: { max__clients: int(1, 'Most clients.') } }, 'limits.max__clients'],
      [{ _limits: { max: int(1, 'Most clients.') } }, '_limits'],
    ] as const) {
      const fragment = configFragment('@example/bad', schema);
      assert.throws(
        () => composeConfigSchema([nodeKeys, fragment]),
        (err: unknown) => err instanceof ConfigSchemaError && err.message.includes(`config key "${path}" of @example/bad`),
      );
    }
  });
});
