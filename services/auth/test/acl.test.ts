import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { AuthorizeRequest, ClientInfo } from '@tributary/hooks';
import { AclRule, decide, expandPlaceholders, filterCovers, inCidr, rulesFromClaim } from '../src';

const client: ClientInfo = { clientId: 'dev-1', username: 'alice', peerhost: '10.1.2.3', protocolVersion: 5, isSuperuser: false };
const pub = (topic: string, qos: 0 | 1 | 2 = 0, retain = false): AuthorizeRequest => ({ action: 'publish', topic, qos, retain });
const sub = (topic: string, qos: 0 | 1 | 2 = 0): AuthorizeRequest => ({ action: 'subscribe', topic, qos, retain: false });

describe('ACL rules', () => {
  it('a subscribed filter is covered only by a rule filter at least as wide', () => {
    assert.equal(filterCovers('t/#', 't/a/b'), true);
    assert.equal(filterCovers('t/#', 't/+'), true);
    assert.equal(filterCovers('t/+', 't/+'), true);
    assert.equal(filterCovers('t/+', 't/#'), false);
    assert.equal(filterCovers('t/a', 't/+'), false);
    assert.equal(filterCovers('#', '$SYS/x'), false);
    assert.equal(filterCovers('+/x', '+/x'), true);
    assert.equal(filterCovers('t/+/c', 't/b/c'), true);
  });

  it('placeholders expand, and a value with a wildcard or a level never matches', () => {
    assert.equal(expandPlaceholders('u/${username}/#', client), 'u/alice/#');
    assert.equal(expandPlaceholders('c/${clientid}', client), 'c/dev-1');
    assert.equal(expandPlaceholders('u/${username}', { ...client, username: '#' }), undefined);
    assert.equal(expandPlaceholders('u/${username}', { ...client, username: 'a/b' }), undefined);
    assert.equal(expandPlaceholders('u/${username}', { ...client, username: undefined }), undefined);
  });

  it('${client_attrs.NAME} expands to the client attribute; a missing one, or one with a wildcard or a level, never matches', () => {
    const attrs = { ...client, clientAttrs: { group: 'g1', bad: 'a/b', wild: '+' } };
    assert.equal(expandPlaceholders('${client_attrs.group}/${clientid}/#', attrs), 'g1/dev-1/#');
    assert.equal(expandPlaceholders('x/${client_attrs.nope}', attrs), undefined);
    assert.equal(expandPlaceholders('x/${client_attrs.group}', client), undefined, 'a client without attributes');
    assert.equal(expandPlaceholders('x/${client_attrs.bad}', attrs), undefined);
    assert.equal(expandPlaceholders('x/${client_attrs.wild}', attrs), undefined);
    assert.equal(expandPlaceholders('x/${client_attrs.toString}', attrs), undefined, 'never a property of Object.prototype');
    assert.equal(decide([{ permission: 'allow', who: 'all', action: 'subscribe', topics: [{ filter: '${client_attrs.group}/#' }] }], attrs, sub('g1/t')), 'allow');
    assert.equal(decide([{ permission: 'allow', who: 'all', action: 'subscribe', topics: [{ filter: '${client_attrs.group}/#' }] }], attrs, sub('g2/t')), 'nomatch');
  });

  it('matches CIDRs for IPv4, IPv6 and IPv4-mapped peers', () => {
    assert.equal(inCidr('10.1.2.3', '10.0.0.0/8'), true);
    assert.equal(inCidr('::ffff:10.1.2.3', '10.0.0.0/8'), true);
    assert.equal(inCidr('11.1.2.3', '10.0.0.0/8'), false);
    assert.equal(inCidr('::1', '::1/128'), true);
    assert.equal(inCidr('10.1.2.3', 'not-a-cidr'), false);
  });

  it('the first matching rule decides, with who, action, qos and retain conditions', () => {
    const rules: AclRule[] = [
      { permission: 'deny', who: { username: 'alice' }, action: 'publish', retain: true, topics: [{ filter: '#' }] },
      { permission: 'allow', who: { and: [{ ipaddr: '10.0.0.0/8' }, { clientid: /^dev-/ }] }, action: 'publish', qos: [0, 1], topics: [{ filter: 'data/${clientid}/#' }] },
      { permission: 'allow', who: 'all', action: 'subscribe', topics: [{ eq: 'cmd/#' }] },
      { permission: 'deny', who: 'all', action: 'all' },
    ];
    assert.equal(decide(rules, client, pub('data/dev-1/x', 1)), 'allow');
    assert.equal(decide(rules, client, pub('data/dev-1/x', 2)), 'deny');
    assert.equal(decide(rules, client, pub('data/dev-1/x', 0, true)), 'deny');
    assert.equal(decide(rules, client, pub('data/dev-2/x')), 'deny');
    assert.equal(decide(rules, { ...client, peerhost: '192.168.0.1' }, pub('data/dev-1/x')), 'deny');
    assert.equal(decide(rules, client, sub('cmd/#')), 'allow');
    assert.equal(decide(rules, client, sub('cmd/x')), 'deny'); // {eq, ...} is literal
    assert.equal(decide(rules.slice(0, 3), client, sub('other')), 'nomatch');
  });

  it('reads both claim forms and names what is wrong', () => {
    const rules = rulesFromClaim([{ permission: 'allow', action: 'publish', topic: 't/${username}', qos: [1], retain: false }, { permission: 'deny', action: 'all', topics: ['#'] }]);
    assert.equal(decide(rules, client, pub('t/alice', 1)), 'allow');
    assert.equal(decide(rules, client, pub('t/alice', 0)), 'deny');
    const legacy = rulesFromClaim({ pub: ['a/#'], sub: ['eq b/#'] });
    assert.equal(decide(legacy, client, pub('a/1')), 'allow');
    assert.equal(decide(legacy, client, sub('b/#')), 'allow');
    assert.equal(decide(legacy, client, sub('b/1')), 'nomatch');
    assert.throws(() => rulesFromClaim([{ permission: 'maybe', topic: 'x' }]), /acl\[0\]\.permission/);
    assert.throws(() => rulesFromClaim([{ permission: 'allow' }]), /topic or topics is required/);
    assert.throws(() => rulesFromClaim('x'), /expected a list/);
  });
});
