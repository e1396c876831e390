import { RuleEvalError } from '../value';
import { BoundedCache } from './args';

/**
 * PCRE patterns (what EMQX's re module takes) as JavaScript RegExps. What the two share passes as
 * it is; these PCRE forms are rewritten: leading option groups `(?i)` `(?m)` `(?s)`, `\A`, `\z`,
 * `\Z`, `$` (PCRE's `$` also matches before a final newline), `\h`, `\e`, `\Q...\E`, and Python
 * style named groups `(?P<n>...)`/`(?P=n)`. Others JavaScript lacks (possessive quantifiers,
 * atomic groups, inline options mid-pattern) fail to compile and are reported as errors.
 */
export function compileRegex(name: string, pattern: string, global: boolean): RegExp {
  return (global ? globalCache : firstCache).get(pattern, (p) => {
    try {
      const { source, flags } = translate(p);
      return new RegExp(source, flags + (global ? 'g' : ''));
    } catch (e) {
      throw new RuleEvalError('bad_sql_function_argument', `${name}: invalid regular expression ${JSON.stringify(p)}: ${(e as Error).message}`);
    }
  });
}

const globalCache = new BoundedCache<string, RegExp>(256);
const firstCache = new BoundedCache<string, RegExp>(256);

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

function translate(pattern: string): { source: string; flags: string } {
  let flags = '';
  let i = 0;
  // Leading option settings such as (?i) or (?im).
  for (;;) {
    const m = /^\(\?([imsx]+)\)/.exec(pattern.slice(i));
    if (!m) break;
    for (const f of m[1] as string) if (f !== 'x' && !flags.includes(f)) flags += f;
    if ((m[1] as string).includes('x')) throw new Error('the x (extended) option is not supported');
    i += m[0].length;
  }
  const multiline = flags.includes('m');
  let out = '';
  let inClass = false;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) throw new Error('pattern ends with a backslash');
      if (n === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        const lit = pattern.slice(i + 2, end < 0 ? pattern.length : end);
        out += escapeLiteral(lit);
        i = end < 0 ? pattern.length : end + 2;
        continue;
      }
      if (!inClass && n === 'A') out += '(?<![\\s\\S])';
      else if (!inClass && n === 'z') out += '(?![\\s\\S])';
      else if (!inClass && n === 'Z') out += '(?=\\n?(?![\\s\\S]))';
      else if (n === 'h') out += inClass ? ' \\t' : '[ \\t]';
      else if (n === 'e') out += '\\x1b';
      else out += c + n;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      i++;
      // A ] right after [ or [^ is a literal in both dialects.
      if (pattern[i] === '^') out += pattern[i++];
      if (pattern[i] === ']') out += `\\${pattern[i++]}`;
      continue;
    }
    if (c === '$' && !multiline) {
      out += '(?=\\n?(?![\\s\\S]))';
      i++;
      continue;
    }
    if (c === '(' && pattern.startsWith('(?P<', i)) {
      out += '(?<';
      i += 4;
      continue;
    }
    if (c === '(' && pattern.startsWith('(?P=', i)) {
      const end = pattern.indexOf(')', i);
      if (end < 0) throw new Error('unterminated (?P=');
      out += `\\k<${pattern.slice(i + 4, end)}>`;
      i = end + 1;
      continue;
    }
    out += c;
    i++;
  }
  return { source: out, flags };
}

type ReplacementPart = string | number;

const replacements = new BoundedCache<string, ReplacementPart[]>(256);

/**
 * re:replace's replacement text: `&` is the whole match, `\N` and `\g{N}` group N, `\&` and `\\`
 * a literal & and backslash.
 */
function parseReplacement(rep: string): ReplacementPart[] {
  const parts: ReplacementPart[] = [];
  let lit = '';
  for (let i = 0; i < rep.length; i++) {
    const c = rep[i] as string;
    if (c === '&') {
      parts.push(lit, 0);
      lit = '';
    } else if (c === '\\' && i + 1 < rep.length) {
      const rest = rep.slice(i + 1);
      const digits = /^[0-9]+/.exec(rest) ?? /^g\{([0-9]+)\}/.exec(rest) ?? /^g([0-9]+)/.exec(rest);
      if (digits) {
        parts.push(lit, Number(digits[1] ?? digits[0]));
        lit = '';
        i += digits[0].length;
      } else {
        lit += rep[i + 1];
        i++;
      }
    } else {
      lit += c;
    }
  }
  parts.push(lit);
  return parts;
}

const groupCounts = new WeakMap<RegExp, number>();

/** How many capture groups `re` has. */
function groupCount(re: RegExp): number {
  let n = groupCounts.get(re);
  if (n === undefined) {
    n = (new RegExp(`${re.source}|`).exec('') as RegExpExecArray).length - 1;
    groupCounts.set(re, n);
  }
  return n;
}

/** Every match of `re` (a global RegExp) in `s` replaced by the Erlang replacement text `rep`. */
export function regexReplace(s: string, re: RegExp, rep: string): string {
  const parts = replacements.get(rep, parseReplacement);
  if (parts.length === 1) return s.replace(re, () => parts[0] as string);
  const groups = groupCount(re);
  return s.replace(re, (...m: unknown[]) => {
    let out = '';
    for (const p of parts) {
      if (typeof p === 'string') out += p;
      else if (p <= groups && typeof m[p] === 'string') out += m[p] as string;
    }
    return out;
  });
}
