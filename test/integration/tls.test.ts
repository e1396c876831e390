// MQTT over TLS (listeners.ssl.default) and secure WebSocket (listeners.wss.default): the
// self-signed default certificate in <data_dir>/certs, certificates from the test's own CA,
// client-certificate verification, TLS versions, and bytes that are not TLS at all.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { connect as tlsConnect, ConnectionOptions } from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
import * as mp from 'mqtt-packet';
import { createParser } from '@tributary/mqtt';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { end } from '../helpers/clients';
import { issue, makeCa } from '../helpers/pki';
import { open, Opened, uniqueTopic, waitForPayload } from '../helpers/util';

const clients: MqttClient[] = [];
afterEach(async () => {
  await end(...clients.splice(0));
});

async function client(url: string, opts: IClientOptions = {}): Promise<Opened> {
  const o = await open(url, opts);
  clients.push(o.client);
  return o;
}

/**
 * Opens an mqtt.js client, expecting the TLS layer to refuse it with an error whose code (or
 * message) matches `reason`: a timeout, a refused TCP connection or a plain close do not count.
 */
async function refused(url: string, opts: IClientOptions, reason: RegExp): Promise<Error> {
  let opened: Opened | undefined;
  try {
    opened = await open(url, { connectTimeout: 4000, ...opts });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    assert.match(String(e.code ?? e.message), reason, `refused for another reason: ${String(e.code)} ${e.message}`);
    return e;
  }
  clients.push(opened.client);
  throw new Error(`${url} accepted a client that should have been refused`);
}

interface TlsAttempt {
  /** A CONNACK came back over the TLS connection (over: 'ws': the 101 answer to the WebSocket upgrade). */
  connack: boolean;
  /** The TLS handshake completed on the client side. */
  handshake: boolean;
  protocol: string | null;
  /** The fingerprint (SHA-256) of the certificate the server presented. */
  serverCert: string | undefined;
  error: NodeJS.ErrnoException | undefined;
  /** Neither CONNACK nor close within 5 s. */
  timedOut: boolean;
}

const WS_UPGRADE = 'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n';

/**
 * A bare TLS connection that sends an MQTT 3.1.1 CONNECT once the handshake is done and waits
 * for CONNACK or close. With TLS 1.3 a refused client certificate is only reported after the
 * client's handshake completed, so "handshake" alone proves nothing: CONNACK is what counts.
 */
function tlsMqtt(port: number, opts: ConnectionOptions, over: 'mqtt' | 'ws' = 'mqtt'): Promise<TlsAttempt> {
  return new Promise((resolve) => {
    const r: TlsAttempt = { connack: false, handshake: false, protocol: null, serverCert: undefined, error: undefined, timedOut: false };
    const socket = tlsConnect({ host: '127.0.0.1', port, ...opts });
    const parser = createParser();
    parser.settings = { protocolVersion: 4 };
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => {
      r.timedOut = true;
      done();
    }, 5000);
    socket.on('secureConnect', () => {
      r.handshake = true;
      r.protocol = socket.getProtocol();
      r.serverCert = socket.getPeerCertificate().fingerprint256;
      if (over === 'ws') socket.write(WS_UPGRADE);
      else socket.write(mp.generate({ cmd: 'connect', clientId: `tls-raw-${process.pid}-${randomBytes(3).toString('hex')}`, protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 30 }));
    });
    parser.on('packet', (p) => {
      if (p.cmd !== 'connack') return;
      r.connack = (p as mp.IConnackPacket).returnCode === 0;
      done();
    });
    let http = '';
    socket.on('data', (d: Buffer) => {
      if (over === 'mqtt') return parser.parse(d);
      http += d.toString('latin1');
      if (!http.includes('\r\n')) return;
      r.connack = http.startsWith('HTTP/1.1 101 ');
      done();
    });
    socket.on('error', (err) => (r.error ??= err));
    socket.on('close', done);
  });
}

/** Publishes over `pub` and expects it on `sub` (both already connected): the connection really carries MQTT. */
async function roundTrip(sub: Opened, pub: Opened, what: string): Promise<void> {
  const topic = uniqueTopic('tls');
  await sub.client.subscribeAsync(topic, { qos: 1 });
  await pub.client.publishAsync(topic, what, { qos: 1 });
  const m = await waitForPayload(sub.inbox, what);
  assert.equal(m.topic, topic);
}

function fingerprint256(pem: string | Buffer): string {
  return new (require('node:crypto') as typeof import('node:crypto')).X509Certificate(pem).fingerprint256;
}

const logged = (b: BrokerProcess, text: string): number => b.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes(text)).length;
const GENERATED = 'generated a self-signed TLS certificate';
const REUSED = 'use the self-signed certificate in the data directory';

describe('default self-signed certificate', () => {
  const dataDir = tempDir();
  let b: BrokerProcess;
  let certPath: string;
  let caPem: Buffer;

  before(async () => {
    b = await startBroker({ dataDir });
    certPath = join(dataDir, 'certs', 'default-cert.pem');
    caPem = readFileSync(certPath);
  });
  after(async () => {
    if (b?.proc.exitCode === null) await b.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the first start generates it into <data_dir>/certs and says so', () => {
    assert.equal(logged(b, GENERATED), 1, 'generated once (the WSS listener reuses the file the SSL listener generated)');
    assert.match(caPem.toString(), /^-----BEGIN CERTIFICATE-----/);
    assert.match(readFileSync(join(dataDir, 'certs', 'default-key.pem')).toString(), /PRIVATE KEY/);
    assert.ok(b.sslPort > 0 && b.wssPort > 0, 'both secure listeners logged their ports');
  });

  test('mqtts:// with rejectUnauthorized: false carries MQTT both ways', async () => {
    const url = `mqtts://127.0.0.1:${b.sslPort}`;
    const sub = await client(url, { rejectUnauthorized: false, protocolVersion: 5 });
    const pub = await client(url, { rejectUnauthorized: false, protocolVersion: 4 });
    await roundTrip(sub, pub, 'over tls');
    // And across listeners: TLS publisher, plain TCP subscriber.
    const tcp = await client(b.url);
    await roundTrip(tcp, pub, 'tls to tcp');
  });

  test('a client that trusts default-cert.pem verifies it for 127.0.0.1 and localhost, and rejects another host name', async () => {
    const url = `mqtts://127.0.0.1:${b.sslPort}`;
    // rejectUnauthorized defaults to true: chain and host name (IP SAN 127.0.0.1) are checked.
    const byIp = await client(url, { ca: caPem });
    const byName = await client(url, { ca: caPem, servername: 'localhost' });
    await roundTrip(byIp, byName, 'verified');

    const wrongName = await tlsMqtt(b.sslPort, { ca: caPem, servername: 'broker.example.com' });
    assert.equal(wrongName.connack, false);
    assert.equal(wrongName.error?.code, 'ERR_TLS_CERT_ALTNAME_INVALID', String(wrongName.error));
    // Without the certificate as CA the client refuses it: it is self-signed.
    const untrusted = await tlsMqtt(b.sslPort, {});
    assert.equal(untrusted.connack, false);
    assert.match(String(untrusted.error?.code), /SELF_SIGNED|UNABLE_TO_VERIFY/, String(untrusted.error));
    // The certificate served is the file in the data directory.
    const ok = await tlsMqtt(b.sslPort, { ca: caPem });
    assert.equal(ok.connack, true, String(ok.error));
    assert.equal(ok.serverCert, fingerprint256(caPem));
  });

  test('wss://127.0.0.1:<wssPort>/mqtt serves MQTT with the same certificate', async () => {
    const url = `wss://127.0.0.1:${b.wssPort}/mqtt`;
    const sub = await client(url, { ca: caPem, protocolVersion: 5 });
    const pub = await client(url, { rejectUnauthorized: false, protocolVersion: 4 });
    await roundTrip(sub, pub, 'over wss');
    const tcp = await client(b.url);
    await roundTrip(sub, tcp, 'tcp to wss');
    // Untrusted without the CA: the WSS listener presents the self-signed certificate too.
    await refused(url, {}, /SELF_SIGNED|UNABLE_TO_VERIFY/);
  });

  test('the default versions (tlsv1.3,tlsv1.2) accept TLS 1.2-only and TLS 1.3 clients', async () => {
    const v12 = await tlsMqtt(b.sslPort, { ca: caPem, maxVersion: 'TLSv1.2' });
    assert.equal(v12.connack, true, String(v12.error));
    assert.equal(v12.protocol, 'TLSv1.2');
    const v13 = await tlsMqtt(b.sslPort, { ca: caPem, minVersion: 'TLSv1.3' });
    assert.equal(v13.connack, true, String(v13.error));
    assert.equal(v13.protocol, 'TLSv1.3');
  });

  test('handshake garbage and plain MQTT on the TLS port end those sockets only', async () => {
    /** Sends `bytes`, half-closes, and returns what came back before the server closed. */
    const poke = (bytes: Buffer, port = b.sslPort): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = netConnect(port, '127.0.0.1', () => s.end(bytes));
        const t = setTimeout(() => (s.destroy(), reject(new Error('the TLS listener did not close a garbage connection'))), 5000);
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('error', () => undefined);
        s.on('close', () => (clearTimeout(t), resolve(Buffer.concat(chunks))));
      });
    const connect = mp.generate({ cmd: 'connect', clientId: 'plain-on-tls', protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 30 });
    const garbage: Buffer[] = [connect, Buffer.concat([connect, mp.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] })])];
    for (let i = 0; i < 20; i++) garbage.push(randomBytes(1 + Math.floor(Math.random() * 2048)));
    // A TLS record header (handshake, TLS 1.0, 512 bytes) with a random body: a broken ClientHello.
    for (let i = 0; i < 5; i++) garbage.push(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), randomBytes(512)]));
    const replies = await Promise.all(garbage.map((g) => poke(g)));
    for (const r of replies.slice(0, 2)) {
      // Whatever came back (a TLS alert or nothing), it is not an MQTT CONNACK.
      assert.notEqual(r[0], 0x20, 'plain MQTT on the TLS port must not be answered in plain MQTT');
    }
    // The WSS port: a plain-HTTP WebSocket upgrade, plain MQTT and garbage.
    const upgrade = Buffer.from(WS_UPGRADE);
    const wssReplies = await Promise.all([upgrade, connect, ...garbage.slice(2, 8)].map((g) => poke(g, b.wssPort)));
    assert.ok(!wssReplies[0]!.toString('latin1').includes('101 Switching Protocols'), 'no WebSocket over plain HTTP on the WSS port');
    assert.equal(b.proc.exitCode, null, 'the broker is still running');
    const url = `mqtts://127.0.0.1:${b.sslPort}`;
    const sub = await client(url, { ca: caPem });
    const pub = await client(url, { ca: caPem, protocolVersion: 5 });
    await roundTrip(sub, pub, 'after garbage');
    const wss = await client(`wss://127.0.0.1:${b.wssPort}/mqtt`, { ca: caPem });
    await roundTrip(wss, pub, 'wss after garbage');
  });
});

// Its own broker and data directory: it restarts the broker, so it depends on no other test's order.
describe('default self-signed certificate across a restart', () => {
  const dataDir = tempDir();
  let b: BrokerProcess | undefined;
  after(async () => {
    if (b?.proc.exitCode === null) await b.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a second start with the same data directory reuses the certificate and says so', async () => {
    b = await startBroker({ dataDir });
    const certPath = join(dataDir, 'certs', 'default-cert.pem');
    const caPem = readFileSync(certPath);
    assert.equal(logged(b, GENERATED), 1, 'the first start generated it');
    const before = statSync(certPath).mtimeMs;
    await b.stop();
    b = await startBroker({ dataDir });
    assert.equal(logged(b, GENERATED), 0, 'not generated again');
    assert.equal(logged(b, REUSED), 2, 'both the SSL and the WSS listener say they use the existing file');
    const reused = b.logs.find((l) => typeof l.msg === 'string' && l.msg.includes(REUSED));
    assert.equal(reused?.cert, certPath);
    assert.deepEqual(readFileSync(certPath), caPem, 'file unchanged');
    assert.equal(statSync(certPath).mtimeMs, before, 'file not rewritten');
    // Clients that trusted the first start's certificate still connect.
    const ssl = await client(`mqtts://127.0.0.1:${b.sslPort}`, { ca: caPem });
    const wss = await client(`wss://127.0.0.1:${b.wssPort}/mqtt`, { ca: caPem });
    await roundTrip(ssl, wss, 'after restart');
  });
});

/** The test's own PKI: a CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a stranger's CA and client certificate. */
interface Pki {
  dir: string;
  caCert: string;
  serverCert: string;
  clientCert: string;
  clientKey: string;
  rogueClientCert: string;
  rogueClientKey: string;
}

async function makePki(): Promise<Pki> {
  const dir = tempDir();
  const ca = await makeCa('Tributary Test CA');
  const server = await issue(ca, 'tributary-test-server', 'server');
  const clientPair = await issue(ca, 'test-client', 'client');
  const rogueCa = await makeCa('Somebody Else CA');
  const rogue = await issue(rogueCa, 'rogue-client', 'client');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  writeFileSync(join(dir, 'server.pem'), server.cert);
  writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
  return { dir, caCert: ca.cert, serverCert: server.cert, clientCert: clientPair.cert, clientKey: clientPair.key, rogueClientCert: rogue.cert, rogueClientKey: rogue.key };
}

function sslEnv(listener: 'SSL' | 'WSS', pki: Pki, extra: Record<string, string>): Record<string, string> {
  const p = `TRIBUTARY_LISTENERS__${listener}__DEFAULT__SSL_OPTIONS__`;
  const env: Record<string, string> = {
    [`${p}CERTFILE`]: join(pki.dir, 'server.pem'),
    [`${p}KEYFILE`]: join(pki.dir, 'server.key'),
    [`${p}CACERTFILE`]: join(pki.dir, 'ca.pem'),
  };
  for (const [k, v] of Object.entries(extra)) env[`${p}${k}`] = v;
  return env;
}

describe('certificates from the test CA', () => {
  let pki: Pki;
  // verify_peer without fail_if_no_peer_cert on both listeners; the SSL listener speaks TLS 1.3 only.
  let b: BrokerProcess;
  // verify_peer + fail_if_no_peer_cert on the SSL listener: mutual TLS.
  let m: BrokerProcess;

  before(async () => {
    pki = await makePki();
    [b, m] = await Promise.all([
      startBroker({
        env: {
          ...sslEnv('SSL', pki, { VERIFY: 'verify_peer', FAIL_IF_NO_PEER_CERT: 'false', VERSIONS: 'tlsv1.3' }),
          ...sslEnv('WSS', pki, { VERIFY: 'verify_peer', FAIL_IF_NO_PEER_CERT: 'false' }),
        },
      }),
      startBroker({ env: sslEnv('SSL', pki, { VERIFY: 'verify_peer', FAIL_IF_NO_PEER_CERT: 'true' }) }),
    ]);
  });
  after(async () => {
    await Promise.all([b?.stop(), m?.stop()]);
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  test('a client trusting the CA connects over TLS and WSS; the configured certificate is served, not the default', async () => {
    const ssl = await client(`mqtts://127.0.0.1:${b.sslPort}`, { ca: pki.caCert, protocolVersion: 5 });
    const wss = await client(`wss://127.0.0.1:${b.wssPort}/mqtt`, { ca: pki.caCert });
    await roundTrip(ssl, wss, 'own ca');
    const raw = await tlsMqtt(b.sslPort, { ca: pki.caCert, servername: 'localhost' });
    assert.equal(raw.connack, true, String(raw.error));
    assert.equal(raw.serverCert, fingerprint256(pki.serverCert));
    assert.equal(logged(b, GENERATED) + logged(b, REUSED), 0, 'no default certificate involved');
    // A client that does not trust the test CA refuses the server.
    const untrusted = await tlsMqtt(b.sslPort, {});
    assert.equal(untrusted.connack, false);
    // (The server sends the CA along with its certificate: "self-signed certificate in chain".)
    assert.match(String(untrusted.error?.code), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(VERIFY|GET_ISSUER)/, String(untrusted.error));
  });

  test('versions = tlsv1.3 refuses a TLS 1.2-only client and accepts TLS 1.3', async () => {
    const v12 = await tlsMqtt(b.sslPort, { ca: pki.caCert, maxVersion: 'TLSv1.2' });
    assert.equal(v12.handshake, false, 'no TLS 1.2 handshake');
    assert.equal(v12.connack, false);
    assert.match(String(v12.error?.code ?? v12.error?.message), /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|ECONNRESET/, String(v12.error));
    const v13 = await tlsMqtt(b.sslPort, { ca: pki.caCert });
    assert.equal(v13.connack, true, String(v13.error));
    assert.equal(v13.protocol, 'TLSv1.3');
    // The WSS listener keeps the default versions: TLS 1.2 is negotiated and the upgrade answered.
    const wss12 = await tlsMqtt(b.wssPort, { ca: pki.caCert, maxVersion: 'TLSv1.2' }, 'ws');
    assert.equal(wss12.protocol, 'TLSv1.2');
    assert.equal(wss12.connack, true, String(wss12.error));
    const wssMqtt = await client(`wss://127.0.0.1:${b.wssPort}/mqtt`, { ca: pki.caCert, wsOptions: { maxVersion: 'TLSv1.2' } as object });
    assert.ok(wssMqtt.client.connected);
  });

  for (const listener of ['ssl', 'wss'] as const) {
    const url = (): string => (listener === 'ssl' ? `mqtts://127.0.0.1:${b.sslPort}` : `wss://127.0.0.1:${b.wssPort}/mqtt`);
    test(`${listener}, verify_peer without fail_if_no_peer_cert: no certificate and a CA-signed certificate are accepted, a stranger's certificate is refused`, async () => {
      const none = await client(url(), { ca: pki.caCert });
      const signed = await client(url(), { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey, protocolVersion: 5 });
      await roundTrip(none, signed, `${listener} verify_peer`);
      // The stranger completes the handshake (TLS 1.3: the client finishes first), then the broker
      // closes the connection without answering; the same attempt with the CA's certificate is answered.
      const port = listener === 'ssl' ? b.sslPort : b.wssPort;
      const over = listener === 'ssl' ? 'mqtt' : 'ws';
      const rogue = await tlsMqtt(port, { ca: pki.caCert, cert: pki.rogueClientCert, key: pki.rogueClientKey }, over);
      assert.equal(rogue.timedOut, false, 'closed, not left hanging');
      assert.equal(rogue.handshake, true, `the TCP connection and the handshake took place: ${String(rogue.error)}`);
      assert.equal(rogue.connack, false, "a stranger's certificate is not answered");
      const ok = await tlsMqtt(port, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey }, over);
      assert.equal(ok.connack, true, String(ok.error));
      assert.equal(b.proc.exitCode, null);
    });
  }

  test('verify_peer + fail_if_no_peer_cert: a client without a certificate is refused, a CA-signed one connects, a stranger is refused', async () => {
    const none = await tlsMqtt(m.sslPort, { ca: pki.caCert });
    assert.equal(none.connack, false, "no client certificate: no CONNACK");

    assert.equal(none.timedOut, false);
    // The broker's TLS alert, not a reset or a timeout.
    assert.match(String(none.error?.code), /ALERT_CERTIFICATE_REQUIRED|ALERT_HANDSHAKE_FAILURE/, String(none.error));
    await refused(`mqtts://127.0.0.1:${m.sslPort}`, { ca: pki.caCert }, /ALERT_CERTIFICATE_REQUIRED|ALERT_HANDSHAKE_FAILURE/);

    const rogue = await tlsMqtt(m.sslPort, { ca: pki.caCert, cert: pki.rogueClientCert, key: pki.rogueClientKey });
    assert.equal(rogue.connack, false, 'a certificate from another CA: no CONNACK');
    // Node verifies the chain after the handshake and closes the socket without an alert.
    assert.equal(rogue.timedOut, false, 'closed, not left hanging');

    const signed = await tlsMqtt(m.sslPort, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey });
    assert.equal(signed.connack, true, String(signed.error));
    const a = await client(`mqtts://127.0.0.1:${m.sslPort}`, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey });
    const c = await client(`mqtts://127.0.0.1:${m.sslPort}`, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey, protocolVersion: 5 });
    await roundTrip(a, c, 'mutual tls');
  });
});

describe('TLS configuration errors', () => {
  test('a configured certfile that does not exist stops start-up with an error naming listeners.ssl.default.ssl_options.certfile', async () => {
    const dataDir = tempDir();
    const missing = join(dataDir, 'no-such-cert.pem');
    try {
      await assert.rejects(
        startBroker({
          dataDir,
          env: { TRIBUTARY_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__CERTFILE: missing, TRIBUTARY_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__KEYFILE: missing.replace('cert', 'key') },
        }),
        (err: Error) => {
          assert.match(err.message, /broker exited with [1-9]/);
          assert.ok(err.message.includes('listeners.ssl.default.ssl_options.certfile'), err.message);
          assert.ok(err.message.includes(missing), `names the file:\n${err.message}`);
          return true;
        },
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
