import { timingSafeEqual } from 'node:crypto';
import type { ApiKeyInfo, ApiKeys } from './api-keys';
import { ApiError, ApiRoute } from './routes';
import type { TokenSigner } from './tokens';

/** The dashboard user of POST /login (`dashboard.default_username` / `default_password`). */
export interface DashboardUser {
  username: string;
  password: string;
}

const ROLES = ['administrator', 'viewer', 'publisher'];
const keyFields = {
  name: { type: 'string', minLength: 1, maxLength: 256 },
  desc: { type: 'string' },
  enable: { type: 'boolean' },
  expired_at: { anyOf: [{ type: 'string', format: 'date-time' }, { const: 'infinity' }] },
  role: { type: 'string', enum: ROLES },
};
const keyItem = { type: 'object', properties: { ...keyFields, api_key: { type: 'string' }, created_at: { type: 'string' } } };

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * POST /login and /logout, and the API-key routes (bearer tokens only, as in EMQX). Keys created
 * here are kept in the backbone's `api_keys` table once the node called ApiKeys.persist()
 * (bootstrap-file keys are read from their file at every start).
 */
export function dashboardRoutes(user: DashboardUser, tokens: TokenSigner, keys: ApiKeys, version: string): ApiRoute[] {
  const known = (name: string): ApiKeyInfo => {
    const k = keys.get(name);
    if (!k) throw new ApiError(404, 'NOT_FOUND', `API key ${name} not found`);
    return k;
  };
  return [
    {
      method: 'POST',
      path: '/login',
      summary: 'Dashboard login: {username, password} → a bearer token',
      auth: 'none',
      schema: {
        body: { type: 'object', required: ['username', 'password'], properties: { username: { type: 'string' }, password: { type: 'string' } } },
        response: { type: 'object', properties: { token: { type: 'string' }, version: { type: 'string' }, license: { type: 'object', properties: { edition: { type: 'string' } } }, role: { type: 'string' } } },
      },
      handler: (req) => {
        const b = req.body as { username: string; password: string };
        // Both compared, so the time does not say which was wrong.
        const ok = sameText(b.username, user.username) && sameText(b.password, user.password);
        if (!ok) throw new ApiError(401, 'BAD_USERNAME_OR_PWD', 'Auth failed');
        return { body: { token: tokens.issue(b.username), version, license: { edition: 'opensource' }, role: 'administrator' } };
      },
    },
    {
      method: 'POST',
      path: '/logout',
      summary: 'Revokes the bearer token of the request',
      auth: 'bearer',
      schema: { body: { type: 'object', properties: { username: { type: 'string' } } } },
      handler: (req) => {
        if (req.token) tokens.revoke(req.token);
        return {};
      },
    },
    { method: 'GET', path: '/api_key', summary: 'API keys (never their secrets)', auth: 'bearer', schema: { response: { type: 'array', items: keyItem } }, handler: () => ({ body: keys.list() }) },
    {
      method: 'POST',
      path: '/api_key',
      summary: 'Creates an API key: {name, desc?, enable?, expired_at?, role?}; the answer carries api_secret, shown this once',
      auth: 'bearer',
      schema: { body: { type: 'object', required: ['name'], properties: keyFields }, response: keyItem },
      handler: async (req) => {
        const created = await keys.create(req.body as Parameters<ApiKeys['create']>[0]);
        if (!created) throw new ApiError(400, 'ALREADY_EXISTS', `API key ${(req.body as { name: string }).name} already exists`);
        return { body: created };
      },
    },
    { method: 'GET', path: '/api_key/:name', summary: 'One API key', auth: 'bearer', schema: { response: keyItem }, handler: (req) => ({ body: known(req.params.name!) }) },
    {
      method: 'PUT',
      path: '/api_key/:name',
      summary: 'Changes desc, enable, expired_at or role of an API key',
      auth: 'bearer',
      schema: { body: { type: 'object', properties: { desc: keyFields.desc, enable: keyFields.enable, expired_at: keyFields.expired_at, role: keyFields.role } }, response: keyItem },
      handler: async (req) => {
        known(req.params.name!);
        return { body: await keys.update(req.params.name!, req.body as Partial<ApiKeyInfo>) };
      },
    },
    {
      method: 'DELETE',
      path: '/api_key/:name',
      summary: 'Deletes an API key',
      auth: 'bearer',
      handler: async (req) => {
        known(req.params.name!);
        await keys.delete(req.params.name!);
        return {};
      },
    },
  ];
}
