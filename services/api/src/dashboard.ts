import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where `npm run build` puts the dashboard (services/dashboard/dist), from this file in services/api/dist/src. */
export const DEFAULT_DASHBOARD_DIR = join(__dirname, '..', '..', '..', 'dashboard', 'dist');

/** What `/` answers when the dashboard was not built. */
export const DASHBOARD_MISSING =
  'The dashboard is not built: run `npm run build` (it builds services/dashboard into services/dashboard/dist) and restart the node. The HTTP API under /api/v5 works without it.\n';

/**
 * Serves the built dashboard at `/`: its files, with index.html for any other GET that asks for
 * HTML and is not an API path (client-side routes such as /clients/abc). Hashed files under
 * /assets are cached for a year, index.html never. Returns the handler for requests that matched
 * no route: it answers the app's fallback, the 503 when the build is missing, or false for a
 * request it does not serve (the caller answers 404).
 */
export async function addDashboard(app: FastifyInstance, dir: string): Promise<(req: FastifyRequest, reply: FastifyReply) => boolean> {
  const built = existsSync(join(dir, 'index.html'));
  if (built) {
    await app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      index: 'index.html',
      cacheControl: false,
      setHeaders: (res, path) => res.setHeader('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache'),
    });
  }
  return (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = req.url.split('?')[0]!;
    if (path === '/api' || path.startsWith('/api/') || path === '/status') return false;
    if (!built) {
      void reply.code(503).type('text/plain; charset=utf-8').send(DASHBOARD_MISSING);
      return true;
    }
    if (path !== '/' && !String(req.headers.accept ?? '').includes('text/html')) return false;
    void reply.header('cache-control', 'no-cache').sendFile('index.html');
    return true;
  };
}
