/**
 * The HTTP API at scale (`--scenarios api`): with 10,000 connected clients, each with one
 * subscription, how long one page of `/api/v5/clients` and of `/api/v5/subscriptions` takes
 * (100 per page, pages spread over the whole list, one request at a time). Tributary only: the
 * other brokers have no such API.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Scenario } from './harness';
import { quantiles } from './measure';
import { tempDir } from './processes';
import { idleCount, openIdle } from './scenarios';

const REQUESTS = 100;
const KEY = 'bench:bench-secret';

/** Milliseconds per request. */
async function pageTimes(api: string, route: string, pages: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const page = 1 + ((i * 37) % pages);
    const t0 = performance.now();
    const res = await fetch(`${api}/api/v5${route}?page=${page}&limit=100`, { headers: { authorization: `Basic ${Buffer.from(KEY).toString('base64')}` } });
    const body = (await res.json()) as { data?: unknown[] };
    times.push(performance.now() - t0);
    if (!res.ok || !Array.isArray(body.data) || body.data.length === 0) throw new Error(`${route} page ${page}: HTTP ${res.status}`);
  }
  return times;
}

export const API_SCENARIOS: Scenario[] = [
  {
    name: 'api-list-10k',
    title: 'HTTP API pages with 10,000 clients',
    family: 'api',
    timeoutS: () => 240,
    timed: false,
    async prepare(broker) {
      if (broker !== 'tributary') return undefined;
      const dir = tempDir('bench-api');
      const file = path.join(dir, 'api_keys');
      fs.writeFileSync(file, `${KEY}\n`);
      return { env: { TRIBUTARY_API_KEY__BOOTSTRAP_FILE: file } };
    },
    async run(ctx) {
      const count = idleCount(ctx.opts);
      const connectS = await openIdle(ctx, count, 'api', (i) => `bench/api/${i}`);
      ctx.opts.log(`  ${count} connected and subscribed in ${connectS.toFixed(1)} s`);
      const api = `http://${ctx.broker.statusBinds[0]}`;
      const pages = Math.ceil(count / 100);
      const metrics = [];
      const extra: Record<string, number> = { clients: count };
      for (const [route, key] of [
        ['/clients', 'clients'],
        ['/subscriptions', 'subscriptions'],
      ] as const) {
        const at = quantiles(await pageTimes(api, route, pages));
        metrics.push(
          { key: `api-${key}-p50`, label: `GET ${route} page of 100, ${count} clients, p50 (ms)`, value: at(0.5) / 1000, better: 'lower' as const, digits: 1 },
          { key: `api-${key}-p99`, label: `GET ${route} page of 100, ${count} clients, p99 (ms)`, value: at(0.99) / 1000, better: 'lower' as const, digits: 1 },
        );
        extra[`${key}P50Us`] = at(0.5);
        extra[`${key}P99Us`] = at(0.99);
      }
      ctx.abort();
      return { metrics, extra };
    },
  },
];
