/**
 * A reader for the subset of Erlang term syntax that EMQX's acl.conf uses (what `file:consult`
 * reads): atoms, 'quoted atoms', "strings" with Erlang's escapes, integers, tuples, lists,
 * `%` comments, each term ending with a full stop. Every term keeps the line and column it
 * started at, so the rule compiler can say where a wrong term is.
 */

export type Term =
  | { kind: 'atom'; value: string; line: number; col: number }
  | { kind: 'string'; value: string; line: number; col: number }
  | { kind: 'int'; value: number; line: number; col: number }
  | { kind: 'tuple'; items: Term[]; line: number; col: number }
  | { kind: 'list'; items: Term[]; line: number; col: number };

/** A syntax error at a line and column: `expected` says what the reader wanted there. */
export class TermSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly col: number,
    readonly expected: string,
  ) {
    super(`line ${line}, column ${col}: ${expected}`);
  }
}

type Token =
  | { t: 'punct'; v: '{' | '}' | '[' | ']' | ',' | '.'; line: number; col: number }
  | { t: 'atom' | 'string'; v: string; line: number; col: number }
  | { t: 'int'; v: number; line: number; col: number }
  | { t: 'eof'; line: number; col: number };

const SIMPLE_ESCAPES: Record<string, string> = { b: '\b', d: '\x7f', e: '\x1b', f: '\f', n: '\n', r: '\r', s: ' ', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };

/** Splits the text into tokens; adjacent strings are joined, as Erlang does ("a" "b" is "ab"). */
function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const col = (): number => i - lineStart + 1;
  const fail = (expected: string): never => {
    throw new TermSyntaxError(line, col(), expected);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '%') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    const at = { line, col: col() };
    if ('{}[],'.includes(c)) {
      out.push({ t: 'punct', v: c as '{', ...at });
      i++;
      continue;
    }
    if (c === '.') {
      // A full stop ends a term only when whitespace, a comment or the end follows (Erlang's rule).
      const next = text[i + 1];
      if (next !== undefined && !/[\s%]/.test(next)) fail('whitespace or a new line after "." (a full stop ends each rule)');
      out.push({ t: 'punct', v: '.', ...at });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      i++;
      let value = '';
      for (;;) {
        if (i >= text.length) {
          i = lineStart + at.col - 1;
          line = at.line;
          fail(c === '"' ? 'a closing " for the string that starts here' : "a closing ' for the atom that starts here");
        }
        const d = text[i]!;
        if (d === c) {
          i++;
          break;
        }
        if (d === '\n') {
          line++;
          lineStart = i + 1;
        }
        if (d !== '\\') {
          value += d;
          i++;
          continue;
        }
        i++;
        const [ch, used] = escape(text, i) ?? fail('a valid escape after "\\"');
        value += ch;
        i += used;
      }
      const prev = out[out.length - 1];
      if (c === '"' && prev?.t === 'string') prev.v += value;
      else out.push({ t: c === '"' ? 'string' : 'atom', v: value, ...at });
      continue;
    }
    if (/[0-9-]/.test(c)) {
      const m = /^-?[0-9]+/.exec(text.slice(i, i + 32));
      if (!m) fail('a number');
      out.push({ t: 'int', v: Number(m![0]), ...at });
      i += m![0].length;
      continue;
    }
    if (/[a-z]/.test(c)) {
      const m = /^[a-z][A-Za-z0-9_@]*/.exec(text.slice(i, i + 256))!;
      out.push({ t: 'atom', v: m[0], ...at });
      i += m[0].length;
      continue;
    }
    if (/[A-Z_]/.test(c)) fail(`a term, not a variable ("${/^[A-Za-z0-9_]+/.exec(text.slice(i))![0]}"); quote text as "..."`);
    fail(`a term, not "${c}"`);
  }
  out.push({ t: 'eof', line, col: col() });
  return out;
}

/** One escape sequence at text[i] (after the backslash): the character and how many characters it used. */
function escape(text: string, i: number): [string, number] | undefined {
  const e = text[i];
  if (e === undefined) return undefined;
  if (e in SIMPLE_ESCAPES) return [SIMPLE_ESCAPES[e]!, 1];
  const octal = /^[0-7]{1,3}/.exec(text.slice(i, i + 3));
  if (octal) return [String.fromCodePoint(parseInt(octal[0], 8)), octal[0].length];
  if (e === 'x') {
    const braced = /^x\{([0-9A-Fa-f]+)\}/.exec(text.slice(i, i + 12));
    if (braced) {
      const cp = parseInt(braced[1]!, 16);
      return cp <= 0x10ffff ? [String.fromCodePoint(cp), braced[0].length] : undefined;
    }
    const two = /^x([0-9A-Fa-f]{2})/.exec(text.slice(i, i + 3));
    return two ? [String.fromCodePoint(parseInt(two[1]!, 16)), 3] : undefined;
  }
  if (e === '^') {
    const ctl = text[i + 1];
    return ctl && /[A-Za-z@[\\\]^_?]/.test(ctl) ? [String.fromCharCode(ctl === '?' ? 127 : ctl.toUpperCase().charCodeAt(0) & 31), 2] : undefined;
  }
  // Erlang keeps an unknown escaped character as itself.
  return /[\n]/.test(e) ? undefined : [e, 1];
}

/** Reads every term of the text, each ended by a full stop. Throws TermSyntaxError. */
export function readTerms(text: string): Term[] {
  const tokens = tokenize(text);
  let p = 0;
  const peek = (): Token => tokens[p]!;
  const fail = (tok: Token, expected: string): never => {
    throw new TermSyntaxError(tok.line, tok.col, `expected ${expected}, found ${describe(tok)}`);
  };

  function term(): Term {
    const tok = tokens[p++]!;
    const at = { line: tok.line, col: tok.col };
    switch (tok.t) {
      case 'atom':
        return { kind: 'atom', value: tok.v, ...at };
      case 'string':
        return { kind: 'string', value: tok.v, ...at };
      case 'int':
        return { kind: 'int', value: tok.v, ...at };
      case 'punct':
        if (tok.v === '{') return { kind: 'tuple', items: sequence('}'), ...at };
        if (tok.v === '[') return { kind: 'list', items: sequence(']'), ...at };
    }
    return fail(tok, 'a term');
  }

  /** Comma-separated terms up to `close`. */
  function sequence(close: '}' | ']'): Term[] {
    const items: Term[] = [];
    if (isPunct(peek(), close)) {
      p++;
      return items;
    }
    for (;;) {
      items.push(term());
      const tok = tokens[p++]!;
      if (isPunct(tok, ',')) continue;
      if (isPunct(tok, close)) return items;
      fail(tok, `"," or "${close}"`);
    }
  }

  const terms: Term[] = [];
  while (peek().t !== 'eof') {
    terms.push(term());
    const tok = tokens[p++]!;
    if (!isPunct(tok, '.')) fail(tok, '"." after the rule');
  }
  return terms;
}

function isPunct(tok: Token, v: string): boolean {
  return tok.t === 'punct' && tok.v === v;
}

function describe(tok: Token): string {
  if (tok.t === 'eof') return 'the end of the file';
  if (tok.t === 'punct') return `"${tok.v}"`;
  if (tok.t === 'string') return `the string "${tok.v}"`;
  return `${tok.t === 'atom' ? 'the atom' : 'the number'} ${tok.v}`;
}
