import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { FUNCTIONS, lookupFunction } from '../src/functions';

// Every function of OPERATIONS.md §4.4 (the Enterprise extras aside) with the arities EMQX takes.
const EXPECTED: Record<string, number[] | { min: number }> = {
  msgid: [0], qos: [0], flags: [0], flag: [1], topic: [0, 1], clientid: [0], clientip: [0], peerhost: [0], username: [0],
  payload: [0, 1], contains_topic: [2, 3], contains_topic_match: [2, 3], null: [0], coalesce: [1, 2], coalesce_ne: [1, 2],
  '+': [2], '-': [2], '*': [2], '/': [2], div: [2], mod: [2], eq: [2],
  abs: [1], acos: [1], acosh: [1], asin: [1], asinh: [1], atan: [1], atanh: [1], ceil: [1], cos: [1], cosh: [1], exp: [1],
  floor: [1], log: [1], log10: [1], log2: [1], round: [1], sin: [1], sinh: [1], sqrt: [1], tan: [1], tanh: [1],
  fmod: [2], power: [2], random: [0],
  bitnot: [1], bitand: [2], bitor: [2], bitxor: [2], bitsl: [2], bitsr: [2], bitsize: [1], bytesize: [1], subbits: [2, 3, 4, 5, 6],
  str: [1], str_utf8: [1], str_utf16_le: [1], bool: [1], int: [1], float: [1, 2], float2str: [2], map: [1],
  bin2hexstr: [1, 2], hexstr2bin: [1, 2], sqlserver_bin2hexstr: [1],
  is_null: [1], is_null_var: [1], is_not_null: [1], is_not_null_var: [1], is_str: [1], is_bool: [1], is_int: [1],
  is_float: [1], is_num: [1], is_map: [1], is_array: [1], is_empty: [1],
  lower: [1], upper: [1], trim: [1, 2], ltrim: [1, 2], rtrim: [1, 2], reverse: [1], strlen: [1], ascii: [1],
  substr: [2, 3], split: [2, 3], tokens: [2, 3], concat: [1, 2], sprintf: { min: 1 }, sprintf_s: [2], pad: [2, 3, 4],
  replace: [3, 4], regex_match: [2], regex_replace: [3], regex_extract: [2], find: [2, 3], rm_prefix: [2],
  join_to_string: [1, 2], join_to_sql_values_string: [1], map_to_redis_hset_args: [1], unescape: [1], jq: [2, 3],
  map_new: [0], map_get: [2, 3], map_put: [3], mget: [2, 3], mput: [3], map_keys: [1], map_values: [1], map_to_entries: [1], map_size: [1],
  nth: [2], length: [1], sublist: [2, 3], first: [1], last: [1], contains: [2],
  md5: [1], sha: [1], sha256: [1], hash: [2],
  gzip: [1], gunzip: [1], zip: [1], unzip: [1], zip_compress: [1], zip_uncompress: [1],
  base64_encode: [1, 2, 3], base64_decode: [1, 2, 3], json_encode: [1], json_decode: [1], term_encode: [1], term_decode: [1],
  now_rfc3339: [0, 1], unix_ts_to_rfc3339: [1, 2], rfc3339_to_unix_ts: [1, 2], now_timestamp: [0, 1], format_date: [3, 4],
  date_to_unix_ts: [3, 4], timezone_to_offset_seconds: [1], timezone_to_second: [1], mongo_date: [0, 1, 2],
  uuid_v4: [0], uuid_v4_no_hyphen: [0], getenv: [1], proc_dict_get: [1], proc_dict_put: [2], proc_dict_del: [1],
  kv_store_get: [1, 2], kv_store_put: [2], kv_store_del: [1],
};

describe('the function registry', () => {
  it("has every built-in function of EMQX's list with its arities, and nothing else", () => {
    for (const [name, arity] of Object.entries(EXPECTED)) {
      const spec = FUNCTIONS.get(name);
      assert.ok(spec, `missing ${name}`);
      assert.deepEqual(spec.arity, arity, name);
    }
    assert.deepEqual([...FUNCTIONS.keys()].filter((k) => !(k in EXPECTED)), []);
    for (const k of FUNCTIONS.keys()) assert.equal(k, k.toLowerCase());
  });

  it('looks names up in any letter case', () => {
    assert.equal(lookupFunction('UPPER'), FUNCTIONS.get('upper'));
    assert.equal(lookupFunction('Json_Decode'), FUNCTIONS.get('json_decode'));
    assert.equal(lookupFunction('DIV'), FUNCTIONS.get('div'));
    assert.equal(lookupFunction('schema_decode'), undefined);
    assert.equal(lookupFunction('nope'), undefined);
  });
});
