import { ApiRoute, page, paging } from '@tributary/api';
import { NotFoundError, ValidationError } from '@tributary/common';
import type { Authenticator, UserDirectory } from './types';

/**
 * The authentication routes of the HTTP API, EMQX's paths and shapes:
 * `GET /authentication` (the chain) and `/authentication/:id/users` for authenticators that keep
 * their own users (`password_based:built_in_database`, `scram:built_in_database`).
 */
export function authenticationRoutes(chain: readonly Authenticator[]): ApiRoute[] {
  const users = (id: string): UserDirectory => {
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
        const all = users(req.params.id!).list();
        const like = req.query.like_user_id;
        return { body: page(like ? all.filter((u) => u.user_id.includes(like)) : all, paging(req.query)) };
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
      handler: (req) => {
        const u = users(req.params.id!).get(req.params.user_id!);
        if (!u) throw new NotFoundError('NOT_FOUND', `user ${req.params.user_id} not found`);
        return { body: u };
      },
    },
    {
      method: 'PUT',
      path: '/authentication/:id/users/:user_id',
      summary: "Changes a user's password or superuser flag: {password?, is_superuser?}",
      handler: async (req) => {
        const b = userBody(req.body, false);
        return { body: await users(req.params.id!).update(req.params.user_id!, { password: b.password, isSuperuser: b.is_superuser }) };
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
