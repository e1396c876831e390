import { ApiRoute, paging } from '@tributary/api';
import { NotFoundError, ValidationError } from '@tributary/common';
import type { Authenticator } from './types';
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
      handler: (req) => {
        const p = paging(req.query);
        const r = users(req.params.id!).list(p.page, p.limit);
        return { body: { data: r.data, meta: { ...r.meta, hasnext: p.page * p.limit < r.meta.count } } };
      },
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
