import type { Value } from '../value';
import { fail, int, list, spec, valueEquals, type FunctionTable } from './args';

/** Array functions; positions are 1-based (nth(1, [a, b]) is a). */
export const ARRAY_FUNCTIONS: FunctionTable = {
  nth: spec([2], (args) => {
    const n = int('nth', args[0]);
    const arr = list('nth', args[1]);
    if (n < 1 || n > arr.length) fail('nth', `no element ${n} in an array of ${arr.length}`);
    return arr[n - 1];
  }),
  length: spec([1], (args) => list('length', args[0]).length),
  sublist: spec([2, 3], (args) => {
    if (args.length === 2) {
      const len = int('sublist', args[0]);
      if (len < 0) fail('sublist', 'the length must not be negative');
      return list('sublist', args[1]).slice(0, len);
    }
    const start = int('sublist', args[0]);
    const len = int('sublist', args[1]);
    const arr = list('sublist', args[2]);
    if (start < 1 || start > arr.length + 1 || len < 0) fail('sublist', `no sublist from ${start} of length ${len} in an array of ${arr.length}`);
    return arr.slice(start - 1, start - 1 + len);
  }),
  first: spec([1], (args) => {
    const arr = list('first', args[0]);
    return arr.length > 0 ? arr[0] : fail('first', 'the array is empty');
  }),
  last: spec([1], (args) => {
    const arr = list('last', args[0]);
    return arr.length > 0 ? arr[arr.length - 1] : fail('last', 'the array is empty');
  }),
  contains: spec([2], (args) => {
    const item: Value = args[0];
    for (const el of list('contains', args[1])) if (valueEquals(item, el)) return true;
    return false;
  }),
};
