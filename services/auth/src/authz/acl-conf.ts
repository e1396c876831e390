import { checkTopicFilter } from '@tributary/mqtt';
import { AclAction, AclRule, parseCidr, Permission, TopicPattern, Who } from '../acl';
import { readTerms, Term, TermSyntaxError } from './erlang-terms';

/**
 * EMQX's acl.conf (docs: "Use ACL File"), compiled into AclRule[]:
 *
 *   {allow | deny, Who, Action, Topics}.   {allow | deny, all}.
 *
 * Who: `all`, `{username | user, "x" | {re, "regex"}}`, `{clientid | client, "x" | {re, ...}}`,
 * `{ipaddr, "cidr"}`, `{ipaddrs, ["cidr", ...]}`, `{'and' | 'or', [Who, ...]}`.
 * Action: `publish | subscribe | all`, or `{publish | subscribe | all, Conditions}` where
 * Conditions is one of, or a list of, `{qos, 0..2 | [0..2, ...]}` and `{retain, true | false | all}`.
 * Topics: a list of filters (`"t/#"`, with `${username}` / `${clientid}` placeholders) and
 * `{eq, "t/#"}` literals. EMQX 5 has no three-element rule, so one is an error.
 */

/** A wrong acl.conf: line and column (1-based) and what was expected there. */
export class AclSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly col: number,
    readonly expected: string,
  ) {
    super(`line ${line}, column ${col}: ${expected}`);
  }
}

/** Compiles acl.conf text into rules, in file order. Throws AclSyntaxError. */
export function parseAclConf(text: string): AclRule[] {
  let terms: Term[];
  try {
    terms = readTerms(text);
  } catch (err) {
    if (err instanceof TermSyntaxError) throw new AclSyntaxError(err.line, err.col, err.expected);
    throw err;
  }
  return terms.map(rule);
}

const fail = (t: Term, expected: string): never => {
  throw new AclSyntaxError(t.line, t.col, `expected ${expected}, found ${show(t)}`);
};

function show(t: Term): string {
  switch (t.kind) {
    case 'atom':
      return t.value;
    case 'string':
      return JSON.stringify(t.value);
    case 'int':
      return String(t.value);
    case 'tuple':
      return `a tuple of ${t.items.length}`;
    case 'list':
      return `a list of ${t.items.length}`;
  }
}

function atom(t: Term | undefined): string | undefined {
  return t?.kind === 'atom' ? t.value : undefined;
}

function rule(t: Term): AclRule {
  if (t.kind !== 'tuple') return fail(t, 'a rule {allow|deny, Who, Action, Topics} or {allow|deny, all}');
  const [perm, who, action, topics] = t.items;
  const permission = atom(perm);
  if (permission !== 'allow' && permission !== 'deny') return fail(perm ?? t, 'allow or deny');
  if (t.items.length === 2) {
    if (atom(who) !== 'all') return fail(who!, 'all (the two-element rule is {allow, all} or {deny, all})');
    return { permission: permission as Permission, who: 'all', action: 'all' };
  }
  if (t.items.length !== 4) return fail(t, 'a rule of 4 elements {allow|deny, Who, Action, Topics} or {allow|deny, all}');
  return { permission: permission as Permission, who: whoOf(who!), ...actionOf(action!), topics: topicsOf(topics!) };
}

function whoOf(t: Term): Who {
  if (atom(t) === 'all') return 'all';
  if (t.kind !== 'tuple' || t.items.length !== 2 || t.items[0]!.kind !== 'atom') return fail(t, 'all, {username, ...}, {clientid, ...}, {ipaddr, ...}, {ipaddrs, [...]}, {\'and\', [...]} or {\'or\', [...]}');
  const key = atom(t.items[0])!;
  const value = t.items[1]!;
  switch (key) {
    case 'user':
    case 'username':
      return { username: textOrRegex(value) };
    case 'client':
    case 'clientid':
      return { clientid: textOrRegex(value) };
    case 'ipaddr':
      return { ipaddr: cidr(value) };
    case 'ipaddrs': {
      if (value.kind !== 'list' || value.items.length === 0) return fail(value, 'a list of addresses or CIDRs');
      return { or: value.items.map((v) => ({ ipaddr: cidr(v) })) };
    }
    case 'and':
    case 'or': {
      if (value.kind !== 'list' || value.items.length === 0) return fail(value, `a list of Who terms for '${key}'`);
      const list = value.items.map(whoOf);
      return key === 'and' ? { and: list } : { or: list };
    }
  }
  return fail(t.items[0]!, "username, user, clientid, client, ipaddr, ipaddrs, 'and' or 'or'");
}

function textOrRegex(t: Term): string | RegExp {
  if (t.kind === 'string') return t.value;
  const re = t.kind === 'tuple' && t.items.length === 2 && atom(t.items[0]) === 're' ? t.items[1] : undefined;
  if (re?.kind === 'string') {
    try {
      return new RegExp(re.value);
    } catch (err) {
      return fail(re, `a regular expression (${(err as Error).message})`);
    }
  }
  return fail(t, 'a string or {re, "regex"}');
}

function cidr(t: Term): string {
  if (t.kind !== 'string' || !parseCidr(t.value)) return fail(t, 'an IP address or CIDR as a string ("10.0.0.0/8")');
  return t.value;
}

function actionOf(t: Term): { action: AclAction; qos?: number[]; retain?: boolean } {
  const simple = (a: string | undefined): AclAction | undefined => (a === 'publish' || a === 'subscribe' || a === 'all' ? a : undefined);
  const plain = simple(atom(t));
  if (plain) return { action: plain };
  const action = t.kind === 'tuple' && t.items.length === 2 ? simple(atom(t.items[0])) : undefined;
  if (!action || t.kind !== 'tuple') return fail(t, 'publish, subscribe, all or {publish|subscribe|all, [{qos, ...}, {retain, ...}]}');
  const conds = t.items[1]!;
  const out: { action: AclAction; qos?: number[]; retain?: boolean } = { action };
  for (const c of conds.kind === 'list' ? conds.items : [conds]) {
    const name = c.kind === 'tuple' && c.items.length === 2 ? atom(c.items[0]) : undefined;
    const v = c.kind === 'tuple' ? c.items[1] : undefined;
    if (name === 'qos' && v) out.qos = qosOf(v);
    else if (name === 'retain' && v) {
      const r = atom(v);
      if (r !== 'true' && r !== 'false' && r !== 'all') return fail(v, 'true, false or all');
      if (r !== 'all') out.retain = r === 'true';
    } else return fail(c, '{qos, ...} or {retain, ...}');
  }
  if (out.retain !== undefined && action === 'subscribe') return fail(conds, '{qos, ...} only: retain applies to publish');
  return out;
}

function qosOf(t: Term): number[] {
  const items = t.kind === 'list' ? t.items : [t];
  if (items.length === 0) return fail(t, 'a QoS 0, 1 or 2, or a list of them');
  return items.map((q) => (q.kind === 'int' && q.value >= 0 && q.value <= 2 ? q.value : fail(q, 'a QoS 0, 1 or 2')));
}

function topicsOf(t: Term): TopicPattern[] {
  if (t.kind !== 'list') return fail(t, 'a list of topics ["t/#", {eq, "t/#"}]');
  return t.items.map((item) => {
    if (item.kind === 'string') return { filter: topicFilter(item) };
    const eq = item.kind === 'tuple' && item.items.length === 2 && atom(item.items[0]) === 'eq' ? item.items[1] : undefined;
    if (eq?.kind === 'string') return { eq: topicFilter(eq) };
    return fail(item, 'a topic "t/#" or {eq, "t/#"}');
  });
}

function topicFilter(t: Term & { kind: 'string' }): string {
  const problem = checkTopicFilter(t.value);
  return problem ? fail(t, `a valid topic filter (${problem})`) : t.value;
}
