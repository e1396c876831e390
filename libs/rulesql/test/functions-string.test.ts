import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { call, fails, hex } from './functions-util';

describe('string functions: case, trim, length, slices', () => {
  it("lower, upper, reverse, strlen (graphemes: '你好' is 2)", () => {
    assert.equal(call('lower', 'AbC'), 'abc');
    assert.equal(call('lower', '0ABC'), '0abc');
    assert.equal(call('upper', 'abc4'), 'ABC4');
    assert.equal(call('upper', 'hello'), 'HELLO');
    assert.equal(call('lower', 'ÄÖ'), 'äö');
    assert.equal(call('lower', true), 'true');
    assert.equal(call('reverse', 'hello'), 'olleh');
    assert.equal(call('reverse', '1234'), '4321');
    assert.equal(call('reverse', 'a你好👋🏽b'), 'b👋🏽好你a');
    assert.equal(call('strlen', 'hello'), 5);
    assert.equal(call('strlen', 'hello\n'), 6);
    assert.equal(call('strlen', '你好'), 2);
    assert.equal(call('strlen', 'a\r\n'), 2);
    assert.equal(call('strlen', 'e\u0301x'), 2);
    assert.equal(call('strlen', '🐸🐸'), 2);
    assert.equal(call('strlen', '👋🏽'), 1);
    assert.equal(call('substr', '🐸a🐸', 1), 'a🐸');
    fails(() => call('lower', undefined));
    fails(() => call('upper', null));
    fails(() => call('strlen', 12));
  });

  it('trim, ltrim, rtrim remove whitespace (CR LF included), or the characters given', () => {
    assert.equal(call('trim', '\t  hello  \n'), 'hello');
    assert.equal(call('trim', '\t  hello \r\n'), 'hello');
    assert.equal(call('ltrim', '\t  hello  \n'), 'hello  \n');
    assert.equal(call('rtrim', '\t  hello  \n'), '\t  hello');
    assert.equal(call('rtrim', '\t  hello \r\n'), '\t  hello');
    assert.equal(call('trim', ''), '');
    assert.equal(call('trim', ' abc '), 'abc');
    assert.equal(call('trim', 'xxhixyx', 'xy'), 'hi');
    assert.equal(call('ltrim', '--a--', '-'), 'a--');
    assert.equal(call('rtrim', '--a--', '-'), '--a');
  });

  it('substr is 0-based on graphemes', () => {
    assert.equal(call('substr', 'hello', 0), 'hello');
    assert.equal(call('substr', 'hello world', 6), 'world');
    assert.equal(call('substr', 'hello world!', 6, 5), 'world');
    assert.equal(call('substr', '', 1), '');
    assert.equal(call('substr', 'abc', 1), 'bc');
    assert.equal(call('substr', 'abcd', 1, 2), 'bc');
    assert.equal(call('substr', '你好世界', 1, 2), '好世');
    fails(() => call('substr', 'abc', -1));
  });

  it('ascii is the first byte', () => {
    assert.equal(call('ascii', 'a'), 97);
    assert.equal(call('ascii', 'abc'), 97);
    assert.equal(call('ascii', '你'), 0xe4);
    fails(() => call('ascii', ''));
  });
});

describe('string functions: split, tokens, concat, pad, replace, find', () => {
  it('split/2 drops empty parts; notrim keeps them', () => {
    assert.deepEqual(call('split', 'a;', ';'), ['a']);
    assert.deepEqual(call('split', 'a;b;c', ';'), ['a', 'b', 'c']);
    assert.deepEqual(call('split', 'a;;b;;c', ';'), ['a', 'b', 'c']);
    assert.deepEqual(call('split', 'Sienna Blake; Howell Wise', ';'), ['Sienna Blake', ' Howell Wise']);
    assert.deepEqual(call('split', 'Sienna Blake; Howell Wise', '; '), ['Sienna Blake', 'Howell Wise']);
    assert.deepEqual(call('split', '', '/'), []);
    assert.deepEqual(call('split', '/', '/'), []);
    assert.deepEqual(call('split', '/a/b//c/', '/'), ['a', 'b', 'c']);
    assert.deepEqual(call('split', 'a,b,c\r\n', ','), ['a', 'b', 'c\r\n']);
    assert.deepEqual(call('split', 'a;;b;;c', ';', 'notrim'), ['a', '', 'b', '', 'c']);
    assert.deepEqual(call('split', '', '/', 'notrim'), ['']);
    assert.deepEqual(call('split', '/a/b//c/', '/', 'notrim'), ['', 'a', 'b', '', 'c', '']);
    assert.deepEqual(call('split', '哈哈, 你好, 是的\r\n', ',', 'notrim'), ['哈哈', ' 你好', ' 是的\r\n']);
  });

  it('split/3 leading and trailing split at the first or last separator', () => {
    assert.deepEqual(call('split', 'a;b;c', ';', 'leading'), ['a', 'b;c']);
    assert.deepEqual(call('split', 'a;b;c', ';', 'trailing'), ['a;b', 'c']);
    assert.deepEqual(call('split', ';a;b;c', ';', 'leading_notrim'), ['', 'a;b;c']);
    assert.deepEqual(call('split', 'a;b;c;', ';', 'trailing_notrim'), ['a;b;c', '']);
    assert.deepEqual(call('split', '/a/b/c', '/', 'leading'), ['a/b/c']);
    assert.deepEqual(call('split', 'a/b//c/', '/', 'trailing'), ['a/b//c']);
    assert.deepEqual(call('split', '/', '/', 'leading_notrim'), ['', '']);
    assert.deepEqual(call('split', '', '/', 'trailing_notrim'), ['']);
    assert.deepEqual(call('split', '哈哈, 你好, 是的\r\n', ',', 'trailing'), ['哈哈, 你好', ' 是的\r\n']);
    fails(() => call('split', 'a', ';', 'middle'));
  });

  it('split keeps the bytes of a binary that is not UTF-8', () => {
    assert.deepEqual(call('split', hex('ff2cfe'), ','), [hex('ff'), hex('fe')]);
  });

  it('tokens splits at any of the characters, never giving empty tokens; nocrlf adds CR and LF', () => {
    assert.deepEqual(call('tokens', 'a,b;c,d', ',;'), ['a', 'b', 'c', 'd']);
    assert.deepEqual(call('tokens', 'a;;b', ';'), ['a', 'b']);
    assert.deepEqual(call('tokens', '', '/'), []);
    assert.deepEqual(call('tokens', ' /a/ b /c', ' /'), ['a', 'b', 'c']);
    assert.deepEqual(call('tokens', 'a ,\nb,c\n', ', '), ['a', '\nb', 'c\n']);
    assert.deepEqual(call('tokens', 'a ,b,c\r\n', ', '), ['a', 'b', 'c\r\n']);
    assert.deepEqual(call('tokens', 'a\rb\nc\r\nd', ';', 'nocrlf'), ['a', 'b', 'c', 'd']);
    assert.deepEqual(call('tokens', 'a,b\r\n,c\n', ',', 'nocrlf'), ['a', 'b', 'c']);
    assert.deepEqual(call('tokens', '\r\n', ',', 'nocrlf'), []);
    assert.deepEqual(call('tokens', '哈哈, 你好, 是的\r\n', ', ', 'nocrlf'), ['哈哈', '你好', '是的']);
  });

  it('concat joins two values or an array, converting non-text as str does', () => {
    assert.equal(call('concat', 'Name:', 'John'), 'Name:John');
    assert.equal(call('concat', '哈哈', '你好'), '哈哈你好');
    assert.equal(call('concat', '', ''), '');
    assert.equal(call('concat', ['a', 1, 'b', 2.5, true]), 'a1b2.5true');
    assert.equal(call('concat', 'x', { a: 1 }), 'x{"a":1}');
    fails(() => call('concat', 'a'));
  });

  it('pad fills to a length in graphemes; the fill counts as one whatever its length', () => {
    assert.equal(call('pad', 'hello', 8), 'hello   ');
    assert.equal(call('pad', 'abc', 0), 'abc');
    assert.equal(call('pad', 'hello', 8, 'leading'), '   hello');
    assert.equal(call('pad', 'hello', 8, 'trailing'), 'hello   ');
    assert.equal(call('pad', 'hello', 8, 'both'), ' hello  ');
    assert.equal(call('pad', 'abc', 5, 'both'), ' abc ');
    assert.equal(call('pad', 'hello', 8, 'trailing', '!'), 'hello!!!');
    assert.equal(call('pad', 'hello', 8, 'trailing', '\r\n'), 'hello\r\n\r\n\r\n');
    assert.equal(call('pad', 'hello', 8, 'trailing', 'abc'), 'helloabcabcabc');
    assert.equal(call('pad', 'abc', 5, 'both', 'ex'), 'exabcex');
    assert.equal(call('pad', 'abc', 5, 'leading', 'e'), 'eeabc');
    assert.equal(call('pad', '你好', 3, 'leading', '*'), '*你好');
    fails(() => call('pad', 'abc', 5, 'middle'));
  });

  it('replace: all, the leading or the trailing occurrence', () => {
    assert.equal(call('replace', 'ab..cd..ef', '..', '**'), 'ab**cd**ef');
    assert.equal(call('replace', 'ab..cd..ef', '..', ''), 'abcdef');
    assert.equal(call('replace', 'ab..cd..ef', '..', '**', 'all'), 'ab**cd**ef');
    assert.equal(call('replace', 'ab..cd..ef', '..', '**', 'leading'), 'ab**cd..ef');
    assert.equal(call('replace', 'ab..cd..ef', '..', '**', 'trailing'), 'ab..cd**ef');
    assert.equal(call('replace', 'ab c  ', ' ', '::'), 'ab::c::::');
  });

  it('find returns the rest from the first or last occurrence; rm_prefix drops a prefix', () => {
    assert.equal(call('find', '..., Value: 1.2', 'Value:'), 'Value: 1.2');
    assert.equal(call('find', '..., Value: 1.2', 'Data'), '');
    assert.equal(call('find', 'Front, Middle, End', ', ', 'leading'), ', Middle, End');
    assert.equal(call('find', 'Front, Middle, End', ', ', 'trailing'), ', End');
    assert.equal(call('find', 'acbcd', 'c', 'trailing'), 'cd');
    assert.equal(call('find', '', 'c'), '');
    assert.equal(call('find', '', ''), '');
    assert.equal(call('rm_prefix', 'foo/bar', 'foo/'), 'bar');
    assert.equal(call('rm_prefix', 'foo/bar', 'xxx/'), 'foo/bar');
  });
});

describe('string functions: regular expressions (PCRE)', () => {
  it('regex_match', () => {
    assert.equal(call('regex_match', '123', '^\\d+$'), true);
    assert.equal(call('regex_match', 'a23', '^\\d+$'), false);
    assert.equal(call('regex_match', 'acbcd', '(ac)+'), true);
    assert.equal(call('regex_match', 'bcd', '(ac)+'), false);
    assert.equal(call('regex_match', '', '.*'), true);
    assert.equal(call('regex_match', '', '[a-z]+'), false);
    assert.equal(call('regex_match', 'e2xebd', '^[a-z]+$'), false);
    // PCRE: $ also matches before a final newline; (?i) sets an option; \A and \z anchor the subject.
    assert.equal(call('regex_match', 'abc\n', 'c$'), true);
    assert.equal(call('regex_match', 'ABC', '(?i)^abc$'), true);
    assert.equal(call('regex_match', 'x\nabc', '\\Aabc'), false);
    assert.equal(call('regex_match', 'abc\n', 'c\\z'), false);
    assert.equal(call('regex_match', 'a.b', '\\Qa.b\\E'), true);
    assert.equal(call('regex_match', 'axb', '\\Qa.b\\E'), false);
    assert.equal(call('regex_match', 'ab', '(?P<x>a)(?P=x)?b'), true);
    fails(() => call('regex_match', 'a', '(unclosed'));
  });

  it('regex_replace replaces every match; & is the match', () => {
    assert.equal(call('regex_replace', 'hello 123', '\\d+', 'world'), 'hello world');
    assert.equal(call('regex_replace', 'a;b; c', ';\\s*', ','), 'a,b,c');
    assert.equal(call('regex_replace', '', 'c.*', 'e'), '');
    assert.equal(call('regex_replace', 'accbcd', 'c+', 'e'), 'aebed');
    assert.equal(call('regex_replace', 'accbcd', 'c+', '[&]'), 'a[cc]b[c]d');
    assert.equal(call('regex_replace', '2024-05-20', '(\\d+)-(\\d+)-(\\d+)', '\\3/\\2/\\1'), '20/05/2024');
    assert.equal(call('regex_replace', 'a&b', '&', '\\&\\&'), 'a&&b');
    // The same pattern twice (the compiled RegExp is cached and reused).
    assert.equal(call('regex_replace', 'x1y2', '\\d', '#'), 'x#y#');
    assert.equal(call('regex_replace', 'z3', '\\d', '#'), 'z#');
  });

  it('regex_extract gives the capture groups of the first match, or []', () => {
    assert.deepEqual(call('regex_extract', 'Number: 12345', '(\\d+)'), ['12345']);
    assert.deepEqual(call('regex_extract', 'Hello, world!', '(\\w+).*\\s(\\w+)'), ['Hello', 'world']);
    assert.deepEqual(call('regex_extract', 'No numbers here!', '(\\d+)'), []);
    assert.deepEqual(call('regex_extract', 'Date: 2021-05-20', '(\\d{4})-(\\d{2})-(\\d{2})'), ['2021', '05', '20']);
    assert.deepEqual(call('regex_extract', 'abc', 'b'), []);
    assert.deepEqual(call('regex_extract', 'ac', '(a)(b)?(c)'), ['a', '', 'c']);
  });
});

describe('string functions: sprintf', () => {
  it("formats Erlang's ~ts, ~s, ~p, ~w, ~n", () => {
    assert.equal(call('sprintf', 'Hello ~ts!', 'Shawn'), 'Hello Shawn!');
    assert.equal(call('sprintf', 'Name: ~ts, Count: ~p', 'ABC', 2), 'Name: ABC, Count: 2');
    assert.equal(call('sprintf', 'hello, ~s!', 'steve'), 'hello, steve!');
    assert.equal(call('sprintf', 'count: ~p~n', 100), 'count: 100\n');
    assert.equal(call('sprintf', '~p', 'abc'), '<<"abc">>');
    assert.equal(call('sprintf', '~tp', '你好'), '<<"你好"/utf8>>');
    assert.equal(call('sprintf', '~p', hex('0102')), '<<1,2>>');
    assert.equal(call('sprintf', '~p ~w', { b: [1, 2.5], a: true }, { a: null }), '#{<<"a">> => true,<<"b">> => [1,2.5]} #{<<"a">>=>null}');
    assert.equal(call('sprintf', '~p|~p', undefined, 0.1), 'undefined|0.1');
    assert.equal(call('sprintf', '~~ ~ts', '你好'), '~ 你好');
    assert.equal(call('sprintf_s', 'a=~p, b=~s', [1, 'x']), 'a=1, b=x');
  });

  it('takes widths, precisions and pad characters', () => {
    assert.equal(call('sprintf', '[~5s]', 'ab'), '[   ab]');
    assert.equal(call('sprintf', '[~-5s]', 'ab'), '[ab   ]');
    assert.equal(call('sprintf', '[~5..0s]', 'ab'), '[000ab]');
    assert.equal(call('sprintf', '[~.2s]', 'abcd'), '[ab]');
    assert.equal(call('sprintf', '~.2f', 3.14159), '3.14');
    assert.equal(call('sprintf', '~f', 1.5), '1.500000');
    assert.equal(call('sprintf', '~e', 3.14), '3.14000e+0');
    assert.equal(call('sprintf', '~.16b', 255), 'ff');
    assert.equal(call('sprintf', '~.16B', 255), 'FF');
    assert.equal(call('sprintf', '~.2b', 5), '101');
    assert.equal(call('sprintf', '~8.2.0b', 5), '00000101');
    assert.equal(call('sprintf', '~c~c', 104, 105), 'hi');
    assert.equal(call('sprintf', '~*s|', 4, 'x'), '   x|');
    assert.equal(call('sprintf', '~3b', 12345), '***');
    assert.equal(call('sprintf', 'a~ib', 'skipped'), 'ab');
  });

  it('wrong argument counts and types are errors', () => {
    fails(() => call('sprintf', '~s ~s', 'a'));
    fails(() => call('sprintf', '~s', 'a', 'b'));
    fails(() => call('sprintf', '~s', 1));
    fails(() => call('sprintf', '~f', 'x'));
    fails(() => call('sprintf', '~q', 1));
    fails(() => call('sprintf_s', '~s', 'not a list'));
  });
});

describe('string functions: joins, SQL values, Redis HSET args, unescape', () => {
  it('join_to_string joins with ", " by default, converting items as str does', () => {
    assert.equal(call('join_to_string', ',', ['a', 'b', 'c']), 'a,b,c');
    assert.equal(call('join_to_string', ' ', ['a', 'b', 'c']), 'a b c');
    assert.equal(call('join_to_string', ', ', ['a', 'b', 'c']), 'a, b, c');
    assert.equal(call('join_to_string', ', ', [1, 'a', 'c', { a: 1 }, [1, 2, 3], [{ value: 2, key: 1 }]]), '1, a, c, {"a":1}, [1,2,3], [{"value":2,"key":1}]');
    assert.equal(call('join_to_string', ',', ['a']), 'a');
    assert.equal(call('join_to_string', ',', []), '');
    assert.equal(call('join_to_string', call('map_keys', '{"a":"a","b":1,"c":"c"}')), 'a, b, c');
    assert.equal(call('join_to_string', call('map_values', '{"a":"a","b":1,"c":"c"}')), 'a, 1, c');
  });

  it('join_to_sql_values_string quotes text (\\ and \' escaped) and JSON, not numbers', () => {
    assert.equal(call('join_to_sql_values_string', ['a', 'b', 'c']), "'a', 'b', 'c'");
    assert.equal(call('join_to_sql_values_string', [1, 'a', 'c', { a: 1 }, [1, 2, 3], [97, 98], [{ value: 2, key: 1 }]]), `1, 'a', 'c', '{"a":1}', '[1,2,3]', '[97,98]', '[{"value":2,"key":1}]'`);
    assert.equal(call('join_to_sql_values_string', ['a']), "'a'");
    assert.equal(call('join_to_sql_values_string', []), '');
    assert.equal(call('join_to_sql_values_string', ["it's", 'a\\b', undefined, true, 1.5]), "'it\\'s', 'a\\\\b', NULL, 'true', 1.5");
    assert.equal(call('join_to_sql_values_string', call('map_values', '{"a":"a","b":1,"c":"c"}')), "'a', 1, 'c'");
  });

  it('map_to_redis_hset_args lists field names and values (floats to 6 decimals)', () => {
    assert.deepEqual(call('map_to_redis_hset_args', {}), []);
    assert.deepEqual(call('map_to_redis_hset_args', { a: 1 }), ['a', '1']);
    assert.deepEqual(call('map_to_redis_hset_args', { a: 1.1 }), ['a', '1.1']);
    assert.deepEqual(call('map_to_redis_hset_args', { a: 1.123456789 }), ['a', '1.123457']);
    assert.deepEqual(call('map_to_redis_hset_args', { a: true, b: false }), ['a', 'true', 'b', 'false']);
    assert.deepEqual(call('map_to_redis_hset_args', { a: '' }), ['a', '']);
    assert.deepEqual(call('map_to_redis_hset_args', { a: 'i j' }), ['a', 'i j']);
    assert.deepEqual(call('map_to_redis_hset_args', { a: { x: 1 }, b: [1], c: null, d: 2 }), ['d', '2']);
    assert.deepEqual(call('map_to_redis_hset_args', '{"a":1,"b":2}'), ['a', '1', 'b', '2']);
    assert.deepEqual(call('map_to_redis_hset_args', 'not json'), []);
    assert.deepEqual(call('map_to_redis_hset_args', ['not map', 'not json either']), []);
  });

  it('unescape turns C and \\x escapes into characters', () => {
    assert.equal(call('unescape', '\\n'), '\n');
    assert.equal(call('unescape', '\\t'), '\t');
    assert.equal(call('unescape', '\\r'), '\r');
    assert.equal(call('unescape', '\\b'), '\b');
    assert.equal(call('unescape', '\\f'), '\f');
    assert.equal(call('unescape', '\\v'), '\v');
    assert.equal(call('unescape', "\\'"), "'");
    assert.equal(call('unescape', '\\"'), '"');
    assert.equal(call('unescape', '\\?'), '?');
    assert.equal(call('unescape', '\\a'), '\x07');
    assert.equal(call('unescape', '\\\\'), '\\');
    assert.equal(call('unescape', 'Hello, World!'), 'Hello, World!');
    assert.equal(call('unescape', 'Hello,\\t World\\n!'), 'Hello,\t World\n!');
    assert.equal(call('unescape', 'hej\\x0Ahej'), 'hej\nhej');
    assert.equal(call('unescape', '\\x41\\x42\\x43'), 'ABC');
    assert.equal(call('unescape', '\\xFF'), '\u00ff');
    assert.equal(call('unescape', 'Hello, \\x57orld!'), 'Hello, World!');
    assert.equal(call('unescape', '\\x0041'), 'A');
    assert.equal(call('unescape', '\\x20AC'), '€');
    assert.equal(call('unescape', '\\x2764'), '❤');
    assert.equal(call('unescape', 'Hello, \\x00004E16\\x0000754C'), 'Hello, 世界');
    fails(() => call('unescape', '\\L'), 'unrecognized_escape_sequence');
    fails(() => call('unescape', '\\xG1'), 'unrecognized_escape_sequence');
    fails(() => call('unescape', '\\x11000000'), 'invalid_unicode_character');
    // As the docs' example: split a payload at real newlines.
    assert.deepEqual(call('split', '32A4\n87.2\nmy-device', call('unescape', '\\n')), ['32A4', '87.2', 'my-device']);
  });
});
