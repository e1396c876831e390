// X.509 client certificates on the ssl and wss listeners: a test CA issues the server and
// client certificates; a certificate from another CA and a missing one are refused;
// peer_cert_as_username / peer_cert_as_clientid make the subject's CN or DN the identity that
// authorization (an acl.conf) and hooks ($SYS client events) see, whatever the client sent.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions } from 'mqtt';
import type { Packet } from 'mqtt-packet';
import * as mp from 'mqtt-packet';
import { connect as tlsConnect } from 'node:tls';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { issue, makeCa, Pem } from '../helpers/pki';
import { clientTracker, open, Opened, waitForMessage } from '../helpers/util';

const DN7 = 'CN=device-7,O=Acme,C=DE';

const ACL = `
{allow, {username, "device-7"}, publish, ["x"]}.
{allow, {clientid, "${DN7}"}, publish, ["by-clientid"]}.
{allow, {username, "${DN7}"}, publish, ["by-dn"]}.
{allow, all, subscribe, ["#", "$SYS/#"]}.
`;

/** Publishes at QoS 1 (5.0) and returns the PUBACK's reason code. */
async function pubackCode(o: Opened, topic: string): Promise<number> {
  const packets: Packet[] = [];
  o.client.on('packetreceive', (p) => packets.push(p));
  await o.client.publishAsync(topic, 'x', { qos: 1 }).catch(() => undefined);
  const ack = packets.find((p) => p.cmd === 'puback') as { reasonCode?: number } | undefined;
  assert.ok(ack, 'a PUBACK came back');
  return ack.reasonCode ?? 0;
}

describe('X.509 client certificates, peer_cert_as_username and peer_cert_as_clientid', () => {
  const dir = tempDir();
  let ca: Pem;
  let device7: Pem;
  let device8: Pem;
  let rogue: Pem;
  let b: BrokerProcess;
  const c = clientTracker(() => b.url);
  const ssl = (): string => `mqtts://127.0.0.1:${b.sslPort}`;
  const wss = (): string => `wss://127.0.0.1:${b.wssPort}/mqtt`;
  /** An mqtt.js client on `url`, closed after the test. */
  const on = async (url: string, opts: IClientOptions): Promise<Opened> => {
    const o = await open(url, opts);
    c.clients.push(o.client);
    return o;
  };
  const tls = (cert?: Pem): IClientOptions => ({ ca: ca.cert, protocolVersion: 5, ...(cert ? { cert: cert.cert, key: cert.key } : {}) });

  before(async () => {
    ca = await makeCa('Tributary X509 Test CA');
    const server = await issue(ca, 'tributary-test-server', 'server');
    const subject = (cn: string) => [
      { name: 'countryName', value: 'DE' },
      { name: 'organizationName', value: 'Acme' },
      { name: 'commonName', value: cn },
    ];
    device7 = await issue(ca, subject('device-7'), 'client');
    device8 = await issue(ca, subject('device-8'), 'client');
    rogue = await issue(await makeCa('Somebody Else CA'), subject('device-7'), 'client');
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
    writeFileSync(join(dir, 'server.pem'), server.cert);
    writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
    writeFileSync(join(dir, 'acl.conf'), ACL);
    const env: Record<string, string> = {
      TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'file', path: join(dir, 'acl.conf') }]),
      TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny',
      TRIBUTARY_LISTENERS__SSL__DEFAULT__PEER_CERT_AS_USERNAME: 'cn',
      TRIBUTARY_LISTENERS__SSL__DEFAULT__PEER_CERT_AS_CLIENTID: 'dn',
      TRIBUTARY_LISTENERS__WSS__DEFAULT__PEER_CERT_AS_USERNAME: 'dn',
    };
    for (const l of ['SSL', 'WSS']) {
      const p = `TRIBUTARY_LISTENERS__${l}__DEFAULT__SSL_OPTIONS__`;
      Object.assign(env, {
        [`${p}CERTFILE`]: join(dir, 'server.pem'),
        [`${p}KEYFILE`]: join(dir, 'server.key'),
        [`${p}CACERTFILE`]: join(dir, 'ca.pem'),
        [`${p}VERIFY`]: 'verify_peer',
        [`${p}FAIL_IF_NO_PEER_CERT`]: 'true',
      });
    }
    b = await startBroker({ env });
  });
  after(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('ssl, cn/dn: the CN is the username and the DN the client id that authorization and hooks see, not what the client sent', async () => {
    const watcher = await c.client({ protocolVersion: 5 });
    await watcher.client.subscribeAsync('$SYS/brokers/+/clients/+/connected', { qos: 0 });
    const dev = await on(ssl(), { ...tls(device7), username: 'admin', clientId: 'spoofed-id' });
    assert.equal(await pubackCode(dev, 'x'), 0, 'allowed as {username, "device-7"}');
    assert.equal(await pubackCode(dev, 'by-clientid'), 0, 'allowed as {clientid, DN}');
    assert.equal(await pubackCode(dev, 'by-dn'), 0x87, 'the username is the CN, not the DN');
    const event = await waitForMessage(watcher.inbox, (m) => m.topic.endsWith(`/clients/${DN7}/connected`), 'the connected event of the DN client id');
    assert.equal(JSON.parse(event.payload.toString()).username, 'device-7');
    assert.ok(!watcher.inbox.messages.some((m) => m.topic.includes('spoofed-id')), 'the client id it sent is not used');

    // Another certificate of the same CA is another identity: device-8 may not publish to x.
    const other = await on(ssl(), { ...tls(device8), username: 'device-7' });
    assert.equal(await pubackCode(other, 'x'), 0x87, 'a username sent by the client does not override the certificate');
  });

  test('ssl, peer_cert_as_clientid: a 3.1.1 client with an empty client id and a persistent session is accepted under its DN', async () => {
    // mqtt.js will not send that CONNECT: a raw one over TLS. Without the certificate's id it would get 0x02.
    const returnCode = await new Promise<number>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: b.sslPort, ca: ca.cert, cert: device7.cert, key: device7.key }, () =>
        // CONNECT, "MQTT" level 4, flags 0 (clean session off), keep-alive 30, client id of length 0 (mqtt-packet refuses to write it).
        socket.write(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0, 0, 30, 0, 0])),
      );
      const parser = mp.parser({ protocolVersion: 4 });
      parser.on('packet', (p) => {
        socket.destroy();
        if (p.cmd === 'connack') resolve((p as mp.IConnackPacket).returnCode ?? -1);
      });
      socket.on('data', (d: Buffer) => parser.parse(d));
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('closed without CONNACK')));
      socket.setTimeout(5000, () => socket.destroy());
    });
    assert.equal(returnCode, 0);
  });

  test('wss, dn: the whole subject (RFC 4514 order) is the username', async () => {
    const overWss = await on(wss(), tls(device7));
    assert.equal(await pubackCode(overWss, 'by-dn'), 0);
    assert.equal(await pubackCode(overWss, 'x'), 0x87);
  });

  test('a certificate from another CA and no certificate (fail_if_no_peer_cert) are refused, on both listeners; the broker keeps serving', async () => {
    for (const url of [ssl(), wss()]) {
      await assert.rejects(open(url, { ...tls(rogue), connectTimeout: 4000 }), `${url}: another CA's certificate`);
      await assert.rejects(open(url, { ...tls(), connectTimeout: 4000 }), `${url}: no certificate`);
      const ok = await on(url, tls(device7));
      assert.equal(ok.connack.reasonCode ?? 0, 0);
    }
    assert.equal(b.proc.exitCode, null);
  });
});
