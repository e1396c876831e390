import type { ApiRoute } from './routes';

/**
 * The OpenAPI 3.0 document of the routes (GET /api-docs/swagger.json): one operation per route,
 * its summary, path parameters, query parameters and body from the route's schema.
 */
export function openApiDocument(routes: readonly ApiRoute[], version: string, base: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    const parameters: unknown[] = [...r.path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const q = r.schema?.query as { properties?: Record<string, unknown>; required?: string[] } | undefined;
    for (const [name, schema] of Object.entries(q?.properties ?? {})) parameters.push({ name, in: 'query', required: q?.required?.includes(name) ?? false, schema });
    const op: Record<string, unknown> = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+/g, '_')}`,
      security: r.auth === 'none' ? [] : r.auth === 'bearer' ? [{ bearerAuth: [] }] : r.auth === 'peer' ? [{ peerAuth: [] }] : [{ basicAuth: [] }, { bearerAuth: [] }],
      parameters,
      responses: {
        '200': { description: 'OK', ...(r.schema?.response ? { content: { 'application/json': { schema: r.schema.response } } } : {}) },
        default: { description: 'An error: {code, message}', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (r.schema?.body) op.requestBody = { required: true, content: { 'application/json': { schema: r.schema.body } } };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Tributary HTTP API', version },
    servers: [{ url: base }],
    components: {
      securitySchemes: { basicAuth: { type: 'http', scheme: 'basic' }, bearerAuth: { type: 'http', scheme: 'bearer' }, peerAuth: { type: 'apiKey', in: 'header', name: 'x-tributary-peer', description: 'Between the processes of an installation only (their secret in the nodes table)' } },
      schemas: { Error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
    },
    paths,
  };
}
