import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, silentLogger, type Logger } from '@tributary/common';
import { clientAttrsFrom, mergeClientAttrs, type ConnectInfo } from '@tributary/hooks';
import { compileClientAttrsInit, gatewayConfigSchema, type ClientAttrInit } from '../src';

const conn = (over: Partial<ConnectInfo> = {}): ConnectInfo => ({
  clientId: 'acme-dev-7',
  username: 'u1',
  peerhost: '10.0.0.9',
  peername: '10.0.0.9:5000',
  protocolVersion: 5,
  isSuperuser: false,
  listener: 'tcp:default',
  keepalive: 60,
  cleanStart: true,
  expiryInterval: 0,
  protoName: 'MQTT',
  ...over,
});

/** A logger that keeps what was logged at warn and debug. */
function recording(): { log: Logger; warns: Record<string, unknown>[]; debugs: Record<string, unknown>[] } {
  const warns: Record<string, unknown>[] = [];
  const debugs: Record<string, unknown>[] = [];
  const log = { warn: (o: Record<string, unknown>) => warns.push(o), debug: (o: Record<string, unknown>) => debugs.push(o) } as unknown as Logger;
  return { log, warns, debugs };
}

const init = (entries: ClientAttrInit[], log: Logger = silentLogger) => compileClientAttrsInit(entries, log)!;

describe('mqtt.client_attrs_init', () => {
  it('evaluates rule SQL over clientid, username, cn, dn, peerhost, proto_name, user_property, in order', () => {
    const f = init([
      { expression: "nth(1, tokens(clientid, '-'))", set_as_attr: 'tenant' },
      { expression: 'cn', set_as_attr: 'cn' },
      { expression: "nth(1, regex_extract(dn, 'O=([^,]+)'))", set_as_attr: 'org' },
      { expression: 'user_property.site', set_as_attr: 'site' },
      { expression: "concat([username, '@', peerhost])", set_as_attr: 'who' },
      { expression: 'proto_name', set_as_attr: 'proto' },
      { expression: "concat([client_attrs.tenant, '/', client_attrs.site])", set_as_attr: 'path' },
    ]);
    const attrs = f(conn({ properties: { userProperties: { site: ['old', 'berlin'] } } }), { cn: 'dev-7', dn: 'CN=dev-7,O=Acme,C=DE' });
    assert.deepEqual(attrs, { tenant: 'acme', cn: 'dev-7', org: 'Acme', site: 'berlin', who: 'u1@10.0.0.9', proto: 'MQTT', path: 'acme/berlin' });
  });

  it('undefined, empty, maps and errors leave the attribute unset; numbers and booleans are their text; each failing expression warns once', () => {
    const { log, warns, debugs } = recording();
    const f = init(
      [
        { expression: 'cn', set_as_attr: 'cn' },
        { expression: "''", set_as_attr: 'empty' },
        { expression: 'map_new()', set_as_attr: 'map' },
        { expression: "int('x')", set_as_attr: 'broken' },
        { expression: 'strlen(clientid)', set_as_attr: 'len' },
        { expression: 'is_null(username)', set_as_attr: 'anon' },
      ],
      log,
    );
    assert.deepEqual(f(conn(), undefined), { len: '10', anon: 'false' });
    assert.deepEqual(f(conn({ username: undefined }), undefined), { len: '10', anon: 'true' });
    assert.equal(warns.length, 1);
    assert.equal(warns[0]!.attr, 'broken');
    assert.equal(debugs.length, 1, 'the second failure at debug');
    assert.equal(init([{ expression: 'cn', set_as_attr: 'cn' }])(conn(), undefined), undefined, 'no value: no attributes at all');
    assert.equal(compileClientAttrsInit([], silentLogger), undefined);
  });

  it('is read from the configuration; a bad entry is a config error naming the key', () => {
    const load = (v: unknown) => loadConfig(gatewayConfigSchema, { env: { TRIBUTARY_MQTT__CLIENT_ATTRS_INIT: JSON.stringify(v) } }).config.mqtt.client_attrs_init;
    assert.deepEqual(load([{ expression: 'clientid', set_as_attr: 'id' }]), [{ expression: 'clientid', set_as_attr: 'id' }]);
    assert.deepEqual(loadConfig(gatewayConfigSchema, { env: {} }).config.mqtt.client_attrs_init, []);
    const refused = (v: unknown, why: RegExp): void => {
      assert.throws(
        () => load(v),
        (err: unknown) => err instanceof ConfigError && /mqtt\.client_attrs_init/.test(err.message) && why.test(err.message),
        `${JSON.stringify(v)} refused with ${why}`,
      );
    };
    refused([{ expression: 'nth(1, tokens(clientid', set_as_attr: 'g' }], /item 0: expression "nth\(1, tokens\(clientid": .*line 1, column/);
    refused([{ expression: 'nope(clientid)', set_as_attr: 'g' }], /unknown function nope\/1/);
    refused([{ expression: 'clientid' }], /missing field "set_as_attr"/);
    refused([{ expression: 'clientid', set_as_attr: 'a.b' }], /set_as_attr "a\.b": names are 1-64 letters/);
    refused([{ expression: 'clientid', set_as_attr: '__proto__' }], /set_as_attr "__proto__"/);
    refused([{ expression: 'clientid', set_as_attr: 'x', extra: 1 }], /unknown field "extra"/);
    refused({ expression: 'clientid', set_as_attr: 'x' }, /expected an array/);
  });
});

describe("authenticators' client_attrs", () => {
  it('keeps names and text values (numbers and booleans as text), skips the rest, merges over the initial attributes', () => {
    assert.deepEqual(clientAttrsFrom({ tenant: 't1', n: 7, ok: true, nested: { a: 1 }, 'bad.name': 'x', empty: '', ['__proto__']: 'p' }), { tenant: 't1', n: '7', ok: 'true' });
    assert.equal(clientAttrsFrom('text'), undefined);
    assert.equal(clientAttrsFrom([1]), undefined);
    assert.equal(clientAttrsFrom({ only: { a: 1 } }), undefined);
    assert.equal(clientAttrsFrom({ long: 'x'.repeat(1025) }), undefined);
    assert.deepEqual(mergeClientAttrs({ a: '1', b: '2' }, { b: 'B', c: '3' }), { a: '1', b: 'B', c: '3' });
    const base = { a: '1' };
    assert.equal(mergeClientAttrs(base, undefined), base);
  });
});
