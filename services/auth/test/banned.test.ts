import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { MemoryBackbone, MemoryBackboneStorage } from '@tributary/backbone';
import { ValidationError } from '@tributary/common';
import { HookRegistry } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import { BanService, BanStore } from '../src';

const log = pino({ level: 'silent' });
const client = (clientId: string, username?: string, peerhost = '192.0.2.7') => ({ clientId, username, peerhost });

async function store(storage = new MemoryBackboneStorage()): Promise<{ bans: BanStore; backbone: MemoryBackbone }> {
  const backbone = new MemoryBackbone({ storage });
  await backbone.start();
  return { bans: await BanStore.open(backbone, log), backbone };
}

describe('the ban store', () => {
  it('matches each kind of ban, and only the client it names', async () => {
    const { bans, backbone } = await store();
    await bans.add({ as: 'clientid', who: 'c1' });
    await bans.add({ as: 'username', who: 'mallory' });
    await bans.add({ as: 'peerhost', who: '198.51.100.1' });
    await bans.add({ as: 'clientid_re', who: '^bot-\\d+$' });
    await bans.add({ as: 'username_re', who: '^evil' });
    await bans.add({ as: 'peerhost_net', who: '10.0.0.0/8' });
    await bans.add({ as: 'peerhost_net', who: '2001:db8::/32' });
    assert.equal(bans.isBanned(client('c1'))?.as, 'clientid');
    assert.equal(bans.isBanned(client('x', 'mallory'))?.as, 'username');
    assert.equal(bans.isBanned(client('x', undefined, '198.51.100.1'))?.as, 'peerhost');
    await bans.add({ as: 'peerhost', who: '::ffff:198.51.100.2' });
    assert.equal(bans.isBanned(client('x', undefined, '198.51.100.2'))?.who, '198.51.100.2');
    assert.equal(bans.isBanned(client('bot-42'))?.as, 'clientid_re');
    assert.equal(bans.isBanned(client('x', 'evil-twin'))?.as, 'username_re');
    assert.equal(bans.isBanned(client('x', undefined, '10.1.2.3'))?.as, 'peerhost_net');
    assert.equal(bans.isBanned(client('x', undefined, '::ffff:10.1.2.3'))?.as, 'peerhost_net', 'an IPv4-mapped address is its IPv4 address');
    assert.equal(bans.isBanned(client('x', undefined, '2001:db8::5'))?.as, 'peerhost_net');
    for (const ok of [client('c2'), client('bot-x'), client('x', 'not-evil'), client('x', undefined, '11.0.0.1'), client('x', undefined, '2001:db9::1')]) {
      assert.equal(bans.isBanned(ok), undefined, JSON.stringify(ok));
    }
    await backbone.stop();
  });

  it('defaults by, reason, at and until (infinity) and keeps EMQX field names', async () => {
    const { bans, backbone } = await store();
    const before = Math.floor(Date.now() / 1000);
    const ban = await bans.add({ as: 'clientid', who: 'c1' });
    assert.deepEqual(Object.keys(ban).sort(), ['as', 'at', 'by', 'reason', 'until', 'who']);
    assert.equal(ban.by, 'mgmt_api');
    assert.equal(ban.until, 'infinity');
    assert.ok(ban.at >= before);
    assert.deepEqual(bans.list(), [ban]);
    await backbone.stop();
  });

  it('ignores a ban whose until has passed and purges it from the table', async () => {
    const storage = new MemoryBackboneStorage();
    const { bans, backbone } = await store(storage);
    const now = Math.floor(Date.now() / 1000);
    await bans.add({ as: 'clientid', who: 'old', until: now - 1 });
    await bans.add({ as: 'clientid_re', who: '^old', until: now - 1 });
    await bans.add({ as: 'clientid', who: 'new', until: now + 3600 });
    assert.equal(bans.isBanned(client('old')), undefined);
    assert.equal(bans.isBanned(client('new'))?.who, 'new');
    assert.deepEqual(bans.list().map((b) => b.who), ['new']);
    assert.equal(await bans.purgeExpired(), 2);
    assert.equal(bans.size, 1);
    await backbone.stop();
    // A restart reads what is left.
    const again = await store(storage);
    assert.deepEqual(again.bans.list().map((b) => b.who), ['new']);
    await again.backbone.stop();
  });

  it('refuses a bad kind, an empty who, a bad regular expression or CIDR block', async () => {
    const { bans, backbone } = await store();
    for (const bad of [{ as: 'ip', who: 'x' }, { as: 'clientid', who: '' }, { as: 'clientid_re', who: '(' }, { as: 'peerhost_net', who: '10.0.0.0/33' }, { as: 'peerhost_net', who: 'host/8' }, { as: 'peerhost', who: 'nope' }]) {
      await assert.rejects(bans.add(bad as never), (err: unknown) => err instanceof ValidationError && err.code === 'INVALID_ARGUMENT', JSON.stringify(bad));
    }
    assert.equal(bans.size, 0);
    await backbone.stop();
  });

  it("deletes a ban, and sees another process's bans and deletions", async () => {
    const storage = new MemoryBackboneStorage();
    const a = await store(storage);
    const b = await store(storage);
    const heard = new Promise<string>((resolve) => b.bans.onAdded((ban) => resolve(ban.who)));
    await a.bans.add({ as: 'username', who: 'u1' });
    assert.equal(await heard, 'u1');
    assert.equal(b.bans.isBanned(client('x', 'u1'))?.who, 'u1');
    assert.equal(await a.bans.delete('username', 'u1'), true);
    assert.equal(await a.bans.delete('username', 'u1'), false);
    assert.equal(a.bans.isBanned(client('x', 'u1')), undefined);
    await b.backbone.storage.topics.get('banned')?.flushed();
    assert.equal(b.bans.isBanned(client('x', 'u1')), undefined);
    await a.backbone.stop();
    await b.backbone.stop();
  });
});

describe('the ban service', () => {
  async function service(flapping = { enable: false, window_time: 60_000, max_count: 3, ban_time: 300_000 }) {
    const { bans, backbone } = await store();
    const hooks = new HookRegistry({ logger: log, timeoutMs: 1000 });
    const kicked: [string, number][] = [];
    const svc = new BanService({ store: bans, hooks, logger: log, flapping, kick: (id, rc) => kicked.push([id, rc]) });
    await svc.start();
    return { svc, bans, hooks, kicked, backbone };
  }
  const cred = (clientId: string, username?: string) => ({ clientId, username, password: undefined, peerhost: '127.0.0.1', protocolVersion: 5 });
  const info = (clientId: string, username?: string) => ({ ...cred(clientId, username), isSuperuser: false, keepalive: 60, cleanStart: true, expiryInterval: 0 });

  it('refuses a banned client with 0x8A before authentication and counts it', async () => {
    const { svc, bans, hooks, backbone } = await service();
    await bans.add({ as: 'clientid', who: 'c1' });
    assert.deepEqual(hooks.authenticate(cred('c1'), { result: 'allow' }), { result: 'deny', reasonCode: RC.BANNED });
    assert.deepEqual(hooks.authenticate(cred('c2'), { result: 'allow' }), { result: 'allow' });
    assert.equal(svc.metrics['client.banned'], 1);
    await svc.stop();
    await backbone.stop();
  });

  it('disconnects connected clients a new ban matches, and only them', async () => {
    const { svc, bans, hooks, kicked, backbone } = await service();
    const a = info('a', 'alice');
    const b = info('b', 'bob');
    hooks.notify('client.connected', a);
    hooks.notify('client.connected', b);
    await bans.add({ as: 'username_re', who: '^ali' });
    assert.deepEqual(kicked, [['a', RC.ADMINISTRATIVE_ACTION]]);
    hooks.notify('client.disconnected', b, 'normal');
    await bans.add({ as: 'clientid', who: 'b' });
    assert.deepEqual(kicked, [['a', RC.ADMINISTRATIVE_ACTION]], 'b is gone');
    assert.equal(svc.metrics['client.banned.disconnected'], 1);
    await svc.stop();
    await backbone.stop();
  });

  it('bans a client id that connects more than max_count times in the window', async () => {
    const { svc, bans, hooks, backbone } = await service({ enable: true, window_time: 60_000, max_count: 3, ban_time: 300_000 });
    for (let i = 0; i < 3; i++) {
      hooks.notify('client.connect', info('flappy'));
      assert.deepEqual(hooks.authenticate(cred('flappy'), { result: 'allow' }), { result: 'allow' });
    }
    hooks.notify('client.connect', info('flappy'));
    assert.deepEqual(hooks.authenticate(cred('flappy'), { result: 'allow' }), { result: 'deny', reasonCode: RC.BANNED });
    const ban = bans.get('clientid', 'flappy')!;
    assert.equal(ban.by, 'flapping_detect');
    assert.ok(typeof ban.until === 'number' && ban.until - ban.at >= 299 && ban.until - ban.at <= 301);
    assert.equal(svc.metrics['client.flapping'], 1);
    hooks.notify('client.connect', info('calm'));
    assert.equal(bans.get('clientid', 'calm'), undefined);
    await svc.stop();
    await backbone.stop();
  });
});
