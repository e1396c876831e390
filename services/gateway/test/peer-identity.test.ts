import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Broker, GatewayConfig } from '../src';
import { unescapeDnValue } from '../src';
import { channel, connectPacket, testBroker, wire } from './harness';

describe('identity from the TLS layer (peer_cert_as_*, TLS-PSK)', () => {
  let broker: Broker;
  let config: GatewayConfig;
  let close: () => Promise<void>;
  before(async () => ({ broker, config, close } = await testBroker({
        'listeners.ssl.default.peer_cert_as_username': 'cn',
        'listeners.ssl.default.peer_cert_as_clientid': 'dn',
        'listeners.wss.default.peer_cert_as_username': 'dn',
      })));
  after(() => close());

  /** CONNECTs over a channel on `listener` with the given certificate / PSK identity; returns the client the hooks see. */
  const connect = (listener: string, tls: { cert?: { cn?: string; dn?: string }; psk?: string }, username?: string) => {
    const { ch, io } = channel(broker, config);
    io.listener = listener;
    io.cert = tls.cert;
    io.psk = tls.psk;
    ch.handleIn(wire(connectPacket('sent-id', 5, username === undefined ? {} : { username })));
    return ch.client!;
  };
  const cert = { cn: 'device-7', dn: 'CN=device-7,O=Acme' };

  it('ssl: the CN replaces the username and the DN the client id', () => {
    const c = connect('ssl:default', { cert }, 'sent-user');
    assert.equal(c.username, 'device-7');
    assert.equal(c.clientId, 'CN=device-7,O=Acme');
  });

  it('wss: dn as username, the client id stays', () => {
    const c = connect('wss:default', { cert }, 'sent-user');
    assert.equal(c.username, 'CN=device-7,O=Acme');
    assert.equal(c.clientId, 'sent-id');
  });

  it('no verified certificate, or a listener without the keys: the CONNECT stands', () => {
    assert.equal(connect('ssl:default', {}, 'sent-user').username, 'sent-user');
    const tcp = connect('tcp:default', { cert }, 'sent-user');
    assert.equal(tcp.username, 'sent-user');
    assert.equal(tcp.clientId, 'sent-id');
  });

  it('TLS-PSK: the identity is the username of a client that sent none', () => {
    assert.equal(connect('ssl:default', { psk: 'sensor-1' }).username, 'sensor-1');
    assert.equal(connect('ssl:default', { psk: 'sensor-1' }, 'explicit').username, 'explicit');
  });

  it('DN values lose their RFC 4514 escapes for the CN', () => {
    assert.equal(unescapeDnValue('Acme\\, Inc\\ '), 'Acme, Inc ');
    assert.equal(unescapeDnValue('a\\0Ab'), 'a\nb');
  });
});
