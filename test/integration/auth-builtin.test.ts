// The built-in database authenticators in a real broker process with real clients: password
// users bootstrapped from CSV (by username, and a second authenticator by client id), SCRAM-SHA-256
// over MQTT 5.0 enhanced authentication, and the built-in authorization source with no_match deny.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt, { IClientOptions, MqttClient } from 'mqtt';
import type * as mp from 'mqtt-packet';
import type { IAuthPacket } from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connackCode, end } from '../helpers/clients';
import { RawClient } from '../helpers/raw';
import { ScramClient } from '../helpers/scram';
import { clientTracker } from '../helpers/util';

const dir = mkdtempSync(join(tmpdir(), 'tributary-auth-builtin-'));
const METHOD = 'SCRAM-SHA-256';

function file(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

let b: BrokerProcess;
const { client, clients } = clientTracker(() => b.url);

/** Connects and resolves with the refusal's reason code (5.0) or return code (3.1.1); fails if the client gets in. */
async function refusal(opts: IClientOptions): Promise<number> {
  const code = await connackCode(b.url, opts);
  assert.notEqual(code, 0, 'connected, expected a refusal');
  return code;
}

/** The SUBACK codes of one subscription (mqtt.js rejects when one is a failure; the packet says which). */
async function subscribeCodes(c: MqttClient, filter: string): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: mp.ISubackPacket }).packet?.granted;
    if (!granted) throw err;
    return granted as number[];
  }
}

/** A SCRAM login with mqtt.js: CONNECT carries client-first, handleAuth answers server-first. */
function scramLogin(scram: ScramClient, clientId: string, tamper?: (final: Buffer) => Buffer, username?: string): { client: MqttClient; result: Promise<mp.IConnackPacket> } {
  const c = mqtt.connect(b.url, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    protocolVersion: 5,
    clientId,
    ...(username !== undefined ? { username } : {}),
    properties: { authenticationMethod: METHOD, authenticationData: scram.first() },
  });
  clients.push(c);
  c.handleAuth = (packet: IAuthPacket, cb) => {
    const final = scram.final(packet.properties!.authenticationData!);
    cb(undefined, { cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: tamper ? tamper(final) : final } } as IAuthPacket);
  };
  const result = new Promise<mp.IConnackPacket>((resolve, reject) => {
    c.once('connect', (p) => resolve(p as mp.IConnackPacket));
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return { client: c, result };
}

before(async () => {
  const users = file('users.csv', 'user_id,password,is_superuser\nalice,alice-pw,false\nroot,root-pw,true\n');
  const devices = file('devices.csv', 'user_id,password,is_superuser\ndevice-7,device-pw,false\n');
  const scram = file('scram.csv', 'user_id,password,is_superuser\nsam,sam-pw,false\n');
  b = await startBroker({
    env: {
      TRIBUTARY_AUTHENTICATION: JSON.stringify([
        { mechanism: 'password_based', backend: 'built_in_database', password_hash_algorithm: { name: 'sha256', salt_position: 'suffix' }, bootstrap_file: users },
        { mechanism: 'password_based', backend: 'built_in_database', user_id_type: 'clientid', password_hash_algorithm: { name: 'bcrypt', salt_rounds: 5 }, bootstrap_file: devices },
        { mechanism: 'scram', backend: 'built_in_database', algorithm: 'sha256', bootstrap_file: scram },
      ]),
      TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'built_in_database' }]),
      TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny',
    },
  });
});
after(async () => {
  await end(...clients);
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('password_based:built_in_database', () => {
  test('the right password connects, over 5.0 and 3.1.1', async () => {
    const v5 = await client({ protocolVersion: 5, username: 'alice', password: 'alice-pw' });
    assert.equal(v5.connack.reasonCode, 0);
    const v3 = await client({ protocolVersion: 4, username: 'alice', password: 'alice-pw' });
    assert.equal(v3.connack.returnCode, 0);
  });

  test('a wrong password is refused: 0x86 (5.0), 4 (3.1.1)', async () => {
    assert.equal(await refusal({ protocolVersion: 5, username: 'alice', password: 'nope' }), 0x86);
    assert.equal(await refusal({ protocolVersion: 4, username: 'alice', password: 'nope' }), 4);
    assert.equal(await refusal({ protocolVersion: 5, username: 'alice' }), 0x86);
  });

  test('a user the first authenticator does not know goes to the next; one nobody knows gets 0x87 (5.0), 5 (3.1.1)', async () => {
    const byClientId = await client({ protocolVersion: 5, clientId: 'device-7', username: 'unknown', password: 'device-pw' });
    assert.equal(byClientId.connack.reasonCode, 0);
    assert.equal(await refusal({ protocolVersion: 5, clientId: 'device-7', username: 'unknown', password: 'wrong' }), 0x86);
    assert.equal(await refusal({ protocolVersion: 5, clientId: 'nobody-1', username: 'unknown', password: 'x' }), 0x87);
    assert.equal(await refusal({ protocolVersion: 4, clientId: 'nobody-2', username: 'unknown', password: 'x' }), 5);
  });

  test('a superuser skips authorization; other users get the no_match deny', async () => {
    const root = await client({ protocolVersion: 5, username: 'root', password: 'root-pw' });
    assert.deepEqual(await subscribeCodes(root.client, 'anything/#'), [1]);
    const alice = await client({ protocolVersion: 5, username: 'alice', password: 'alice-pw' });
    assert.deepEqual(await subscribeCodes(alice.client, 'anything/#'), [0x87]);
    const v3 = await client({ protocolVersion: 4, username: 'alice', password: 'alice-pw' });
    assert.deepEqual(await subscribeCodes(v3.client, 'anything/#'), [0x80]);
    await assert.rejects(alice.client.publishAsync('anything/x', 'm', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87);
  });

  test('a 64 KB password is refused cleanly and the broker keeps serving', async () => {
    assert.equal(await refusal({ protocolVersion: 5, username: 'alice', password: 'x'.repeat(65_535) }), 0x86);
    assert.equal(await refusal({ protocolVersion: 5, clientId: 'device-7', username: 'unknown', password: Buffer.alloc(65_535, 0xff) }), 0x86);
    const after = await client({ protocolVersion: 5, username: 'alice', password: 'alice-pw' });
    assert.equal(after.connack.reasonCode, 0);
  });

  test('usernames that look like SQL injection are just unknown users', async () => {
    for (const username of ["' OR '1'='1", "alice'--", 'alice"; DROP TABLE users; --', 'alice\\0', '%', 'username:alice']) {
      assert.equal(await refusal({ protocolVersion: 5, clientId: `inj-${username.length}`, username, password: "' OR '1'='1" }), 0x87, username);
    }
  });
});

describe('scram:built_in_database (MQTT 5.0 enhanced authentication)', () => {
  test('the right password completes the exchange; CONNACK carries the server signature', async () => {
    const scram = new ScramClient('sam', 'sam-pw');
    const { result } = scramLogin(scram, 'scram-ok');
    const connack = await result;
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.authenticationMethod, METHOD);
    assert.ok(scram.verifyServer(connack.properties?.authenticationData), 'server-final proves the server knows the keys');
  });

  test('an unknown SCRAM user is ignored by the authenticator and refused at the end of the chain (0x8C)', async () => {
    const c = await RawClient.open(b.mqttPort, 5);
    c.send({ cmd: 'connect', clientId: 'scram-nobody', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, properties: { authenticationMethod: METHOD, authenticationData: new ScramClient('nobody', 'x').first() } } as mp.IConnectPacket);
    assert.equal(((await c.next('connack')) as mp.IConnackPacket).reasonCode, 0x8c);
    c.destroy();
  });

  test('a wrong password gets CONNACK 0x86', async () => {
    const { result } = scramLogin(new ScramClient('sam', 'not-sam-pw'), 'scram-wrong');
    await assert.rejects(result, (e: Error & { code?: number }) => e.code === 0x86);
  });

  test('garbage Authentication Data is refused with 0x87, in CONNECT or in the final AUTH', async () => {
    const c = await RawClient.open(b.mqttPort, 5);
    c.send({ cmd: 'connect', clientId: 'scram-garbage', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, properties: { authenticationMethod: METHOD, authenticationData: Buffer.from([0xde, 0xad, 0xbe, 0xef]) } } as mp.IConnectPacket);
    assert.equal(((await c.next('connack')) as mp.IConnackPacket).reasonCode, 0x87);
    c.destroy();
    const { result } = scramLogin(new ScramClient('sam', 'sam-pw'), 'scram-garbage-2', () => Buffer.from('c=,r=,p=\u0000'));
    await assert.rejects(result, (e: Error & { code?: number }) => e.code === 0x87);
    const ok = await scramLogin(new ScramClient('sam', 'sam-pw'), 'scram-after-garbage').result;
    assert.equal(ok.reasonCode, 0, 'the broker still serves');
  });

  test('a SCRAM user other than the MQTT username is refused (re-authentication cannot switch users either)', async () => {
    const c = await RawClient.open(b.mqttPort, 5);
    c.send({ cmd: 'connect', clientId: 'scram-switch', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, username: 'alice', properties: { authenticationMethod: METHOD, authenticationData: new ScramClient('sam', 'sam-pw').first() } } as mp.IConnectPacket);
    assert.equal(((await c.next('connack')) as mp.IConnackPacket).reasonCode, 0x87);
    c.destroy();
    const same = await scramLogin(new ScramClient('sam', 'sam-pw'), 'scram-same', undefined, 'sam').result;
    assert.equal(same.reasonCode, 0);
  });

  test('re-authentication (AUTH 0x19) runs the exchange again; a failed one disconnects', async () => {
    const c = await RawClient.open(b.mqttPort, 5);
    const login = new ScramClient('sam', 'sam-pw');
    const auth = (reasonCode: number, data: Buffer): mp.IAuthPacket => ({ cmd: 'auth', reasonCode, properties: { authenticationMethod: METHOD, authenticationData: data } });
    c.send({ cmd: 'connect', clientId: 'scram-reauth', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, properties: { authenticationMethod: METHOD, authenticationData: login.first() } } as mp.IConnectPacket);
    const serverFirst = (await c.next('auth')) as mp.IAuthPacket;
    c.send(auth(0x18, login.final(serverFirst.properties!.authenticationData!)));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.reasonCode, 0);

    const again = new ScramClient('sam', 'sam-pw');
    const seen = c.packets.length;
    c.send(auth(0x19, again.first()));
    const step = (await c.next('auth', (p) => c.packets.indexOf(p) >= seen && (p as mp.IAuthPacket).reasonCode === 0x18)) as mp.IAuthPacket;
    c.send(auth(0x18, again.final(step.properties!.authenticationData!)));
    const done = (await c.next('auth', (p) => (p as mp.IAuthPacket).reasonCode === 0)) as mp.IAuthPacket;
    assert.ok(again.verifyServer(done.properties?.authenticationData));

    const wrong = new ScramClient('sam', 'wrong');
    const before = c.packets.length;
    c.send(auth(0x19, wrong.first()));
    const step2 = (await c.next('auth', (p) => c.packets.indexOf(p) >= before && (p as mp.IAuthPacket).reasonCode === 0x18)) as mp.IAuthPacket;
    c.send(auth(0x18, wrong.final(step2.properties!.authenticationData!)));
    await c.waitClosed();
    // 0x86 is not a DISCONNECT reason code (§3.14.2.1): a failed re-authentication is 0x87.
    assert.equal(c.disconnectReason(), 0x87);
  });
});
