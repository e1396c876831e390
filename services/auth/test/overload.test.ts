import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { HookRegistry } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import { LoadReading, OverloadProtection } from '../src';

describe('overload protection', () => {
  it('refuses new CONNECTs while lagging (0x89) or over the heap bound (0x97) and recovers by itself', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const hooks = new HookRegistry({ logger, timeoutMs: 1000 });
    let reading: LoadReading = { lagMs: 0, heapUsed: 100, heapLimit: 1000 };
    const olp = new OverloadProtection({ hooks, logger, config: { enable: true, max_event_loop_lag: 500, max_heap: { fraction: 0.9 } }, read: () => reading, intervalMs: 3_600_000 });
    await olp.start();
    const cred = { clientId: 'c', username: undefined, password: undefined, peerhost: '127.0.0.1', protocolVersion: 5 };
    const connect = () => hooks.authenticate(cred, { result: 'allow' });
    assert.deepEqual(connect(), { result: 'allow' });

    reading = { lagMs: 800, heapUsed: 100, heapLimit: 1000 };
    assert.equal(olp.check(), 'lag');
    assert.deepEqual(connect(), { result: 'deny', reasonCode: RC.SERVER_BUSY });
    assert.deepEqual(connect(), { result: 'deny', reasonCode: RC.SERVER_BUSY });
    assert.deepEqual(hooks.authenticate({ ...cred, reauthenticate: true }, { result: 'allow' }), { result: 'allow' }, 'a connected client re-authenticating goes on');
    olp.check();
    assert.equal(lines.filter((l) => l.msg === 'overloaded: refusing new connections').length, 1, 'logged once per episode');

    reading = { lagMs: 0, heapUsed: 950, heapLimit: 1000 };
    assert.equal(olp.check(), 'heap');
    assert.deepEqual(connect(), { result: 'deny', reasonCode: RC.QUOTA_EXCEEDED });

    reading = { lagMs: 10, heapUsed: 500, heapLimit: 1000 };
    assert.equal(olp.check(), 'ok');
    assert.deepEqual(connect(), { result: 'allow' });
    assert.equal(olp.metrics['overload.refused'], 3);
    const over = lines.find((l) => l.msg === 'overload over: accepting connections again');
    assert.equal(over?.refused, 3);
    await olp.stop();
  });

  it('reads the real process: a heap bound of 1 byte is always exceeded', async () => {
    const logger = pino({ level: 'silent' });
    const olp = new OverloadProtection({ hooks: new HookRegistry({ logger, timeoutMs: 1000 }), logger, config: { enable: true, max_event_loop_lag: 500, max_heap: { bytes: 1 } } });
    await olp.start();
    assert.equal(olp.state, 'heap');
    await olp.stop();
  });
});
