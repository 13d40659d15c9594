// The live dashboard in a real browser: headless Chromium (Debian `chromium`) driven by playwright-core loads
// /dashboard while traffic flows, sees numbers appear and change, finds a failed request and opens its story.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest } from '../helpers/strict-net.js';
import { requirePackage } from '../helpers/system.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Status of a GET, 0 when the request failed (the background traffic must never reject). */
const get = (port: number, p: string, headers: Record<string, string> = {}): Promise<number> =>
  httpRequest(port, { path: p, headers }).then((r) => r.status, () => 0);

describe('dashboard in headless Chromium', () => {
  let sidecar: RunningSidecar;
  let app: TestUpstream;
  let traffic: NodeJS.Timeout;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dash-'));

  before(async () => {
    requirePackage('Chromium', 'chromium', () => fs.existsSync(CHROMIUM));
    app = await startUpstream((req, res) => (req.url?.startsWith('/fail') ? reply(res, 503, 'down\n') : setTimeout(() => reply(res, 200, 'ok\n'), 1 + Math.random() * 5)));
    sidecar = await startSidecar(`
admin: { port: 0 }
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`);
    traffic = setInterval(() => void get(sidecar.ports.in!, '/orders/1'), 20);
  });

  after(async () => {
    clearInterval(traffic);
    await sidecar.stop();
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows rps and p99 that change, lists a failed request and links to its story', async () => {
    const { chromium } = await import('playwright-core');
    // launch() gives every run a fresh temporary profile (it refuses --user-data-dir; that is launchPersistentContext's).
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`http://127.0.0.1:${sidecar.adminPort}/dashboard`);
      await page.waitForFunction("Number(document.getElementById('rps-app').textContent) > 0", undefined, { timeout: 15_000 });
      await page.waitForFunction("/ms$/.test(document.getElementById('p99').textContent)", undefined, { timeout: 15_000 });
      const first = await page.textContent('#status');
      await page.waitForFunction(`document.getElementById('status').textContent !== ${JSON.stringify(first)}`, undefined, { timeout: 5_000 });
      assert.equal(await get(sidecar.ports.in!, '/fail/<b>x</b>', { 'x-request-id': 'req-dash-failed' }), 503);
      const link = page.locator('#failed a', { hasText: 'req-dash-failed' });
      await link.waitFor({ timeout: 10_000 });
      // Attacker-controlled paths are text, not markup.
      assert.equal(await page.locator('#failed b').count(), 0);
      assert.ok(await page.locator('.chart canvas').count() > 0, 'uPlot drew charts');
      // Endpoint state is a table: the app's endpoint, healthy, not ejected.
      const row = page.locator('#clusters tr', { hasText: `127.0.0.1:${app.port}` });
      await row.waitFor({ timeout: 5_000 });
      assert.match((await row.textContent()) ?? '', /healthy/);
      await page.screenshot({ path: path.join(dir, 'dashboard.png'), fullPage: true });
      if (process.env.DASHBOARD_SCREENSHOT) fs.copyFileSync(path.join(dir, 'dashboard.png'), process.env.DASHBOARD_SCREENSHOT);
      await link.click();
      await page.waitForLoadState();
      assert.match(await page.textContent('body') ?? '', /Request req-dash-failed/);
    } finally {
      await browser.close();
    }
  });
});
