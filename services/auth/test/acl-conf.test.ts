import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '@tributary/common';
import type { AuthorizeRequest, ClientInfo } from '@tributary/hooks';
import { AclSyntaxError, decide, FileSource, fileSourceSpec, parseAclConf } from '../src';

const client: ClientInfo = { clientId: 'dev-1', username: 'alice', peerhost: '10.1.2.3', protocolVersion: 5, isSuperuser: false };
const pub = (topic: string, qos: 0 | 1 | 2 = 0, retain = false): AuthorizeRequest => ({ action: 'publish', topic, qos, retain });
const sub = (topic: string, qos: 0 | 1 | 2 = 0): AuthorizeRequest => ({ action: 'subscribe', topic, qos, retain: false });

/** EMQX's shipped acl.conf, restated: the dashboard user and localhost see $SYS, nobody else subscribes to $SYS/# or #, the rest is allowed. */
const DEFAULT_ACL = `
%% The dashboard's own user may watch the broker's $SYS topics.
{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.

%% Clients on this machine may do anything, $SYS included.
{allow, {ipaddr, "127.0.0.1"}, all, ["$SYS/#", "#"]}.

%% Everyone else: no $SYS subscription and no subscription to the bare "#".
{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.

%% Whatever is left is allowed (use {deny, all}. in production).
{allow, all}.
`;

/** Fails unless `text` is refused at `line` with a message matching `expected`. */
function refused(text: string, line: number, expected: RegExp): void {
  assert.throws(
    () => parseAclConf(text),
    (err: unknown) => {
      assert.ok(err instanceof AclSyntaxError, String(err));
      assert.equal(err.line, line, err.message);
      assert.match(err.expected, expected);
      return true;
    },
  );
}

describe('acl.conf', () => {
  it("EMQX's default file: dashboard and localhost see $SYS, others may not subscribe to $SYS/# or #", () => {
    const rules = parseAclConf(DEFAULT_ACL);
    assert.equal(rules.length, 4);
    assert.deepEqual(rules[3], { permission: 'allow', who: 'all', action: 'all' });
    const local = { ...client, peerhost: '127.0.0.1' };
    const dash = { ...client, username: 'dashboard' };
    assert.equal(decide(rules, dash, sub('$SYS/brokers/#')), 'allow');
    assert.equal(decide(rules, local, sub('$SYS/brokers/#')), 'allow');
    assert.equal(decide(rules, local, sub('#')), 'allow');
    assert.equal(decide(rules, client, sub('$SYS/brokers/x')), 'deny');
    assert.equal(decide(rules, client, sub('#')), 'deny');
    assert.equal(decide(rules, client, sub('a/#')), 'allow', '{eq, "#"} is only the literal "#"');
    assert.equal(decide(rules, client, pub('$SYS/x')), 'allow', 'the deny is for subscribe only');
    assert.equal(decide(rules, { ...client, username: 'dashboard2' }, sub('$SYS/x')), 'deny', 'the regex is anchored');
  });

  it('every Who form: username/user, clientid/client (text and regex), ipaddr, ipaddrs, and, or', () => {
    const rules = parseAclConf(`
      {allow, {user, "alice"}, publish, ["u1"]}.
      {allow, {username, {re, "^al"}}, publish, ["u2"]}.
      {allow, {client, "dev-1"}, publish, ["c1"]}.
      {allow, {clientid, {re, "-[0-9]+$"}}, publish, ["c2"]}.
      {allow, {ipaddr, "10.0.0.0/8"}, publish, ["ip"]}.
      {allow, {ipaddrs, ["192.168.0.1", "10.1.2.3"]}, publish, ["ips"]}.
      {allow, {'and', [{username, "alice"}, {clientid, "dev-1"}]}, publish, ["and"]}.
      {allow, {'or', [{username, "bob"}, {ipaddr, "10.1.0.0/16"}]}, publish, ["or"]}.
      {allow, {'and', [{username, "alice"}, {clientid, "other"}]}, publish, ["and-no"]}.
    `);
    for (const t of ['u1', 'u2', 'c1', 'c2', 'ip', 'ips', 'and', 'or']) assert.equal(decide(rules, client, pub(t)), 'allow', t);
    assert.equal(decide(rules, client, pub('and-no')), 'nomatch');
    const stranger = { ...client, username: 'zed', clientId: 'x', peerhost: '8.8.8.8' };
    for (const t of ['u1', 'u2', 'c1', 'c2', 'ip', 'ips', 'and', 'or']) assert.equal(decide(rules, stranger, pub(t)), 'nomatch', t);
    assert.deepEqual(rules[5]!.who, { or: [{ ipaddr: '192.168.0.1' }, { ipaddr: '10.1.2.3' }] });
  });

  it('actions with QoS and retain conditions', () => {
    const rules = parseAclConf(`
      {deny, all, {publish, [{qos, 2}, {retain, true}]}, ["a"]}.
      {deny, all, {publish, {retain, true}}, ["b"]}.
      {deny, all, {subscribe, {qos, [1, 2]}}, ["c"]}.
      {deny, all, {all, [{qos, 0}, {retain, all}]}, ["d"]}.
      {allow, all}.
    `);
    assert.deepEqual(rules[0], { permission: 'deny', who: 'all', action: 'publish', qos: [2], retain: true, topics: [{ filter: 'a' }] });
    assert.equal(decide(rules, client, pub('a', 2, true)), 'deny');
    assert.equal(decide(rules, client, pub('a', 2, false)), 'allow');
    assert.equal(decide(rules, client, pub('a', 1, true)), 'allow');
    assert.equal(decide(rules, client, pub('b', 0, true)), 'deny');
    assert.equal(decide(rules, client, pub('b', 0, false)), 'allow');
    assert.equal(decide(rules, client, sub('c', 1)), 'deny');
    assert.equal(decide(rules, client, sub('c', 0)), 'allow');
    assert.equal(decide(rules, client, pub('c', 1)), 'allow', 'subscribe only');
    assert.equal(decide(rules, client, pub('d', 0, true)), 'deny', 'retain all = both');
    assert.equal(decide(rules, client, sub('d', 0)), 'deny');
    assert.equal(decide(rules, client, sub('d', 1)), 'allow');
  });

  it('topics: filters with placeholders and {eq, ...} literals', () => {
    const rules = parseAclConf('{allow, all, all, ["u/${username}/#", "c/${clientid}", {eq, "lit/+"}, {eq, "x/${username}"}]}.\n{deny, all}.');
    assert.equal(decide(rules, client, pub('u/alice/x')), 'allow');
    assert.equal(decide(rules, client, pub('u/bob/x')), 'deny');
    assert.equal(decide(rules, client, sub('c/dev-1')), 'allow');
    assert.equal(decide(rules, client, sub('lit/+')), 'allow');
    assert.equal(decide(rules, client, sub('lit/a')), 'deny', '{eq} has no wildcards');
    assert.equal(decide(rules, client, pub('x/alice')), 'deny', '{eq} has no placeholders');
    assert.equal(decide(rules, client, pub('x/${username}')), 'allow');
  });

  it("Erlang's syntax: % comments, string escapes, adjacent strings, quoted atoms, empty lines", () => {
    const rules = parseAclConf(
      [
        '% a comment',
        '{allow, {username, "tab\\there \\"q\\" back\\\\slash \\x41\\x{263A}\\101"}, publish, ["a"]}. % trailing comment',
        '',
        "{'allow', {clientid, \"ab\" \"cd\"}, 'publish', [\"b\"]}.",
        '{deny,all}.',
      ].join('\n'),
    );
    assert.deepEqual(rules[0]!.who, { username: 'tab\there "q" back\\slash A\u263aA' });
    assert.deepEqual(rules[1]!.who, { clientid: 'abcd' });
    assert.equal(rules[2]!.permission, 'deny');
    assert.deepEqual(parseAclConf(''), []);
    assert.deepEqual(parseAclConf('%% only comments\n'), []);
  });

  it('syntax errors name the line and what was expected', () => {
    refused('{allow, all}.\n{allow, all, publish, ["a"]}\n{deny, all}.', 3, /"\." after the rule/);
    refused('{allow, all}.\n\n{permit, all}.', 3, /allow or deny/);
    refused('{allow, all}.\n{allow, all, publish, "a"}.', 2, /a list of topics/);
    refused('{allow, {username, "a"}, publish}.', 1, /4 elements/);
    refused('{allow, all, publish, ["a"]', 1, /"," or "}"/);
    refused('\n{allow, all, publish, ["a]}.', 2, /closing "/);
    refused('{allow, {name, "a"}, publish, ["a"]}.', 1, /username, user, clientid/);
    refused('{allow, {ipaddr, "10.0.0.0/33"}, publish, ["a"]}.', 1, /CIDR/);
    refused('{allow, {username, {re, "("}}, publish, ["a"]}.', 1, /regular expression/);
    refused('{allow, all, write, ["a"]}.', 1, /publish, subscribe, all/);
    refused('{allow, all, {publish, [{qos, 3}]}, ["a"]}.', 1, /QoS 0, 1 or 2/);
    refused('{allow, all, {publish, [{retain, maybe}]}, ["a"]}.', 1, /true, false or all/);
    refused('{allow, all, {subscribe, {retain, true}}, ["a"]}.', 1, /retain applies to publish/);
    refused('{allow, all, publish, ["a/#/b"]}.', 1, /valid topic filter/);
    refused('{allow, Who, publish, ["a"]}.', 1, /not a variable/);
    refused('{allow, all}.{deny, all}.', 1, /whitespace or a new line after "\."/);
    refused('{allow, somebody}.', 1, /all/);
  });

  it('a file source reads the file at start; a bad file stops it with a ConfigError naming file and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'acl-conf-'));
    try {
      const good = join(dir, 'good.conf');
      writeFileSync(good, DEFAULT_ACL);
      const cfg = fileSourceSpec.parse({ path: good });
      assert.ok(!('message' in cfg));
      const s = new FileSource(cfg);
      await s.start();
      assert.equal(s.authorize(client, sub('#')), 'deny');
      assert.equal(s.authorize(client, pub('t')), 'allow');

      const bad = join(dir, 'bad.conf');
      writeFileSync(bad, '{allow, all, publish, ["a"]}.\n{deny, all, subscribe, ["b"]\n');
      await assert.rejects(new FileSource({ path: bad }).start(), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.ok(err.message.includes(`${bad}:3:1`), err.message);
        assert.match(err.message, /expected "," or "}", found the end of the file/);
        return true;
      });
      await assert.rejects(new FileSource({ path: join(dir, 'missing.conf') }).start(), /cannot read .*missing\.conf: ENOENT/);
      assert.ok('message' in fileSourceSpec.parse({}), 'path is required');
      assert.ok('message' in fileSourceSpec.parse({ path: 'a', extra: 1 }), 'unknown fields are refused');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
