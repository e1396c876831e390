import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envName } from '@tributary/common';
import { describeTributaryConfig as describeConfig, loadTributaryConfig as loadConfig } from '../src';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const { config } = loadConfig({ env: {} });
    assert.deepEqual(config.listeners.tcp.default.bind, { host: '0.0.0.0', port: 1883 });
    assert.deepEqual(config.listeners.ws.default.bind, { host: '0.0.0.0', port: 8083 });
    assert.equal(config.listeners.ws.default.path, '/mqtt');
    assert.deepEqual(config.dashboard.listeners.http.bind, { host: '0.0.0.0', port: 18083 });
    assert.equal(config.node.data_dir, 'data');
    assert.equal(config.backbone.type, 'embedded');
  });

  it('takes TRIBUTARY_<PATH> variables with __ between levels', () => {
    const { config, warnings } = loadConfig({
      env: { TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: '127.0.0.1:2883', TRIBUTARY_NODE__NAME: 'n1@host', TRIBUTARY_MQTT__MAX_PACKET_SIZE: '2MB', TRIBUTARY_MQTT__RETRY_INTERVAL: '5s' },
    });
    assert.deepEqual(config.listeners.tcp.default.bind, { host: '127.0.0.1', port: 2883 });
    assert.equal(config.node.name, 'n1@host');
    assert.equal(config.mqtt.max_packet_size, 2 * 1024 * 1024);
    assert.equal(config.mqtt.retry_interval, 5000);
    assert.deepEqual(warnings, []);
    assert.equal(envName('listeners.tcp.default.bind'), 'TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND');
  });

  it('warns about unknown TRIBUTARY_ variables, naming them', () => {
    const { warnings } = loadConfig({ env: { TRIBUTARY_LISTENERS__TCP__DEFAULT__BINDD: 'x', PATH: '/bin' } });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /TRIBUTARY_LISTENERS__TCP__DEFAULT__BINDD/);
  });

  it('rejects invalid values with the key and its source', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: 'nope' }, /listeners\.tcp\.default\.bind \(environment variable TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND\)/],
      [{ TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: '1.2.3.4:70000' }, /port must be/],
      [{ TRIBUTARY_MQTT__MAX_INFLIGHT: '0' }, /mqtt\.max_inflight.*between 1 and 65535/],
      [{ TRIBUTARY_LOG__LEVEL: 'loud' }, /log\.level.*expected one of/],
      [{ TRIBUTARY_MQTT__RETAIN_AVAILABLE: 'maybe' }, /mqtt\.retain_available/],
    ];
    for (const [env, re] of bad) {
      assert.throws(() => loadConfig({ env }), (err: unknown) => err instanceof ConfigError && re.test(err.message));
    }
  });

  it('reads a JSON file, nested or dotted, and the environment wins over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'tributary.json');
    writeFileSync(file, JSON.stringify({ node: { name: 'file@x' }, 'mqtt.max_inflight': 7, bogus: { key: 1 } }));
    const { config, warnings } = loadConfig({ file, env: { TRIBUTARY_NODE__NAME: 'env@x' } });
    assert.equal(config.node.name, 'env@x');
    assert.equal(config.mqtt.max_inflight, 7);
    assert.match(warnings.join('\n'), /unknown key "bogus.key"/);
    writeFileSync(file, '{ not json');
    assert.throws(() => loadConfig({ file, env: {} }), /config file/);
  });

  it('documents every key', () => {
    for (const k of describeConfig()) {
      assert.ok(k.doc.length > 5, k.key);
      assert.equal(k.env, envName(k.key));
    }
  });
});
