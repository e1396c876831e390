import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ConfigError, ConflictError, ProtocolError, silentLogger, StartupError } from '@tributary/common';
import { HookRegistry } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import { EnhancedAuthRegistry, Gateway, ProtocolViolation, tlsServerOptions } from '../src';
import { checkProperties } from '../src/channel/properties';
import { testBroker, wire } from './harness';

/** The gateway's throw sites give the error tree's classes and codes, with messages unchanged. */
describe('gateway errors', () => {
  it('a listener that cannot bind is a StartupError LISTENER_BIND_FAILED caused by the bind', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const t = await testBroker({ 'listeners.tcp.default.bind': `127.0.0.1:${port}` });
    const gateway = new Gateway(t.config, t.broker, silentLogger);
    try {
      await assert.rejects(gateway.start(), (err: unknown) => {
        assert.ok(err instanceof StartupError);
        assert.equal(err.code, 'LISTENER_BIND_FAILED');
        assert.match(err.message, new RegExp(`^listener tcp:default cannot bind 127\\.0\\.0\\.1:${port}: `));
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
        return true;
      });
    } finally {
      await gateway.stop();
      await t.close();
      taken.close();
    }
  });

  it('a TLS listener with a certfile but no keyfile is a ConfigError naming the key', async () => {
    const ssl = { certfile: '/tmp/cert.pem', keyfile: '', cacertfile: '', versions: 'tlsv1.2,tlsv1.3', ciphers: '', verify: 'verify_none' as const, fail_if_no_peer_cert: false };
    await assert.rejects(tlsServerOptions('listeners.ssl.default', ssl, '/tmp', silentLogger), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.equal(err.message, 'listeners.ssl.default.ssl_options: certfile and keyfile must be set together');
      return true;
    });
  });

  it('an enhanced-authentication method registered twice is a ConflictError', () => {
    const registry = new EnhancedAuthRegistry(new HookRegistry({ logger: silentLogger, timeoutMs: 1000 }));
    const provider = { method: 'SCRAM-SHA-1', start: () => ({ result: 'success' as const }), continue: () => ({ result: 'success' as const }) };
    registry.register(provider);
    assert.throws(() => registry.register(provider), (err: unknown) => err instanceof ConflictError && err.code === 'AUTH_METHOD_REGISTERED' && err.status === 409);
  });

  it("a handler's ProtocolViolation is the tree's ProtocolError, with the reason code to close with", () => {
    const publish = wire({ cmd: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { subscriptionIdentifier: 1 } }, 5);
    assert.throws(() => checkProperties(publish), (err: unknown) => {
      assert.ok(err instanceof ProtocolViolation);
      assert.ok(err instanceof ProtocolError);
      assert.equal(err.code, 'PROTOCOL_VIOLATION');
      assert.equal(err.reasonCode, RC.PROTOCOL_ERROR);
      assert.equal(err.message, 'Subscription Identifier from a client [MQTT-3.3.4-6]');
      return true;
    });
  });
});
