import { ARRAY_FUNCTIONS } from './array';
import { BITS_FUNCTIONS } from './bits';
import { CODEC_FUNCTIONS } from './codec';
import { COMPRESS_FUNCTIONS } from './compress';
import { CONVERT_FUNCTIONS } from './convert';
import { HASH_FUNCTIONS } from './hash';
import { MAP_FUNCTIONS } from './map';
import { MATH_FUNCTIONS } from './math';
import { MESSAGE_FUNCTIONS } from './message';
import { MISC_FUNCTIONS } from './misc';
import { STRING_FUNCTIONS } from './string';
import { TIME_FUNCTIONS } from './time';
import type { FunctionSpec } from './types';

export type { FunctionContext, FunctionSpec, RuleFunction } from './types';
export { dropRuleDict, resetFunctionState } from './misc';
export { setJqDefaultTimeout, stopJq } from './jq';

function build(): Map<string, FunctionSpec> {
  const all = new Map<string, FunctionSpec>();
  for (const family of [MESSAGE_FUNCTIONS, MATH_FUNCTIONS, BITS_FUNCTIONS, CONVERT_FUNCTIONS, STRING_FUNCTIONS, MAP_FUNCTIONS, ARRAY_FUNCTIONS, HASH_FUNCTIONS, COMPRESS_FUNCTIONS, CODEC_FUNCTIONS, TIME_FUNCTIONS, MISC_FUNCTIONS]) {
    for (const [name, spec] of Object.entries(family)) {
      if (all.has(name)) throw new Error(`rule function ${name} is defined twice`);
      all.set(name, spec);
    }
  }
  return all;
}

/**
 * EMQX's built-in rule SQL functions (Enterprise's schema_* and sparkplug_* aside) by lower-case
 * name, operators as functions included ('+', '-', '*', '/', div, mod, eq).
 */
export const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = build();

/** The function named `name`, in any letter case (EMQX's function names are case-insensitive). */
export function lookupFunction(name: string): FunctionSpec | undefined {
  return FUNCTIONS.get(name) ?? FUNCTIONS.get(name.toLowerCase());
}
