// The web dashboard in a real browser (Debian's chromium driven by playwright-core) against a
// real broker: log in, find an mqtt.js client on the clients page, open its detail (its
// subscription and queue depth), kick it (the client is disconnected and leaves the list), use
// the WebSocket client page, the listeners and banned pages, and check a screenshot of the overview
// is not blank.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { BrokerProcess, ROOT, startBroker } from '../helpers/broker';
import { end } from '../helpers/clients';
import { once, open } from '../helpers/util';

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_ID = `dash-e2e-${process.pid}`;
const TOPIC = `dash/e2e/${process.pid}/#`;
const WAIT = 15_000;

let b: BrokerProcess;
let browser: Browser;
let page: Page;
let mq: MqttClient | undefined;
const pageErrors: string[] = [];
const shots = mkdtempSync(join(tmpdir(), 'tributary-dash-shots-'));

before(async () => {
  assert.ok(existsSync(join(ROOT, 'services', 'dashboard', 'dist', 'index.html')), 'the dashboard is not built: run npm run build');
  // Monitor samples every 300 ms, so the overview's charts have points within the test.
  b = await startBroker({ env: { TRIBUTARY_MONITOR__SAMPLE_INTERVAL: '300ms' } });
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
  rmSync(shots, { recursive: true, force: true });
});

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

  test('the overview renders its cards, rates and charts from /monitor; a screenshot is not blank', async () => {
    await page.click('nav a[href="/"]');
    await page.locator('[data-testid="stat-connections.count"]').waitFor();
    await page.waitForFunction(`/^\\d+$/.test(document.querySelector('[data-testid="stat-connections.count"]')?.textContent ?? '')`, undefined, { timeout: WAIT });
    await page.locator('[data-testid="rate-received_msg_rate"]', { hasText: /^\d/ }).waitFor();
    // The overview polls every 5 s; each chart draws once /monitor has two samples.
    for (const name of ['connections', 'messages in', 'messages out', 'dropped', 'subscriptions']) {
      await page.locator(`[data-testid="chart-${name}"] svg path`).first().waitFor({ timeout: WAIT });
    }
    const file = join(shots, 'overview.png');
    await page.screenshot({ path: file, fullPage: true });
    const bytes = readFileSync(file);
    assert.ok(bytes.length > 5_000, `screenshot of ${bytes.length} bytes`);
    const png = PNG.sync.read(bytes);
    const colours = new Set<number>();
    for (let i = 0; i < png.data.length && colours.size < 50; i += 4 * 97) colours.add(png.data.readUInt32BE(i));
    assert.ok(colours.size >= 10, `the screenshot has only ${colours.size} colours`);
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});
