import { randomBytes } from 'node:crypto';
import { ApiError, type ApiRequest, type ApiRoute, type Cluster, page, paging } from '@tributary/api';
import { ConflictError, NotFoundError, TributaryError, ValidationError } from '@tributary/common';
import type { RuleActionSpec, RuleRecord } from '@tributary/records';
import { isSourceName, Outputs } from './engine';
import { testColumns, testSql, EXAMPLE_COLUMNS } from './rule-test';
import type { RulesService } from './service';
import { jsonEncode, type Value } from '@tributary/rulesql';

/** A rule as the API shows it: EMQX's fields, `from` parsed from the SQL, times as RFC 3339. */
function ruleJson(r: RuleRecord, from: readonly string[] | undefined): Record<string, unknown> {
  return { id: r.id, name: r.name, sql: r.sql, actions: r.actions, enable: r.enable, description: r.description, metadata: r.metadata, from: from ?? [], created_at: new Date(r.created_at).toISOString(), updated_at: new Date(r.updated_at).toISOString() };
}

/** Values as JSON the HTTP layer can send (Buffers as their text, undefined map values as null). */
function plain(v: Value): unknown {
  return JSON.parse(jsonEncode(v));
}

/** EMQX answers parse and evaluation errors of the rule API with 400 BAD_REQUEST. */
function badRequest(err: unknown): never {
  if (err instanceof TributaryError && (err.code === 'SQL_PARSE_ERROR' || err.code === 'SQL_EVAL_ERROR' || err.code === 'INVALID_ARGUMENT')) throw new ApiError(400, 'BAD_REQUEST', err.message);
  throw err;
}

interface RuleBody {
  id?: unknown;
  name?: unknown;
  sql?: unknown;
  actions?: unknown;
  enable?: unknown;
  description?: unknown;
  metadata?: unknown;
}

function checkBody(b: unknown, creating: boolean): RuleBody {
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new ApiError(400, 'BAD_REQUEST', 'expected a JSON object');
  const body = b as RuleBody;
  if (creating && typeof body.sql !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'sql: required');
  if (body.sql !== undefined && typeof body.sql !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'sql: expected a string');
  if (body.actions !== undefined && !Array.isArray(body.actions)) throw new ApiError(400, 'BAD_REQUEST', 'actions: expected an array');
  if (body.enable !== undefined && typeof body.enable !== 'boolean') throw new ApiError(400, 'BAD_REQUEST', 'enable: expected true or false');
  if (body.id !== undefined && (typeof body.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(body.id))) throw new ApiError(400, 'BAD_REQUEST', 'id: 1-64 letters, digits, _ or -');
  return body;
}

/** Is this path (below /api/v5, with its query) one of the rule engine's routes? Scaled out, a process without the engine forwards them to one with it. */
export function isRulesApiPath(path: string): boolean {
  return /^\/(rules|rule_test|rule_events|actions|connectors|sources)(\/|\?|$)/.test(path);
}

/**
 * The rule engine's routes, EMQX's paths and shapes: /rules (CRUD, metrics, test), /rule_test,
 * /rule_events, and read-only /connectors, /actions (sinks, with metrics) and /sources.
 */
export function rulesRoutes(service: RulesService, node: string, cluster?: Cluster): ApiRoute[] {
  const engine = () => service.engine!;
  /**
   * EMQX's {metrics, node_metrics}: this process's counters and, scaled out, those of every other
   * rules process (each reads its share of the partitions), summed; a peer's call gets its own only.
   */
  const everyNode = async (req: ApiRequest, path: string, own: Record<string, number>) => {
    const nodeMetrics = [{ node, metrics: own }];
    if (cluster && !req.peer) {
      const replies = await Promise.allSettled(cluster.ruleEngines().map((peer) => cluster.call(peer, 'GET', path)));
      for (const r of replies) {
        const body = r.status === 'fulfilled' && r.value.status === 200 ? (r.value.body as { node_metrics?: { node: string; metrics: Record<string, number> }[] }) : undefined;
        if (Array.isArray(body?.node_metrics)) nodeMetrics.push(...body.node_metrics);
      }
    }
    const metrics: Record<string, number> = {};
    for (const n of nodeMetrics) for (const [k, v] of Object.entries(n.metrics)) if (typeof v === 'number') metrics[k] = (metrics[k] ?? 0) + v;
    return { metrics, node_metrics: nodeMetrics };
  };
  const store = () => service.store!;
  const rule = (id: string): RuleRecord => {
    const r = store().get(id);
    if (!r) throw new NotFoundError('RULE_NOT_FOUND', `rule ${id} does not exist`);
    return r;
  };
  const show = (r: RuleRecord) => ruleJson(r, engine().compiledRule(r.id)?.stmt.from);
  const save = async (r: RuleRecord): Promise<RuleRecord> => {
    try {
      engine().compile(r);
    } catch (err) {
      badRequest(err);
    }
    await store().put(r);
    return r;
  };
  const sinkJson = (id: string) => {
    const b = service.sinks.get(id)!;
    const [type, name] = id.split(':') as [string, string];
    return { id, type, name, enable: true, connector: service.sinkConnectors.get(id)?.name, status: service.sinkConnectors.get(id)?.status() ?? 'disconnected', metrics: b.metrics.toJSON() };
  };
  return [
    {
      method: 'GET',
      path: '/rules',
      summary: 'The rules, paged (EMQX: {data, meta}); ?enable= and ?like_id= filter',
      handler: (req) => {
        let rules = store().list();
        if (req.query.enable !== undefined) rules = rules.filter((r) => String(r.enable) === req.query.enable);
        if (req.query.like_id) rules = rules.filter((r) => r.id.includes(req.query.like_id!));
        if (req.query.like_from) rules = rules.filter((r) => engine().compiledRule(r.id)?.stmt.from.some((f) => f.includes(req.query.like_from!)));
        return { body: page(rules.map(show), paging(req.query)) };
      },
    },
    {
      method: 'POST',
      path: '/rules',
      summary: 'Creates a rule: {id?, name?, sql, actions, enable?, description?, metadata?}',
      handler: async (req) => {
        const b = checkBody(req.body, true);
        const id = typeof b.id === 'string' ? b.id : `rule_${randomBytes(4).toString('hex')}`;
        if (store().get(id)) throw new ConflictError('ALREADY_EXISTS', `rule ${id} exists already`);
        const now = Date.now();
        const r: RuleRecord = {
          id,
          name: typeof b.name === 'string' ? b.name : id,
          sql: b.sql as string,
          actions: (b.actions ?? []) as RuleActionSpec[],
          enable: b.enable !== false,
          description: typeof b.description === 'string' ? b.description : '',
          metadata: b.metadata && typeof b.metadata === 'object' ? (b.metadata as Record<string, unknown>) : {},
          created_at: now,
          updated_at: now,
        };
        return { status: 201, body: show(await save(r)) };
      },
    },
    { method: 'GET', path: '/rules/:id', summary: 'One rule', handler: (req) => ({ body: show(rule(req.params.id!)) }) },
    {
      method: 'PUT',
      path: '/rules/:id',
      summary: 'Changes a rule (any of sql, actions, enable, name, description, metadata)',
      handler: async (req) => {
        const old = rule(req.params.id!);
        const b = checkBody(req.body, false);
        const r: RuleRecord = {
          ...old,
          ...(typeof b.name === 'string' ? { name: b.name } : {}),
          ...(typeof b.sql === 'string' ? { sql: b.sql } : {}),
          ...(Array.isArray(b.actions) ? { actions: b.actions as RuleActionSpec[] } : {}),
          ...(typeof b.enable === 'boolean' ? { enable: b.enable } : {}),
          ...(typeof b.description === 'string' ? { description: b.description } : {}),
          ...(b.metadata && typeof b.metadata === 'object' ? { metadata: b.metadata as Record<string, unknown> } : {}),
          updated_at: Date.now(),
        };
        return { body: show(await save(r)) };
      },
    },
    {
      method: 'DELETE',
      path: '/rules/:id',
      summary: 'Deletes a rule',
      handler: async (req) => {
        rule(req.params.id!);
        await store().delete(req.params.id!);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/rules/:id/metrics',
      summary: "A rule's counters (EMQX's names): summed over the rules processes, and per node",
      handler: async (req) => {
        const r = rule(req.params.id!);
        const own = engine().metricsOf(r.id)?.toJSON() ?? {};
        return { body: { id: r.id, ...(await everyNode(req, `/rules/${encodeURIComponent(r.id)}/metrics`, own)) } };
      },
    },
    {
      method: 'POST',
      path: '/rules/:id/test',
      summary: 'Runs a rule on {context}: the selected data and what each action would send (templates rendered, nothing sent)',
      handler: (req) => {
        const r = rule(req.params.id!);
        const compiled = engine().compiledRule(r.id);
        if (!compiled) throw new ApiError(400, 'BAD_REQUEST', `rule ${r.id} does not compile`);
        const body = (req.body ?? {}) as { context?: Record<string, unknown> };
        let columns;
        try {
          columns = testColumns(body.context ?? {}, node);
        } catch (err) {
          badRequest(err);
        }
        const rows = engine().run(compiled, columns, new Outputs());
        if (!rows) throw new ValidationError('SQL_NOT_MATCH', 'SQL Not Match');
        const actions = rows.flatMap((row) =>
          compiled.actions.map((a) => {
            if (a.kind === 'sink') return { action: a.id, rendered: plain(service.sinks.get(a.id)!.sink.render(row) as Value) };
            if (a.kind === 'console') return { action: 'console', rendered: plain(row) };
            const m = a.render(row, r.id);
            return { action: 'republish', rendered: { topic: m.topic, qos: m.qos, retain: m.retain, payload: m.payload.toString('utf8') } };
          }),
        );
        return { body: { result: plain(compiled.stmt.kind === 'foreach' ? rows : rows[0]!), actions } };
      },
    },
    {
      method: 'POST',
      path: '/rule_test',
      summary: 'Runs {sql, context: {event_type, ...fields}}: 200 with the selected map (FOREACH: array), 412 NOT_MATCH, 400 BAD_REQUEST',
      handler: (req) => {
        const b = (req.body ?? {}) as { sql?: unknown; context?: unknown };
        if (typeof b.sql !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'sql: required');
        const context = b.context && typeof b.context === 'object' ? (b.context as Record<string, unknown>) : {};
        try {
          return { body: plain(testSql(b.sql, context, node)) };
        } catch (err) {
          if (err instanceof TributaryError && err.code === 'SQL_NOT_MATCH') throw new ApiError(412, 'NOT_MATCH', 'SQL Not Match');
          badRequest(err);
        }
      },
    },
    {
      method: 'GET',
      path: '/rule_events',
      summary: 'The event sources rules select from, with their example columns',
      handler: () => ({ body: Object.entries(EXAMPLE_COLUMNS).map(([type, e]) => ({ event_type: type, event: e.source || 'message.publish', columns: Object.keys(e.columns), test_columns: e.columns })) }),
    },
    { method: 'GET', path: '/actions', summary: 'The sinks (actions.<type>.<name>), with status and metrics', handler: () => ({ body: [...service.sinks.keys()].map(sinkJson) }) },
    {
      method: 'GET',
      path: '/actions/:id',
      summary: 'One sink',
      handler: (req) => {
        if (!service.sinks.has(req.params.id!)) throw new NotFoundError('NOT_FOUND', `action ${req.params.id} is not configured`);
        return { body: sinkJson(req.params.id!) };
      },
    },
    {
      method: 'GET',
      path: '/actions/:id/metrics',
      summary: "A sink's counters (EMQX's names): summed over the rules processes, and per node",
      handler: async (req) => {
        const b = service.sinks.get(req.params.id!);
        if (!b) throw new NotFoundError('NOT_FOUND', `action ${req.params.id} is not configured`);
        return { body: await everyNode(req, `/actions/${encodeURIComponent(req.params.id!)}/metrics`, b.metrics.toJSON()) };
      },
    },
    {
      method: 'GET',
      path: '/connectors',
      summary: 'The connectors (connectors.<type>.<name>) and their status',
      handler: () => ({ body: [...service.connectors.values()].map((c) => ({ id: `${c.type}:${c.name}`, type: c.type, name: c.name, enable: true, status: c.status() })) }),
    },
    {
      method: 'GET',
      path: '/sources',
      summary: 'The sources (sources.<type>.<name>), used in rules as FROM "$sources/<type>:<name>"',
      handler: () => ({ body: [...service.sources.keys()].map((id) => ({ id, type: id.split(':')[0], name: id.split(':')[1], enable: true, rules: store().list().filter((r) => engine().compiledRule(r.id)?.stmt.from.some((f) => isSourceName(f) && f.endsWith(id))).map((r) => r.id) })) }),
    },
  ];
}
