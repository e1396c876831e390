import { ValidationError } from '@tributary/common';

/** Token kinds of rule SQL. `qname` is a "double-quoted" identifier, `str` a 'single-quoted' string. */
export type TokenType = 'name' | 'qname' | 'str' | 'int' | 'float' | 'kw' | 'op' | 'eof';

/** One token: `value` is the keyword (upper case), the operator, the unquoted text or the number. */
export interface Token {
  readonly type: TokenType;
  readonly value: string | number;
  /** 1-based line and column of the token's first character. */
  readonly line: number;
  readonly col: number;
  /** Offsets into the SQL text: the token is `sql.slice(start, end)`. */
  readonly start: number;
  readonly end: number;
}

/** The words that are keywords (case-insensitive); any other word is a name. */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'SELECT', 'FOREACH', 'DO', 'INCASE', 'FROM', 'WHERE', 'AS', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END',
  'AND', 'OR', 'NOT', 'IN', 'DIV', 'MOD', 'TRUE', 'FALSE',
]);

/** A parse error in EMQX's words: what went wrong, and where. */
export function parseError(what: string, line: number, col: number): ValidationError {
  return new ValidationError('SQL_PARSE_ERROR', `${what} at line ${line}, column ${col}`);
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isNameStart = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
/** Names may also hold digits, `$` and `@` after the first character (as in EMQX). */
const isNameChar = (c: number): boolean => isNameStart(c) || isDigit(c) || c === 0x24 || c === 0x40;
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c || c === 0x0b;

/**
 * The text of a quoted string starting at `at` (its quote character), a doubled quote standing
 * for one, and the offset after the closing quote; undefined when it is not closed.
 */
export function readQuoted(s: string, at: number): { text: string; end: number } | undefined {
  const q = s.charCodeAt(at);
  let text = '';
  let from = at + 1;
  for (let i = from; i < s.length; i++) {
    if (s.charCodeAt(i) !== q) continue;
    if (s.charCodeAt(i + 1) === q) {
      text += s.slice(from, i + 1);
      from = ++i + 1;
      continue;
    }
    return { text: text + s.slice(from, i), end: i + 1 };
  }
  return undefined;
}

const TWO_CHAR_OPS: ReadonlySet<string> = new Set(['!=', '<>', '<=', '>=', '=~', '..']);
const ONE_CHAR_OPS = '()[],.*+-/=<>';

/**
 * Splits rule SQL into tokens. `--` starts a comment to the end of the line; 'strings' take `''`
 * for a quote and keep backslashes as they are (EMQX has the `unescape` function for those);
 * "names" take `""` for a quote.
 */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = sql.length;
  const push = (type: TokenType, value: string | number, start: number, startLine: number, startCol: number): void => {
    tokens.push({ type, value, line: startLine, col: startCol, start, end: i });
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      if (c === 0x0a) {
        line++;
        lineStart = i + 1;
      }
      i++;
      continue;
    }
    const start = i;
    const col = i - lineStart + 1;
    if (c === 0x2d /* - */ && sql.charCodeAt(i + 1) === 0x2d) {
      while (i < n && sql.charCodeAt(i) !== 0x0a) i++;
      continue;
    }
    if (isNameStart(c)) {
      while (i < n && isNameChar(sql.charCodeAt(i))) i++;
      const word = sql.slice(start, i);
      const upper = word.toUpperCase();
      if (KEYWORDS.has(upper)) push('kw', upper, start, line, col);
      else push('name', word, start, line, col);
      continue;
    }
    if (isDigit(c)) {
      let float = false;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      if (sql.charCodeAt(i) === 0x2e && isDigit(sql.charCodeAt(i + 1))) {
        float = true;
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
      }
      const e = sql.charCodeAt(i);
      if (e === 0x65 || e === 0x45) {
        let j = i + 1;
        const s = sql.charCodeAt(j);
        if (s === 0x2b || s === 0x2d) j++;
        if (isDigit(sql.charCodeAt(j))) {
          float = true;
          i = j;
          while (i < n && isDigit(sql.charCodeAt(i))) i++;
        }
      }
      if (i < n && isNameChar(sql.charCodeAt(i))) throw parseError(`bad number '${sql.slice(start, i + 1)}'`, line, col);
      push(float ? 'float' : 'int', Number(sql.slice(start, i)), start, line, col);
      continue;
    }
    if (c === 0x27 /* ' */ || c === 0x22 /* " */) {
      const quoted = readQuoted(sql, i);
      if (!quoted) throw parseError(c === 0x27 ? 'unterminated string' : 'unterminated quoted name', line, col);
      if (c === 0x22 && quoted.text === '') throw parseError('empty quoted name', line, col);
      const startLine = line;
      for (let j = sql.indexOf('\n', i); j >= 0 && j < quoted.end; j = sql.indexOf('\n', j + 1)) {
        line++;
        lineStart = j + 1;
      }
      i = quoted.end;
      push(c === 0x27 ? 'str' : 'qname', quoted.text, start, startLine, col);
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (TWO_CHAR_OPS.has(two)) {
      i += 2;
      push('op', two, start, line, col);
      continue;
    }
    if (ONE_CHAR_OPS.includes(sql[i] as string)) {
      i++;
      push('op', sql[start] as string, start, line, col);
      continue;
    }
    throw parseError(`unexpected character '${String.fromCodePoint(sql.codePointAt(i) ?? c)}'`, line, col);
  }
  tokens.push({ type: 'eof', value: '', line, col: i - lineStart + 1, start: i, end: i });
  return tokens;
}
