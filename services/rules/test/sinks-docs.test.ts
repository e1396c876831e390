// docs/rules-sinks.md is generated from the field definitions of services/rules/src/sinks: the
// committed file must be what sinksMarkdown() gives, every key must be in it with a doc, and what
// it says is accepted (EMQX keys not used) must really be accepted by the parsers.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigProblem, isLeaf, type SchemaNode } from '@tributary/common';
import { ACTION_PARAMS, CONNECTOR_FIELDS, parseAction, parseConnector, parseSource, SINK_TYPES } from '../src/sinks';
import { sinksMarkdown } from '../src/sinks/docs';
import { actionResourceFields, type Fields, ignoredKeys, isUnused, sslFields } from '../src/sinks/fields';

const DOC = join(__dirname, '..', '..', '..', '..', 'docs', 'rules-sinks.md');

/** Every leaf under `fields` as [dotted key, leaf]. */
function leaves(fields: Fields, prefix = ''): [string, SchemaNode][] {
  return Object.entries(fields).flatMap(([k, node]) => (isLeaf(node) ? [[`${prefix}${k}`, node] as [string, SchemaNode]] : leaves(node as Fields, `${prefix}${k}.`)));
}

describe('docs/rules-sinks.md', () => {
  it('is the generated file', () => {
    assert.equal(readFileSync(DOC, 'utf8'), sinksMarkdown(), 'regenerate with: node services/cli/bin/tributary.js config --sinks-markdown > docs/rules-sinks.md');
  });

  it('has a row with a doc for every key of every type, and names the differences from EMQX', () => {
    const md = sinksMarkdown();
    for (const type of SINK_TYPES) {
      for (const fields of [CONNECTOR_FIELDS[type], ACTION_PARAMS[type]]) {
        for (const [key, leaf] of leaves(fields)) {
          if (key.startsWith('ssl.') || key.startsWith('resource_opts.')) continue;
          const k = fields === ACTION_PARAMS[type] ? `parameters.${key}` : key;
          assert.ok((leaf as { doc: string }).doc.length > 3, `${type} ${k} has a doc`);
          assert.match(md, new RegExp(`^\\| \`${k.replace(/\./g, '\\.')}\` \\| `, 'm'), `${type}: ${k} is documented`);
        }
      }
    }
    for (const [key] of [...leaves(sslFields), ...leaves(actionResourceFields)]) assert.match(md, new RegExp(`^\\| \`${key}\` \\| `, 'm'));
    assert.match(md, /`ssl\.verify` defaults to `verify_peer` \(EMQX: `verify_none`\)/);
    assert.match(md, /`compression`: `no_compression` and `gzip`/);
    assert.match(md, /^\| `request_ttl` \| off \|/m);
    assert.match(md, /^\| `max_buffer_bytes` \| `256MB` \|/m);
    assert.match(md, /^\| `connect_timeout` \| `15s` \|/m);
    assert.match(md, /^\| `url` \| \*required\* \|/m);
    assert.match(md, /^\| `enable_pipelining` \| `100` \| .*\*Accepted, not used\.\* \|$/m);
  });

  it('the EMQX keys it calls accepted are accepted; unknown keys are refused', () => {
    const http = { url: 'http://127.0.0.1:1' };
    for (const k of ignoredKeys(CONNECTOR_FIELDS.http)) assert.ok(!(parseConnector('http', 'h', { ...http, [k]: 1 }) instanceof ConfigProblem), `connectors.http accepts ${k}`);
    for (const k of ignoredKeys(sslFields)) assert.ok(!(parseConnector('http', 'h', { ...http, ssl: { [k]: 1 } }) instanceof ConfigProblem), `ssl accepts ${k}`);
    for (const k of ignoredKeys(actionResourceFields)) assert.ok(!(parseAction('http', 'h', { connector: 'h', resource_opts: { [k]: 1 } }) instanceof ConfigProblem), `resource_opts accepts ${k}`);
    for (const k of ignoredKeys(ACTION_PARAMS.kafka_producer)) assert.ok(!(parseAction('kafka_producer', 'k', { connector: 'k', parameters: { topic: 't', [k]: 1 } }) instanceof ConfigProblem), `kafka parameters accept ${k}`);
    const unusedKafka = leaves(ACTION_PARAMS.kafka_producer).filter(([, l]) => isUnused(l as never)).map(([k]) => k);
    assert.deepEqual(unusedKafka, ['max_batch_bytes', 'max_linger_time', 'max_inflight']);
    assert.ok(!(parseAction('kafka_producer', 'k', { connector: 'k', parameters: { topic: 't', max_batch_bytes: '1MB' } }) instanceof ConfigProblem), 'an unused key is still parsed');
    assert.ok(parseAction('kafka_producer', 'k', { connector: 'k', parameters: { topic: 't', max_batch_bytes: 'lots' } }) instanceof ConfigProblem, '... and checked');
    const unknown = parseConnector('http', 'h', { ...http, frobnicate: 1 });
    assert.ok(unknown instanceof ConfigProblem);
    assert.match(unknown.message, /connectors\.http\.h\.frobnicate: unknown field/);
    assert.ok(!(parseSource('mqtt', 'm', { connector: 'm', parameters: { topic: 't/#', no_local: true } }) instanceof ConfigProblem));
  });
});
