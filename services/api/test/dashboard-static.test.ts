// The dashboard's files at / through fastify's inject(): static files, index.html for client
// routes, API paths still 404 in JSON, caching headers, and the 503 when the build is missing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@tributary/common';
import { ApiServer, DASHBOARD_MISSING } from '../src';

const node = { nodeName: 'n1@test', version: '9.9.9', running: true, stats: () => ({}), metrics: () => ({}) };
const bind = { host: '127.0.0.1', port: 0 };
const INDEX = '<!doctype html><title>app</title><div id="app"></div>';

describe('a built dashboard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-dash-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets', 'app-1234.js'), 'console.log(1)');
  const server = new ApiServer(bind, node, silentLogger, { dashboardDir: dir });
  const get = (url: string, accept = 'text/html') => server.fastify!.inject({ method: 'GET', url, headers: { accept } });
  before(() => server.start());
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html at / without caching', async () => {
    const res = await get('/');
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/html/);
    assert.equal(res.body, INDEX);
    assert.equal(res.headers['cache-control'], 'no-cache');
  });
  it('serves hashed assets as immutable', async () => {
    const res = await get('/assets/app-1234.js', '*/*');
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'console.log(1)');
    assert.match(String(res.headers['cache-control']), /immutable/);
  });
  it('answers a client-side route that asks for HTML with index.html', async () => {
    const res = await get('/clients/some%2Fclient');
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, INDEX);
  });
  it('keeps 404 NOT_FOUND for unknown API paths and for non-HTML requests', async () => {
    for (const [url, accept] of [['/api/v5/nope', 'text/html'], ['/favicon.ico', 'image/*']] as const) {
      const res = await get(url, accept);
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().code, 'NOT_FOUND');
    }
  });
});

describe('a dashboard that was not built', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-dash-'));
  const server = new ApiServer(bind, node, silentLogger, { dashboardDir: join(dir, 'missing') });
  before(() => server.start());
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers / with a 503 that says to run npm run build', async () => {
    const res = await server.fastify!.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /text\/plain/);
    assert.equal(res.body, DASHBOARD_MISSING);
    assert.match(res.body, /npm run build/);
  });
  it('still serves the API', async () => {
    const res = await server.fastify!.inject({ method: 'GET', url: '/status' });
    assert.equal(res.statusCode, 200);
  });
});
