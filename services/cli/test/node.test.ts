import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { loadTributaryConfig, TributaryNode } from '../src';

/** A single node on loopback port 0 (TCP and the HTTP API only) whose log lines are kept. */
function singleNode(overrides: Record<string, unknown> = {}): { node: TributaryNode; logs: Record<string, unknown>[]; dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-node-'));
  const { config } = loadTributaryConfig({
    env: {},
    overrides: {
      'node.data_dir': dataDir,
      'listeners.tcp.default.bind': '127.0.0.1:0',
      'listeners.ssl.default.enable': false,
      'listeners.ws.default.enable': false,
      'listeners.wss.default.enable': false,
      'dashboard.listeners.http.bind': '127.0.0.1:0',
      ...overrides,
    },
  });
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  return { node: new TributaryNode(config, log, 'all'), logs, dataDir };
}

describe('a node composed of services', () => {
  it('starts the services of its role and stops them in reverse, clients first told the server is shutting down', async () => {
    const { node, logs, dataDir } = singleNode();
    try {
      await node.start();
      assert.deepEqual(node.services, ['backbone', 'broker', 'auth', 'sys', 'plugins', 'commands', 'events', 'rules', 'gateway', 'api']);
      assert.equal(node.running, true);
      const port = node.gateway!.listeners[0]!.port;
      const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'node-test' });
      await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
      const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
      await node.stop();
      assert.equal(await disconnect, 0x8b);
      client.end(true);
      const stopped = logs.filter((l) => l.msg === 'service stopped').map((l) => l.service);
      assert.deepEqual(stopped, ['api', 'gateway', 'rules', 'events', 'commands', 'plugins', 'sys', 'auth', 'broker', 'backbone']);
      assert.deepEqual(node.services, []);
    } finally {
      // A failed assertion must still stop the node, or the test process never ends (stop is idempotent).
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('leaves out the services its configuration turns off', async () => {
    const { node, dataDir } = singleNode({ 'dashboard.listeners.http.enable': false, 'bridge.kafka.commands.enable': false });
    try {
      await node.start();
      assert.deepEqual(node.services, ['backbone', 'broker', 'auth', 'sys', 'plugins', 'events', 'rules', 'gateway']);
      assert.equal(node.api, undefined);
      await node.stop();
    } finally {
      // A failed assertion must still stop the node, or the test process never ends (stop is idempotent).
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
