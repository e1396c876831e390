/**
 * The rules family (`--scenarios rules`): what the rule engine costs on the message path and what its sinks
 * carry, each row next to `rules-baseline` of the same run (a `<row> / rules-baseline` line per broker). All rows
 * run the fan-in load of scenarios.ts with JSON payloads (`{"x":1,"s":"<stamp in hex>"}`): 10 QoS 1 publishers,
 * 100 messages each not yet delivered at most. The rule rows publish to `bench/rules/in/<p>` and are Tributary's
 * alone (TRIBUTARY_RULE_ENGINE__RULES, TRIBUTARY_CONNECTORS, TRIBUTARY_ACTIONS); the baseline runs on Mosquitto too.
 *
 * - rules-baseline: the load straight to the subscriber's topic `bench/rules/out`, no rule.
 * - rules-republish: a rule selecting from `bench/rules/in/#` (decoding payload.x, WHERE payload.x > 0)
 *   republishes each message to `bench/rules/out` at QoS 1: delivered msg/s.
 * - rules-webhook: a rule sends each message to a webhook in this process (node:http, 200 at once): requests/s.
 * - rules-pgsql: a rule inserts each message into a PostgreSQL table, batches of 100: rows/s.
 *
 * The sink rows have no subscriber: the publishers' window is held against what reached the sink (the webhook's
 * requests; the table's max(id), polled), so the rate is what the sink sustains, not a burst into its buffer.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from 'pg';
import type { BrokerName } from './brokers';
import type { Flow } from './flow';
import { Prepared, Scenario, sleep } from './harness';
import { Postgres, startPostgres } from './postgres';
import { throughput } from './scenarios';

const PUBLISHERS = 10;
const IN = 'bench/rules/in';
const OUT = 'bench/rules/out';
const FAMILY = 'rules';
const BASELINE = 'rules-baseline';
/** How often the rules-pgsql row counts the table's rows (the publishers' window is held against that count). */
const PG_POLL_MS = 20;
const PG_TABLE = 'bench_rules';

/**
 * The load of every row: publisher p publishes to `<topic>/<p>` (or all to `topic`), QoS 1, JSON payloads, W = 100;
 * the JSON gets the end-to-end latency at that rate (`latencyP50Us`...) where a subscriber receives.
 */
function load(topic: string, perPublisher: boolean, rest: Partial<Flow>): Flow {
  return { publishers: PUBLISHERS, subscribers: 1, qos: 1, topic, ...(perPublisher ? { topics: PUBLISHERS } : {}), e2eWindow: 100, json: true, trackLatency: true, ...rest };
}

/** Tributary's environment for one rule `bench` with these actions, and the connectors and sinks they name. */
function ruleEnv(sql: string, actions: unknown[], connectors?: object, sinks?: object): Record<string, string> {
  return {
    TRIBUTARY_RULE_ENGINE__RULES: JSON.stringify({ bench: { sql, actions } }),
    ...(connectors ? { TRIBUTARY_CONNECTORS: JSON.stringify(connectors) } : {}),
    ...(sinks ? { TRIBUTARY_ACTIONS: JSON.stringify(sinks) } : {}),
  };
}

/** A scenario of the family, measured against the baseline. */
function rulesRow(s: Scenario, prepare: Scenario['prepare']): Scenario {
  return { ...s, family: FAMILY, baseline: BASELINE, prepare };
}

const baseline: Scenario = {
  ...throughput(BASELINE, 'rules baseline: fan-in qos1 JSON, no rule', load(OUT, false, {}), `rules baseline: fan-in ${PUBLISHERS}->1 qos1 JSON, no rule (msg/s)`),
  family: FAMILY,
  prepare: async (broker: BrokerName) => (broker === 'tributary' || broker === 'mosquitto' ? {} : undefined),
};

const REPUBLISH_SQL = `SELECT payload.x as x, payload FROM "${IN}/#" WHERE payload.x > 0`;
const republish = rulesRow(
  throughput('rules-republish', 'rule republish', load(IN, true, { subscribeTo: OUT }), `rule republish ${IN}/# -> ${OUT}, ${PUBLISHERS}->1 qos1 (msg/s)`),
  async (broker) => (broker === 'tributary' ? { env: ruleEnv(REPUBLISH_SQL, [{ function: 'republish', args: { topic: OUT, payload: '${payload}', qos: 1 } }]) } : undefined),
);

/** The webhook the rules-webhook row's sink posts to: answers 200 at once, counts requests. */
class Webhook {
  requests = 0;
  bodyBytes = 0;
  /** Called with 1 per request while a flow is running. */
  onRequest: ((n: number) => void) | undefined;
  private readonly server = http.createServer((req, res) => {
    req.on('data', (d: Buffer) => (this.bodyBytes += d.length));
    req.on('end', () => {
      this.requests++;
      this.onRequest?.(1);
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
  });

  /** The base URL once listening on a free loopback port. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const WEBHOOK_SQL = `SELECT payload.x as x, clientid FROM "${IN}/#"`;

function webhookRow(): Scenario {
  let hook: Webhook | undefined;
  const row = throughput(
    'rules-webhook',
    'rule -> webhook',
    load(IN, true, { subscribers: 0, sink: (arrived) => (hook!.onRequest = arrived) }),
    `rule ${IN}/# -> webhook (http sink), ${PUBLISHERS} qos1 publishers (requests/s)`,
  );
  return rulesRow(
    {
      ...row,
      async run(ctx) {
        try {
          const r = await row.run(ctx);
          const h = hook!;
          Object.assign(r.extra, { webhookRequests: h.requests, webhookBodyBytesPerRequest: h.requests > 0 ? h.bodyBytes / h.requests : 0 });
          return r;
        } finally {
          if (hook) hook.onRequest = undefined;
        }
      },
    },
    async (broker): Promise<Prepared | undefined> => {
      if (broker !== 'tributary') return undefined;
      const h = new Webhook();
      hook = h;
      const url = await h.listen();
      // An empty body: the sink posts the rule's selected data as JSON ({"x":1,"clientid":"..."}).
      const env = ruleEnv(WEBHOOK_SQL, ['http:bench'], { http: { bench: { url } } }, { http: { bench: { connector: 'bench', parameters: { method: 'post', path: '/rules', body: '' } } } });
      return {
        env,
        cleanup: async () => {
          await h.close();
          if (hook === h) hook = undefined;
        },
      };
    },
  );
}

const PGSQL_SQL = `SELECT payload.x as x, clientid, topic, payload FROM "${IN}/#"`;
const PGSQL_INSERT = `insert into ${PG_TABLE}(topic, payload) values (\${topic}, \${payload})`;

/** Counts the table's rows while a flow runs: max(id) of its bigserial key, an index look-up, every PG_POLL_MS. */
class RowCounter {
  private stopped = false;
  private done: Promise<void> | undefined;
  polls = 0;
  /** Why counting stopped early (the server went away): the row then fails with it. */
  error: Error | undefined;

  constructor(private readonly client: Client) {}

  /** Calls arrived with each increase of the count from here on. */
  start(arrived: (n: number) => void): void {
    this.done = (async () => {
      let last = await this.count();
      while (!this.stopped) {
        await sleep(PG_POLL_MS);
        const n = await this.count();
        this.polls++;
        if (n > last) arrived(n - last);
        last = n;
      }
    })().catch((e: unknown) => void (this.error = e as Error));
  }

  private async count(): Promise<number> {
    const r = await this.client.query<{ n: string }>(`SELECT coalesce(max(id), 0) AS n FROM ${PG_TABLE}`);
    return Number(r.rows[0]!.n);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

function pgsqlRow(): Scenario {
  let pg: Postgres | undefined;
  let counter: RowCounter | undefined;
  const row = throughput(
    'rules-pgsql',
    'rule -> PostgreSQL',
    load(IN, true, { subscribers: 0, sink: (arrived) => counter!.start(arrived) }),
    `rule ${IN}/# -> PostgreSQL insert (pgsql sink, batch 100), ${PUBLISHERS} qos1 publishers (rows/s)`,
  );
  return rulesRow(
    {
      ...row,
      async run(ctx) {
        const client = await pg!.connect();
        counter = new RowCounter(client);
        try {
          const r = await row.run(ctx);
          await counter.stop();
          if (counter.error) throw new Error(`counting rows: ${counter.error.message}`);
          // Exact, after the flow's drain: every message published should be one row.
          const [exact] = (await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${PG_TABLE}`)).rows;
          Object.assign(r.extra, { pgRowsAfterDrain: Number(exact!.n), pgPolls: counter.polls });
          return r;
        } finally {
          await counter.stop();
          counter = undefined;
          await client.end().catch(() => undefined);
        }
      },
    },
    async (broker): Promise<Prepared | undefined> => {
      if (broker !== 'tributary') return undefined;
      const server = await startPostgres(async ({ query }) => {
        await query(`CREATE TABLE ${PG_TABLE} (id bigserial PRIMARY KEY, topic text NOT NULL, payload text)`);
      });
      pg = server;
      const env = ruleEnv(
        PGSQL_SQL,
        ['pgsql:bench'],
        { pgsql: { bench: { server: `${server.host}:${server.port}`, database: server.database, username: server.user, password: server.password } } },
        { pgsql: { bench: { connector: 'bench', parameters: { sql: PGSQL_INSERT }, resource_opts: { batch_size: 100 } } } },
      );
      return {
        env,
        cleanup: async () => {
          await server.stop();
          if (pg === server) pg = undefined;
        },
      };
    },
  );
}

/** In this order: the baseline first, so that a rule row whose broker does not start cannot cost it its cells. */
export const RULES_SCENARIOS: Scenario[] = [baseline, republish, webhookRow(), pgsqlRow()];
