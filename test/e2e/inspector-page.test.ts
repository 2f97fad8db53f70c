/**
 * The inspector's pages in headless Chromium (as test/e2e/status-pages.test.ts
 * starts it): a person filters the agent's recent exchanges for 5xx, opens
 * one, reads the redacted headers and body, presses Replay after the target
 * was fixed, and sees the new answer next to the old one. Screenshots go to
 * a folder under the OS temp dir (their paths are printed).
 */
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stopAll, type CtbridgeProcess } from '../helpers/processes.js';
import { launchChromium } from '../helpers/browser.js';
import { needs } from '../helpers/system.js';
import { startAgentProcess, startRelayProcess, type RelayInfo } from '../helpers/tunnel.js';

const chromiumPackage = needs('chromium', 'the headless browser that drives the exchanges view');
const AUTH = 'Bearer page-S3cr3t-77aa';
const BODY_SECRET = 'page-P4ss-88bb';

let relay: RelayInfo;
let agent: CtbridgeProcess;
let agentAdmin: string;
let target: http.Server;
let fixed = false;
let context: BrowserContext;
let shots: string;
const dialogs: string[] = [];

beforeAll(async () => {
  target = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(fixed ? 200 : 500, { 'content-type': 'text/plain' });
      res.end(fixed ? 'all good now' : 'database is down');
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
  relay = await startRelayProcess({ tunnels: { web: {} } });
  agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { web: { target: targetUrl } }, extra: { inspect: { bodies: '4KiB' } } });
  agentAdmin = await agent.adminUrl();

  shots = mkdtempSync(join(tmpdir(), 'ctbridge-inspector-page-'));
  context = await launchChromium(chromiumPackage.path, { width: 1400, height: 900 }, dialogs);
});

afterAll(async () => {
  await context?.close();
  await stopAll();
  await new Promise((resolve) => target?.close(resolve));
});

async function shot(page: Page, name: string): Promise<void> {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`inspector screenshot: ${path}`);
}

chromiumPackage.describe('the exchanges view in a browser', () => {
  it('filter for 5xx, open an entry, see redacted headers, press Replay, see the new answer', async () => {
    const ok = await fetch(`${relay.url}/t/web/fine`);
    expect(ok.status).toBe(500);
    const failed = await fetch(`${relay.url}/t/web/orders?token=abc`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ order: 7, password: BODY_SECRET }),
    });
    expect(failed.status).toBe(500);
    const id = failed.headers.get('x-ctbridge-request-id')!;
    fixed = true;
    const good = await fetch(`${relay.url}/t/web/later`);
    expect(good.status).toBe(200);

    const page = await context.newPage();
    expect((await page.goto(`${agentAdmin}/`))?.status()).toBe(200);
    await page.click('footer a[href="/exchanges"]');
    await page.selectOption('select[name="status"]', '5xx');
    await page.click('form.filter button[type="submit"]');
    await page.waitForURL(/status=5xx/);
    const rows = await page.locator('table.exchanges tbody tr').allInnerTexts();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(`${id}\tPOST\t/orders?token=[REDACTED]\t500`);
    await shot(page, 'exchanges-5xx');

    await page.click(`a:text-is("${id}")`);
    await page.waitForURL(new RegExp(`/exchanges/${id}$`));
    const headers = await page.locator('h2:text-is("Request headers") + table').innerText();
    expect(headers).toMatch(/authorization\s+\[REDACTED\]/);
    const body = await page.locator('h2:text-is("Request body") + pre').innerText();
    expect(body).toContain('"password": "[REDACTED]"');
    const all = await page.locator('body').innerText();
    expect(all).not.toContain(AUTH.slice(7));
    expect(all).not.toContain(BODY_SECRET);
    expect(await page.locator('h2:text-is("Response body") + pre').innerText()).toBe('database is down');

    await page.click('button#replay');
    const result = page.locator('#replay-result .side');
    await result.waitFor();
    const [before, after] = await result.locator(':scope > div').allInnerTexts();
    expect(before).toContain(`Before (${id})`);
    expect(before).toMatch(/status\s+500/);
    expect(before).toContain('database is down');
    expect(after).toContain(`Replay (${id}-r1)`);
    expect(after).toMatch(/status\s+200/);
    expect(after).toContain('all good now');
    await shot(page, 'exchange-replayed');
    expect(dialogs).toEqual([]);
  });
});
