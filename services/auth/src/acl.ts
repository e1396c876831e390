import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { AuthorizeRequest, ClientInfo } from '@tributary/hooks';
import { topicMatches } from '@tributary/mqtt';

/**
 * Authorization rules, EMQX's model: a permission, who it applies to, an action, optional QoS and
 * retain conditions, and topics. acl.conf files, the built-in database, PostgreSQL and HTTP
 * sources, and a JWT's `acl` claim all become these, and one matcher decides them all.
 */

export type Permission = 'allow' | 'deny';
export type AclAction = 'publish' | 'subscribe' | 'all';

/** A topic of a rule: a filter (placeholders expanded, wildcards apply) or `{eq, "..."}`, compared literally. */
export type TopicPattern = { filter: string } | { eq: string };

export type Who =
  | 'all'
  | { username: string | RegExp }
  | { clientid: string | RegExp }
  | { ipaddr: string }
  | { and: readonly Who[] }
  | { or: readonly Who[] };

export interface AclRule {
  permission: Permission;
  who: Who;
  action: AclAction;
  /** Publish and subscribe: the QoS levels the rule applies to (all when undefined). */
  qos?: readonly number[];
  /** Publish: the rule applies only to retained (true) or only to non-retained (false) messages; both when undefined. */
  retain?: boolean;
  /** Undefined: every topic (`{allow, all}.`). */
  topics?: readonly TopicPattern[];
}

const PLACEHOLDER = /\$\{(username|clientid|peerhost|client_attrs\.[A-Za-z0-9_-]{1,64})\}/g;
const ATTR_PREFIX = 'client_attrs.'.length;

/**
 * A filter with `${username}`, `${clientid}`, `${peerhost}` and `${client_attrs.NAME}` (the
 * client's attribute NAME) replaced, or undefined when a value is missing or would add a wildcard
 * or a level: a username "#" must not turn `t/${username}` into `t/#`.
 */
export function expandPlaceholders(filter: string, client: ClientInfo): string | undefined {
  if (!filter.includes('${')) return filter;
  let ok = true;
  const out = filter.replace(PLACEHOLDER, (_m, name: string) => {
    const v = name === 'username' ? client.username : name === 'clientid' ? client.clientId : name === 'peerhost' ? client.peerhost : attribute(client, name.slice(ATTR_PREFIX));
    if (v === undefined || v === '' || /[+#/]/.test(v)) ok = false;
    return v ?? '';
  });
  return ok ? out : undefined;
}

function attribute(client: ClientInfo, name: string): string | undefined {
  const attrs = client.clientAttrs;
  return attrs !== undefined && Object.prototype.hasOwnProperty.call(attrs, name) ? attrs[name] : undefined;
}

/**
 * Does every topic `requested` can match also match `granted`? A publish topic has no wildcards,
 * so this is topicMatches; for a SUBSCRIBE, `+` in the request is covered only by `+` or `#` in
 * the rule, and `#` only by `#` (EMQX compares filters level by level the same way).
 */
export function filterCovers(granted: string, requested: string): boolean {
  if (!requested.includes('+') && !requested.includes('#')) return topicMatches(granted, requested);
  const g = granted.split('/');
  const r = requested.split('/');
  if ((r[0] === '+' || r[0] === '#') && granted.startsWith('$')) return false;
  for (let i = 0; i < g.length; i++) {
    const level = g[i];
    if (level === '#') return true;
    const want = r[i];
    if (want === undefined || want === '#') return false;
    if (level === '+') continue;
    if (want === '+' || level !== want) return false;
  }
  return g.length === r.length;
}

const blockLists = new Map<string, BlockList | null>();

/** Is `ip` in `cidr` ("10.0.0.0/8", "::1/128", or a single address)? */
export function inCidr(ip: string, cidr: string): boolean {
  let list = blockLists.get(cidr);
  if (list === undefined) {
    list = parseCidr(cidr);
    blockLists.set(cidr, list);
  }
  if (!list) return false;
  const addr = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  const type = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
  return type !== undefined && list.check(addr, type);
}

/** A BlockList for a CIDR, or null when it is not one. */
export function parseCidr(cidr: string): BlockList | null {
  const [net, bits] = cidr.split('/');
  const type = net && isIPv4(net) ? 'ipv4' : net && isIPv6(net) ? 'ipv6' : undefined;
  if (!type || !net) return null;
  const max = type === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  const list = new BlockList();
  list.addSubnet(net, prefix, type);
  return list;
}

export function whoMatches(who: Who, client: ClientInfo): boolean {
  if (who === 'all') return true;
  if ('username' in who) return client.username !== undefined && textMatches(who.username, client.username);
  if ('clientid' in who) return textMatches(who.clientid, client.clientId);
  if ('ipaddr' in who) return inCidr(client.peerhost, who.ipaddr);
  if ('and' in who) return who.and.every((w) => whoMatches(w, client));
  return who.or.some((w) => whoMatches(w, client));
}

function textMatches(want: string | RegExp, value: string): boolean {
  return typeof want === 'string' ? want === value : want.test(value);
}

/** Does `rule` apply to this client doing this? */
export function ruleMatches(rule: AclRule, client: ClientInfo, req: AuthorizeRequest): boolean {
  if (rule.action !== 'all' && rule.action !== req.action) return false;
  if (rule.qos && !rule.qos.includes(req.qos)) return false;
  if (rule.retain !== undefined && req.action === 'publish' && rule.retain !== req.retain) return false;
  if (!whoMatches(rule.who, client)) return false;
  if (!rule.topics) return true;
  for (const t of rule.topics) {
    if ('eq' in t) {
      if (t.eq === req.topic) return true;
      continue;
    }
    const filter = expandPlaceholders(t.filter, client);
    if (filter !== undefined && filterCovers(filter, req.topic)) return true;
  }
  return false;
}

/** The first rule that applies decides; none: nomatch. */
export function decide(rules: readonly AclRule[], client: ClientInfo, req: AuthorizeRequest): Permission | 'nomatch' {
  for (const rule of rules) if (ruleMatches(rule, client, req)) return rule.permission;
  return 'nomatch';
}

/**
 * Rules from a JWT `acl` claim or an HTTP authenticator's `acl` field, in EMQX 5's forms:
 * a list of `{permission, action, topic | topics, qos?, retain?}`, or the older
 * `{pub: [...], sub: [...], all: [...]}` (allow rules; anything not listed falls through).
 * Throws a TypeError naming what is wrong.
 */
export function rulesFromClaim(raw: unknown): AclRule[] {
  if (Array.isArray(raw)) return raw.map((r, i) => ruleFromObject(r, `acl[${i}]`));
  if (raw && typeof raw === 'object') {
    const legacy = raw as Record<string, unknown>;
    const rules: AclRule[] = [];
    const actions: Record<string, AclAction> = { pub: 'publish', sub: 'subscribe', all: 'all' };
    for (const [key, topics] of Object.entries(legacy)) {
      const action = actions[key];
      if (!action) throw new TypeError(`acl: unknown key "${key}" (expected pub, sub, all)`);
      rules.push({ permission: 'allow', who: 'all', action, topics: topicList(topics, `acl.${key}`) });
    }
    return rules;
  }
  throw new TypeError('acl: expected a list of rules or {pub, sub, all}');
}

function ruleFromObject(raw: unknown, at: string): AclRule {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new TypeError(`${at}: expected an object`);
  const r = raw as Record<string, unknown>;
  const permission = r.permission;
  if (permission !== 'allow' && permission !== 'deny') throw new TypeError(`${at}.permission: expected allow or deny`);
  const action = r.action ?? 'all';
  if (action !== 'publish' && action !== 'subscribe' && action !== 'all') throw new TypeError(`${at}.action: expected publish, subscribe or all`);
  const topics = r.topics !== undefined ? topicList(r.topics, `${at}.topics`) : r.topic !== undefined ? topicList([r.topic], `${at}.topic`) : undefined;
  if (!topics) throw new TypeError(`${at}: topic or topics is required`);
  const rule: AclRule = { permission, who: 'all', action, topics };
  if (r.qos !== undefined) {
    const qos = Array.isArray(r.qos) ? r.qos : [r.qos];
    if (!qos.every((q) => q === 0 || q === 1 || q === 2)) throw new TypeError(`${at}.qos: expected 0, 1, 2 or a list of them`);
    rule.qos = qos as number[];
  }
  if (r.retain !== undefined && r.retain !== 'all') {
    if (typeof r.retain !== 'boolean') throw new TypeError(`${at}.retain: expected true, false or "all"`);
    rule.retain = r.retain;
  }
  return rule;
}

/** Topics as strings; "eq t/#" is the literal form (EMQX's claim syntax). */
function topicList(raw: unknown, at: string): TopicPattern[] {
  if (!Array.isArray(raw)) throw new TypeError(`${at}: expected a list of topics`);
  return raw.map((t, i) => {
    if (typeof t !== 'string' || t.length === 0) throw new TypeError(`${at}[${i}]: expected a topic`);
    return t.startsWith('eq ') ? { eq: t.slice(3) } : { filter: t };
  });
}
