import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BackboneError,
  ConfigError,
  ConflictError,
  ERROR_CODES,
  httpErrorOf,
  isRetriable,
  loadConfig,
  NotFoundError,
  ProtocolError,
  SessionError,
  StartupError,
  TributaryError,
  ValidationError,
  commonConfigFragment,
} from '../src';

describe('error tree', () => {
  it('lists every code once, in SCREAMING_SNAKE, with an HTTP status', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, code);
      assert.ok(spec.status >= 400 && spec.status < 600, `${code}: status ${spec.status}`);
      assert.ok(spec.doc.length > 0, `${code} has no doc`);
    }
  });

  it('every class is an Error and a TributaryError, named after itself', () => {
    const errors = [
      new ConfigError(['a.b (environment variable TRIBUTARY_A__B): expected a number']),
      new ValidationError('INVALID_ARGUMENT', 'bad option'),
      new ConflictError('AUTH_METHOD_REGISTERED', 'twice'),
      new NotFoundError('USER_NOT_FOUND', 'no such user'),
      new StartupError('LISTENER_BIND_FAILED', 'in use'),
      new BackboneError('BACKBONE_NOT_RUNNING', 'stopped'),
      new SessionError('SESSION_TAKEN_OVER', 'claimed'),
      new ProtocolError(0x82, 'second CONNECT'),
    ];
    for (const err of errors) {
      assert.ok(err instanceof Error);
      assert.ok(err instanceof TributaryError);
      assert.equal(err.name, err.constructor.name);
      assert.ok(Object.hasOwn(ERROR_CODES, err.code), `${err.name}: code ${err.code} is not in ERROR_CODES`);
    }
    assert.ok(!(new ValidationError('INVALID_ARGUMENT', 'x') instanceof BackboneError));
  });

  it('keeps the cause (ES2022) and the message as given', () => {
    const cause = Object.assign(new Error('listen EADDRINUSE: address already in use'), { code: 'EADDRINUSE' });
    const err = new StartupError('LISTENER_BIND_FAILED', 'listener tcp:default cannot bind 0.0.0.0:1883: listen EADDRINUSE', { cause });
    assert.equal(err.cause, cause);
    assert.equal(err.message, 'listener tcp:default cannot bind 0.0.0.0:1883: listen EADDRINUSE');
    assert.equal(new BackboneError('BACKBONE_CORRUPT', 'x').cause, undefined);
  });

  it('retriable comes from the code, unless the thrower says otherwise', () => {
    assert.equal(new SessionError('SESSION_TAKEN_OVER', 'claimed').retriable, true);
    assert.equal(new BackboneError('BACKBONE_UNAVAILABLE', 'no leader').retriable, true);
    assert.equal(new BackboneError('BACKBONE_NOT_RUNNING', 'stopped').retriable, false);
    assert.equal(new TributaryError('BACKBONE_UNAVAILABLE', 'x', { retriable: false }).retriable, false);
    assert.equal(isRetriable(new SessionError('SESSION_TAKEN_OVER', 'claimed')), true);
    assert.equal(isRetriable(new ConfigError(['x'])), false);
    // kafkajs errors carry their own `retriable`.
    assert.equal(isRetriable(Object.assign(new Error('There is no leader for this topic-partition'), { retriable: true })), true);
    assert.equal(isRetriable(new Error('plain')), false);
    for (const v of [undefined, null, 'text', 42]) assert.equal(isRetriable(v), false);
  });

  it('a protocol error carries its MQTT reason code; 0x81 is a Malformed Packet', () => {
    const violation = new ProtocolError(0x94, 'topic alias 0');
    assert.equal(violation.reasonCode, 0x94);
    assert.equal(violation.code, 'PROTOCOL_VIOLATION');
    const malformed = new ProtocolError(0x81, 'malformed properties');
    assert.equal(malformed.code, 'MALFORMED_PACKET');
    assert.equal(new ValidationError('INVALID_ARGUMENT', 'x').reasonCode, undefined);
  });

  it('serialises to { code, message } only', () => {
    const err = new BackboneError('BACKBONE_UNAVAILABLE', 'offsets of Kafka topic t unavailable', { cause: new Error('secret host') });
    assert.equal(JSON.stringify(err), '{"code":"BACKBONE_UNAVAILABLE","message":"offsets of Kafka topic t unavailable"}');
  });

  it('maps anything thrown to an HTTP status and a { code, message } body', () => {
    assert.deepEqual(httpErrorOf(new ValidationError('TOPIC_NAME_INVALID', 'invalid backbone topic name "a b"')), {
      status: 400,
      body: { code: 'TOPIC_NAME_INVALID', message: 'invalid backbone topic name "a b"' },
    });
    assert.equal(httpErrorOf(new ValidationError('RECORD_TOO_LARGE', 'record too large')).status, 413);
    assert.equal(httpErrorOf(new ConflictError('AUTH_METHOD_REGISTERED', 'twice')).status, 409);
    assert.equal(httpErrorOf(new BackboneError('BACKBONE_NOT_RUNNING', 'stopped')).status, 503);
    assert.equal(httpErrorOf(new TributaryError('BACKBONE_NOT_RUNNING', 'x', { status: 500 })).status, 500);
    // A code outside the table (a plugin's own) still answers, as a server error.
    assert.deepEqual(httpErrorOf(new TributaryError('MY_PLUGIN_FAILED', 'boom')), { status: 500, body: { code: 'MY_PLUGIN_FAILED', message: 'boom' } });
    // Errors without a code do not leak their text (paths, hosts).
    for (const thrown of [new Error('ENOENT: /etc/tributary/secret.pem'), 'a string', undefined]) {
      assert.deepEqual(httpErrorOf(thrown), { status: 500, body: { code: 'INTERNAL_ERROR', message: 'internal error' } });
    }
  });
});

describe('errors at the config boundary', () => {
  it('loadConfig with a bad value throws ConfigError CONFIG_INVALID naming the key and variable', () => {
    const err = captureThrow(() => loadConfig(commonConfigFragment.schema, { env: { TRIBUTARY_LOG__LEVEL: 'loud' } }));
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.problems.length, 1);
    assert.match(err.problems[0]!, /^log\.level \(environment variable TRIBUTARY_LOG__LEVEL\): /);
    assert.equal(err.message, `invalid configuration:\n  ${err.problems[0]}`);
    assert.equal(httpErrorOf(err).status, 400);
  });

  it('an unreadable config file is a ConfigError caused by the read', () => {
    const err = captureThrow(() => loadConfig(commonConfigFragment.schema, { file: '/nonexistent/tributary.json', env: {} }));
    assert.ok(err instanceof ConfigError);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });

  it('a single problem is the whole message', () => {
    const err = new ConfigError('listeners.ssl.default.ssl_options: certfile and keyfile must be set together');
    assert.equal(err.message, 'listeners.ssl.default.ssl_options: certfile and keyfile must be set together');
    assert.deepEqual(err.problems, [err.message]);
  });
});

function captureThrow(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('did not throw');
}
