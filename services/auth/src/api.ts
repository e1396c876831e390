import { ApiRoute, page, paging } from '@tributary/api';
import { ConflictError, NotFoundError, ValidationError } from '@tributary/common';
import { BuiltinAuthzSource, RuleOwner, RuleStore, StoredRule } from './authz/builtin';
import type { Ban, BanStore } from './banned';
import type { Authenticator, AuthzSource } from './types';
import type { UserStore } from './users';

/**
 * The authentication routes of the HTTP API, EMQX's paths and shapes:
 * `GET /authentication` (the chain) and `/authentication/:id/users` for authenticators that keep
 * their own users (`password_based:built_in_database`, `scram:built_in_database`).
 */
export function authenticationRoutes(chain: readonly Authenticator[]): ApiRoute[] {
  const users = (id: string): UserStore => {
    const a = chain.find((x) => x.id === id);
    if (!a) throw new NotFoundError('NOT_FOUND', `authenticator ${id} is not in the authentication chain`);
    if (!a.users) throw new NotFoundError('NOT_FOUND', `authenticator ${id} keeps no users of its own`);
    return a.users;
  };
  return [
    { method: 'GET', path: '/authentication', summary: 'The authentication chain, in order', handler: () => ({ body: chain.map((a) => ({ id: a.id, enable: true })) }) },
    {
      method: 'GET',
      path: '/authentication/:id/users',
      summary: "An authenticator's users, paged (never their passwords)",
      handler: (req) => ({ body: page(users(req.params.id!).list(), paging(req.query)) }),
    },
    {
      method: 'POST',
      path: '/authentication/:id/users',
      summary: 'Adds a user: {user_id, password, is_superuser}',
      handler: async (req) => {
        const b = userBody(req.body, true);
        return { status: 201, body: await users(req.params.id!).add(b.user_id!, b.password!, b.is_superuser ?? false) };
      },
    },
    {
      method: 'GET',
      path: '/authentication/:id/users/:user_id',
      summary: 'One user',
      handler: (req) => ({ body: users(req.params.id!).get(req.params.user_id!) }),
    },
    {
      method: 'PUT',
      path: '/authentication/:id/users/:user_id',
      summary: "Changes a user's password or superuser flag: {password?, is_superuser?}",
      handler: async (req) => {
        const b = userBody(req.body, false);
        return { body: await users(req.params.id!).update(req.params.user_id!, { password: b.password, is_superuser: b.is_superuser }) };
      },
    },
    {
      method: 'DELETE',
      path: '/authentication/:id/users/:user_id',
      summary: 'Deletes a user',
      handler: async (req) => {
        await users(req.params.id!).delete(req.params.user_id!);
        return {};
      },
    },
  ];
}

interface UserBody {
  user_id?: string;
  password?: string;
  is_superuser?: boolean;
}

function userBody(raw: unknown, create: boolean): UserBody {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ValidationError('INVALID_ARGUMENT', 'expected a JSON object');
  const b = raw as Record<string, unknown>;
  if (create && (typeof b.user_id !== 'string' || b.user_id.length === 0)) throw new ValidationError('INVALID_ARGUMENT', 'user_id: a non-empty string is required');
  if ((create || b.password !== undefined) && (typeof b.password !== 'string' || b.password.length === 0)) throw new ValidationError('INVALID_ARGUMENT', 'password: a non-empty string is required');
  if (b.is_superuser !== undefined && typeof b.is_superuser !== 'boolean') throw new ValidationError('INVALID_ARGUMENT', 'is_superuser: expected true or false');
  return b as UserBody;
}

const RULES = '/authorization/sources/built_in_database/rules';

/**
 * The built-in authorization rules, EMQX's paths: `/rules/users` and `/rules/clients` (lists of
 * {username|clientid, rules}, paged), one owner at `/rules/users/:username`, and `/rules/all`.
 */
export function builtinRulesRoutes(sources: readonly AuthzSource[]): ApiRoute[] {
  const store = (): RuleStore => {
    const s = sources.find((x): x is BuiltinAuthzSource => x instanceof BuiltinAuthzSource);
    if (!s) throw new NotFoundError('NOT_FOUND', 'the built_in_database authorization source is not configured');
    return s.rules;
  };
  const routes: ApiRoute[] = [];
  for (const [kind, field] of [
    ['users', 'username'],
    ['clients', 'clientid'],
  ] as const) {
    const owner = (id: string): RuleOwner => (field === 'username' ? { username: id } : { clientid: id });
    routes.push(
      {
        method: 'GET',
        path: `${RULES}/${kind}`,
        summary: `Rules of every ${field}, paged`,
        handler: (req) => {
          const all = store()
            .list()
            .filter((r) => r.owner !== 'all' && field in r.owner)
            .map((r) => ({ [field]: (r.owner as Record<string, string>)[field], rules: r.rules }));
          return { body: page(all, paging(req.query)) };
        },
      },
      {
        method: 'POST',
        path: `${RULES}/${kind}`,
        summary: `Sets the rules of several ${field}s: [{${field}, rules}]`,
        handler: async (req) => {
          if (!Array.isArray(req.body)) throw new ValidationError('INVALID_ARGUMENT', `expected a JSON array of {${field}, rules}`);
          const items = req.body.map((x: unknown, i) => ownerRules(x, field, `[${i}]`));
          for (const { id, rules } of items) await store().set(owner(id), rules);
          return {};
        },
      },
      {
        method: 'GET',
        path: `${RULES}/${kind}/:id`,
        summary: `The rules of one ${field}`,
        handler: (req) => {
          const rules = store().get(owner(req.params.id!));
          if (!rules.length) throw new NotFoundError('NOT_FOUND', `no rules for ${field} ${req.params.id}`);
          return { body: { [field]: req.params.id, rules } };
        },
      },
      {
        method: 'PUT',
        path: `${RULES}/${kind}/:id`,
        summary: `Replaces the rules of one ${field}: {rules}`,
        handler: async (req) => {
          const { rules } = ownerRules({ ...(req.body as object), [field]: req.params.id }, field, '');
          await store().set(owner(req.params.id!), rules);
          return {};
        },
      },
      {
        method: 'DELETE',
        path: `${RULES}/${kind}/:id`,
        summary: `Deletes the rules of one ${field}`,
        handler: async (req) => {
          await store().delete(owner(req.params.id!));
          return {};
        },
      },
    );
  }
  routes.push(
    { method: 'GET', path: `${RULES}/all`, summary: 'The rules for every client', handler: () => ({ body: { rules: store().get('all') } }) },
    {
      method: 'POST',
      path: `${RULES}/all`,
      summary: 'Replaces the rules for every client: {rules}',
      handler: async (req) => {
        await store().set('all', rulesOf((req.body as { rules?: unknown } | undefined)?.rules, 'rules'));
        return {};
      },
    },
    {
      method: 'DELETE',
      path: `${RULES}/all`,
      summary: 'Deletes the rules for every client',
      handler: async () => {
        await store().set('all', []);
        return {};
      },
    },
  );
  return routes;
}

function ownerRules(raw: unknown, field: 'username' | 'clientid', at: string): { id: string; rules: StoredRule[] } {
  const o = raw as Record<string, unknown> | undefined;
  const id = o?.[field];
  if (typeof id !== 'string' || id.length === 0) throw new ValidationError('INVALID_ARGUMENT', `${at}${at ? '.' : ''}${field}: a non-empty string is required`);
  return { id, rules: rulesOf(o?.rules, `${at}${at ? '.' : ''}rules`) };
}

/** Rules are checked by RuleStore.set (a bad one is a ValidationError naming it); here only that it is a list. */
function rulesOf(raw: unknown, at: string): StoredRule[] {
  if (!Array.isArray(raw)) throw new ValidationError('INVALID_ARGUMENT', `${at}: expected a list of rules`);
  return raw as StoredRule[];
}

/** A ban as the API shows it: EMQX's fields, times as RFC 3339 strings (`until` may be "infinity"). */
function banView(b: Ban): Record<string, string> {
  const iso = (s: number): string => new Date(s * 1000).toISOString();
  return { as: b.as, who: b.who, by: b.by, reason: b.reason, at: iso(b.at), until: b.until === 'infinity' ? 'infinity' : iso(b.until) };
}

/** Seconds since the epoch from an RFC 3339 string or a number of seconds; undefined when absent. */
function seconds(raw: unknown, field: string): number | 'infinity' | undefined {
  if (raw === undefined || raw === 'infinity') return raw;
  if (typeof raw === 'number' && Number.isFinite(raw)) return Math.floor(raw);
  const ms = typeof raw === 'string' ? Date.parse(raw) : NaN;
  if (Number.isNaN(ms)) throw new ValidationError('INVALID_ARGUMENT', `${field}: expected an RFC 3339 time, seconds since the epoch or "infinity"`);
  return Math.floor(ms / 1000);
}

/** EMQX's `/banned`: list (paged, one filter), add, delete one, clear. */
export function bannedRoutes(bans: () => BanStore): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/banned',
      summary: 'Bans in force, paged; filters clientid, username, peerhost (one at a time)',
      handler: (req) => {
        const p = paging(req.query);
        const filters = (['clientid', 'username', 'peerhost'] as const).filter((f) => req.query[f] !== undefined);
        if (filters.length > 1) throw new ValidationError('INVALID_ARGUMENT', 'too_many_filters');
        const f = filters[0];
        const all = bans()
          .list()
          .filter((b) => f === undefined || (b.as === f && b.who === req.query[f]))
          .map(banView);
        return { body: page(all, p) };
      },
    },
    {
      method: 'POST',
      path: '/banned',
      summary: 'Adds a ban: {as, who, by?, reason?, at?, until?}',
      handler: async (req) => {
        const b = (req.body ?? {}) as Record<string, unknown>;
        if (typeof b.as !== 'string') throw new ValidationError('INVALID_ARGUMENT', 'as: one of clientid, username, peerhost, clientid_re, username_re, peerhost_net is required');
        if (typeof b.who !== 'string') throw new ValidationError('INVALID_ARGUMENT', 'who: a non-empty string is required');
        const until = seconds(b.until, 'until');
        if (typeof until === 'number' && until <= Date.now() / 1000) throw new ValidationError('INVALID_ARGUMENT', 'Cannot create expired banned: until is in the past');
        if (bans().get(b.as as Ban['as'], b.who)) throw new ConflictError('ALREADY_EXISTS', `${b.as}: ${b.who} is banned already`);
        const at = seconds(b.at, 'at');
        const ban = await bans().add({
          as: b.as as Ban['as'],
          who: b.who,
          ...(typeof b.by === 'string' ? { by: b.by } : {}),
          ...(typeof b.reason === 'string' ? { reason: b.reason } : {}),
          ...(typeof at === 'number' ? { at } : {}),
          ...(until !== undefined ? { until } : {}),
        });
        return { body: banView(ban) };
      },
    },
    {
      method: 'DELETE',
      path: '/banned',
      summary: 'Deletes every ban',
      handler: async () => {
        for (const b of bans().list(0)) await bans().delete(b.as, b.who);
        return {};
      },
    },
    {
      method: 'DELETE',
      path: '/banned/:as/:who',
      summary: 'Deletes one ban',
      handler: async (req) => {
        if (!(await bans().delete(req.params.as as Ban['as'], req.params.who!))) throw new NotFoundError('NOT_FOUND', `${req.params.as}: ${req.params.who} not found`);
        return {};
      },
    },
  ];
}
