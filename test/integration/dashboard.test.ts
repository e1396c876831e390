// The web dashboard in a real browser (Debian's chromium driven by playwright-core) against a
// real broker: log in, find an mqtt.js client on the clients page, open its detail (its
// subscription and queue depth), kick it (the client is disconnected and leaves the list), use
// the WebSocket client page, the listeners and banned pages, create a rule on the rules page (its
// SQL tested, its counters moving when a message matches, its webhook sink counted on the sinks
// page), disable and delete it, and check screenshots of the rules page and the overview are not blank.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { BrokerProcess, ROOT, startBroker } from '../helpers/broker';
import { end } from '../helpers/clients';
import { once, open, waitUntil } from '../helpers/util';

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_ID = `dash-e2e-${process.pid}`;
const TOPIC = `dash/e2e/${process.pid}/#`;
const WAIT = 15_000;

let b: BrokerProcess;
let browser: Browser;
let page: Page;
let mq: MqttClient | undefined;
let hook: Server;
/** Bodies the webhook sink delivered. */
const hooked: string[] = [];
const pageErrors: string[] = [];
const shots = mkdtempSync(join(tmpdir(), 'tributary-dash-shots-'));

before(async () => {
  assert.ok(existsSync(join(ROOT, 'services', 'dashboard', 'dist', 'index.html')), 'the dashboard is not built: run npm run build');
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooked.push(body);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  // Monitor samples every 300 ms, so the overview's charts have points within the test; rule and
  // sink rates every second. One webhook sink for the rules page's rule.
  b = await startBroker({
    env: {
      TRIBUTARY_MONITOR__SAMPLE_INTERVAL: '300ms',
      TRIBUTARY_RULE_ENGINE__SAMPLE_INTERVAL: '1s',
      TRIBUTARY_CONNECTORS: JSON.stringify({ http: { hook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}` } } }),
      TRIBUTARY_ACTIONS: JSON.stringify({ http: { hook: { connector: 'hook', parameters: { path: '/rule' } } } }),
    },
  });
  mq = (await open(b.url, { clientId: CLIENT_ID, protocolVersion: 5 })).client;
  await mq.subscribeAsync(TOPIC, { qos: 1 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  await end(mq);
  await b?.stop();
  await new Promise((r) => hook?.close(r));
  rmSync(shots, { recursive: true, force: true });
});

/** Waits until the row of table `testId` holding `text` shows `expected` in its cells from..to-1 (pages poll every 5 s). */
async function rowCells(testId: string, text: string, from: number, to: number, expected: string[]): Promise<void> {
  const want = JSON.stringify(expected);
  await page.waitForFunction(
    `(() => { const r = [...document.querySelectorAll('[data-testid=${testId}] tr')].find((tr) => tr.textContent.includes(${JSON.stringify(text)})); return !!r && JSON.stringify([...r.querySelectorAll('td')].slice(${from}, ${to}).map((td) => td.textContent)) === ${JSON.stringify(want)}; })()`,
    undefined,
    { timeout: WAIT },
  );
}

/** Writes a full-page screenshot and checks it is not blank: over 5 kB and at least 10 colours. */
async function screenshotNotBlank(name: string): Promise<void> {
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const bytes = readFileSync(file);
  assert.ok(bytes.length > 5_000, `${name}: screenshot of ${bytes.length} bytes`);
  const png = PNG.sync.read(bytes);
  const colours = new Set<number>();
  for (let i = 0; i < png.data.length && colours.size < 50; i += 4 * 97) colours.add(png.data.readUInt32BE(i));
  assert.ok(colours.size >= 10, `${name}: the screenshot has only ${colours.size} colours`);
}

describe('dashboard', () => {
  test('a page without a token goes to the login page, which logs in as admin/public', async () => {
    await page.goto(`http://127.0.0.1:${b.httpPort}/clients`);
    await page.waitForURL(/\/login\?next=%2Fclients$/);
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', 'public');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/clients$/);
    const token = await page.evaluate<string | null>('sessionStorage.getItem("tributary.token")');
    assert.ok(token && token.length > 10, 'the bearer token is kept in sessionStorage');
  });

  test('the clients page lists the mqtt.js client; its detail shows its subscription and queue depth', async () => {
    const link = page.locator('[data-testid=client-link]', { hasText: CLIENT_ID });
    await link.waitFor({ state: 'visible' });
    await page.fill('[data-testid=client-search]', CLIENT_ID);
    await link.waitFor({ state: 'visible' });
    await link.click();
    await page.waitForURL(new RegExp(`/clients/${CLIENT_ID}$`));
    const detail = page.locator('[data-testid=client-detail]');
    await detail.waitFor({ state: 'visible' });
    assert.equal(await detail.locator('[data-field=clientid]').textContent(), CLIENT_ID);
    assert.equal(await detail.locator('[data-field=connected]').textContent(), 'yes');
    assert.match((await detail.locator('[data-field=mqueue_len]').textContent()) ?? '', /^\d+$/);
    await page.locator('[data-testid=client-subscriptions] td', { hasText: TOPIC }).waitFor({ state: 'visible' });
  });

  test('kick disconnects the client and it leaves the list', async () => {
    const closed = once(mq!, 'close', WAIT);
    page.once('dialog', (d) => void d.accept());
    await page.click('[data-testid=kick]');
    await closed;
    await page.waitForURL(/\/clients$/);
    await page.locator('[data-testid=client-link]', { hasText: CLIENT_ID }).waitFor({ state: 'detached' });
    const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5/clients/${CLIENT_ID}`, { headers: { authorization: `Bearer ${await page.evaluate<string | null>('sessionStorage.getItem("tributary.token")')}` } });
    assert.equal(res.status, 404, 'the API no longer knows the client');
  });

  test('the WebSocket client page connects to the broker ws listener, subscribes and receives what it publishes', async () => {
    await page.click('nav a[href="/websocket"]');
    const url = page.locator('label', { hasText: 'URL' }).locator('input');
    // The page reads the ws listener's port from GET /api/v5/listeners.
    await page.waitForFunction(`(document.querySelector('label input')?.value ?? '').includes(':${b.wsPort}/mqtt')`, undefined, { timeout: WAIT });
    assert.equal(await url.inputValue(), `ws://127.0.0.1:${b.wsPort}/mqtt`);
    await page.click('button:text-is("Connect")');
    await page.locator('[data-testid=ws-state]', { hasText: /^connected$/ }).waitFor();
    await page.click('button:text-is("Subscribe")');
    await page.locator('li', { hasText: 'testtopic/#' }).waitFor();
    await page.click('button:text-is("Publish")');
    await page.locator('[data-testid=ws-messages] td', { hasText: 'testtopic/1' }).waitFor();
  });

  test('the listeners page shows the ws listener; the banned page adds and lifts a ban', async () => {
    await page.click('nav a[href="/listeners"]');
    await page.locator('td', { hasText: `127.0.0.1:${b.wsPort}` }).waitFor();
    await page.click('nav a[href="/access/banned"]');
    const who = `dash-banned-${process.pid}`;
    await page.fill('input[placeholder=who]', who);
    await page.click('button:text-is("Ban")');
    const row = page.locator('tr', { hasText: who });
    await row.waitFor();
    await row.locator('button:text-is("Lift")').click();
    await row.waitFor({ state: 'detached' });
  });

  test('the rules page creates a rule, tests its SQL (result, 412, 400), shows its counters; the sinks page counts its webhook; disable and delete', async () => {
    const rule = `dash_rule_${process.pid}`;
    await page.click('nav a[href="/integration/rules"]');
    const form = page.locator('[data-testid=rule-form]');
    await form.waitFor();
    await page.fill('input[name=id]', rule);
    await page.fill('textarea[name=sql]', 'SELECT payload.x as x, clientid FROM "dash/rule/#" WHERE payload.x > 0');
    await page.fill('textarea[name=actions]', '["http:hook"]');
    await page.click('button:text-is("Create")');
    const row = page.locator('[data-testid=rules] tr', { hasText: rule });
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /dash\/rule\/#.*http:hook/);
    const cell = (n: number) => row.locator('td').nth(n);
    assert.equal(await cell(3).textContent(), 'yes', 'enabled');
    assert.equal(await cell(4).textContent(), '0', 'matched');

    // Test SQL: the selection, then SQL Not Match (412), then a parse error (400).
    await page.fill('textarea[name=context]', JSON.stringify({ topic: 'dash/rule/1', clientid: 'c9', payload: '{"x": 5}' }));
    await page.click('button:text-is("Test SQL")');
    const result = page.locator('[data-testid=rule-test-result]');
    await result.waitFor();
    assert.deepEqual(JSON.parse((await result.textContent()) ?? ''), { x: 5, clientid: 'c9' });
    await screenshotNotBlank('rules');
    await page.fill('textarea[name=context]', JSON.stringify({ topic: 'dash/rule/1', payload: '{"x": 0}' }));
    await page.click('button:text-is("Test SQL")');
    await page.locator('[data-testid=rule-test-error]', { hasText: '412 NOT_MATCH: SQL Not Match' }).waitFor();
    await page.fill('textarea[name=sql]', 'SELECT FROM');
    await page.click('button:text-is("Test SQL")');
    await page.locator('[data-testid=rule-test-error]', { hasText: /^400 BAD_REQUEST: / }).waitFor();

    // A message the rule matches moves its counters (the page refreshes every 5 s) and reaches the webhook.
    const pub = (await open(b.url, { clientId: `dash-rule-pub-${process.pid}` })).client;
    try {
      await pub.publishAsync('dash/rule/1', JSON.stringify({ x: 3 }), { qos: 1 });
      await pub.publishAsync('dash/rule/1', JSON.stringify({ x: -1 }), { qos: 1 });
    } finally {
      await end(pub);
    }
    await rowCells('rules', rule, 4, 7, ['2', '1', '1']);
    await waitUntil(() => hooked.length === 1, 'the webhook got the request', WAIT);
    assert.equal(JSON.parse(hooked[0]!).x, 3);

    await page.click('nav a[href="/integration/sinks"]');
    const sink = page.locator('[data-testid=sinks] tr', { hasText: 'http:hook' });
    await sink.waitFor();
    await sink.locator('.badge.connected').waitFor();
    await rowCells('sinks', 'http:hook', 3, 7, ['0', '1', '0', '0']);
    await page.locator('[data-testid=connectors] tr', { hasText: 'http:hook' }).locator('.badge.connected').waitFor();

    await page.click('nav a[href="/integration/rules"]');
    await row.waitFor();
    await row.locator('button:text-is("Disable")').click();
    await row.locator('button:text-is("Enable")').waitFor();
    assert.equal(await cell(3).textContent(), 'no');
    await row.locator('button:text-is("Delete")').click();
    await row.waitFor({ state: 'detached' });
    const token = await page.evaluate<string | null>('sessionStorage.getItem("tributary.token")');
    const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5/rules/${rule}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 404, 'the rule is gone from the API');
  });

  test('the overview renders its cards, rates and charts from /monitor; a screenshot is not blank', async () => {
    await page.click('nav a[href="/"]');
    await page.locator('[data-testid="stat-connections.count"]').waitFor();
    await page.waitForFunction(`/^\\d+$/.test(document.querySelector('[data-testid="stat-connections.count"]')?.textContent ?? '')`, undefined, { timeout: WAIT });
    await page.locator('[data-testid="rate-received_msg_rate"]', { hasText: /^\d/ }).waitFor();
    // The overview polls every 5 s; each chart draws once /monitor has two samples.
    for (const name of ['connections', 'messages in', 'messages out', 'dropped', 'subscriptions']) {
      await page.locator(`[data-testid="chart-${name}"] svg path`).first().waitFor({ timeout: WAIT });
    }
    await screenshotNotBlank('overview');
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});
