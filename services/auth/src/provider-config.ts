import { ConfigProblem } from '@tributary/common';

/** Field checks shared by the built-in database providers' configuration parsers. */

/** A problem naming the first field of `raw` that `allowed` does not list. */
export function unknownField(raw: Record<string, unknown>, allowed: readonly string[]): ConfigProblem | undefined {
  const extra = Object.keys(raw).find((k) => !allowed.includes(k));
  if (extra === undefined) return undefined;
  return new ConfigProblem(`unknown field "${extra}" (${allowed.length ? `fields: ${allowed.join(', ')}` : 'it has no fields of its own'})`);
}

/** `bootstrap_file` (optional) and `bootstrap_type` (plain, the default, or hash). */
export interface BootstrapFields {
  bootstrap_file?: string;
  bootstrap_type: 'plain' | 'hash';
}

export function parseBootstrapFields(raw: Record<string, unknown>): BootstrapFields | ConfigProblem {
  const { bootstrap_file, bootstrap_type = 'plain' } = raw;
  if (bootstrap_file !== undefined && (typeof bootstrap_file !== 'string' || bootstrap_file === '')) return new ConfigProblem('field "bootstrap_file" must be a file path');
  if (bootstrap_type !== 'plain' && bootstrap_type !== 'hash') return new ConfigProblem('field "bootstrap_type" must be plain or hash');
  return bootstrap_file === undefined ? { bootstrap_type } : { bootstrap_file, bootstrap_type };
}
