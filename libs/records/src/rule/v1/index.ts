import { avroType, readAvro, RecordError } from '../../codec';
import type { RuleActionSpec, RuleRecord } from '../record';

/** io.tributary.v1.Rule (schemas/rule/v1.avsc). */
export const RULE_V1 = 'io.tributary.v1.Rule';
export const ruleV1Type = avroType('rule', 1);

interface AvroRule {
  id: string;
  name: string;
  sql: string;
  actions: string;
  enable: boolean;
  description: string;
  metadata: string;
  created_at: number;
  updated_at: number;
}

export function encodeRuleV1(r: RuleRecord): Buffer {
  const a: AvroRule = { ...r, actions: JSON.stringify(r.actions), metadata: JSON.stringify(r.metadata) };
  return ruleV1Type.toBuffer(a);
}

function json<T>(text: string, field: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new RecordError(`rule: ${field} is not JSON`);
  }
}

export function decodeRuleV1(body: Buffer): RuleRecord {
  const a = readAvro<AvroRule>(ruleV1Type, body);
  const actions = json<RuleActionSpec[]>(a.actions, 'actions');
  if (!Array.isArray(actions)) throw new RecordError('rule: actions is not an array');
  const metadata = json<Record<string, unknown>>(a.metadata, 'metadata');
  return { ...a, actions, metadata: metadata && typeof metadata === 'object' ? metadata : {} };
}
