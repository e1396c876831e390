// With an empty authentication chain every client may connect (the quick start): start-up says
// so for listeners beyond loopback, and only for those.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startBroker } from '../helpers/broker';

const WARNING = 'authentication is off: any client that reaches these listeners may connect; configure the authentication chain (docs/security.md)';

describe('an empty authentication chain', () => {
  it('logs a warning naming the listeners bound beyond loopback', async () => {
    const b = await startBroker({ env: { TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: '0.0.0.0:0' } });
    try {
      const warn = b.logs.find((l) => l.msg === WARNING);
      assert.ok(warn, 'the warning');
      assert.deepEqual(warn.listeners, [`tcp:default@0.0.0.0:${b.mqttPort}`]);
    } finally {
      await b.stop();
    }
  });

  it('says nothing when every listener is on loopback, or when the chain is not empty', async () => {
    const local = await startBroker();
    const guarded = await startBroker({ env: { TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: '0.0.0.0:0', TRIBUTARY_AUTHENTICATION: '[{"mechanism":"password_based","backend":"built_in_database"}]' } });
    try {
      assert.equal(local.logs.some((l) => l.msg === WARNING), false);
      assert.equal(guarded.logs.some((l) => l.msg === WARNING), false);
    } finally {
      await Promise.all([local.stop(), guarded.stop()]);
    }
  });
});
