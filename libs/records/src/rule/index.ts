import { inRange, RecordCodec, RecordError, versionedCodec } from '../codec';
import type { RuleRecord } from './record';
import { decodeRuleV1, encodeRuleV1, RULE_V1 } from './v1';

export * from './record';

function checkRule(r: RuleRecord, key: string | undefined): void {
  if (r.id.length === 0) throw new RecordError('rule: empty id');
  inRange('rule: created_at', r.created_at, 0, Number.MAX_SAFE_INTEGER);
  if (key !== undefined && key !== r.id) throw new RecordError(`rule: key "${key}" is not its id "${r.id}"`);
}

/** The rules table's records: io.tributary.v1.Rule (there was no JSON version). */
export const ruleCodec: RecordCodec<RuleRecord> = versionedCodec<RuleRecord>({
  schema: RULE_V1,
  version: 1,
  encode: encodeRuleV1,
  decoders: { 1: decodeRuleV1 },
  legacyJson: () => {
    throw new RecordError('rule: a JSON value (this record was never JSON)');
  },
  check: checkRule,
});
