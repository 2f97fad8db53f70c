/**
 * The admin listeners' status pages in a real browser: headless Chromium
 * (Debian's `chromium` package, or CTBRIDGE_TEST_CHROMIUM) loads the relay's page
 * and each agent's page from running processes, and the test reads what a
 * person would read there: ready or not, agent ids, tunnels, request
 * counts, the code of a failure. Screenshots go to a folder under the OS
 * temp dir (their paths are printed). Loopback only: the browser runs with
 * background networking off and a fresh profile.
 *
 * An agent chooses its hostname and software strings: one that holds
 * markup must show as text, run nothing and add no element.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { stopAll } from '../helpers/processes.js';
import { RawAgent } from '../helpers/raw-agent.js';
import { launchChromium } from '../helpers/browser.js';
import { needs } from '../helpers/system.js';
import { tokenFor } from '../helpers/tunnel.js';

const chromiumPackage = needs('chromium', 'the headless browser that reads the status pages');

/** What a hostile agent puts in its hello and its token: markup that would run, or show, if not escaped. */
const HOSTILE_HOST = `<script>document.title='pwned'</script><b id="injected">bold</b>`;
const HOSTILE_ID = `evil-<img id="injected-img" src=x onerror="document.title='pwned'">`;

let fleet: Fleet;
let raw: RawAgent;
let context: BrowserContext;
let shots: string;
const answerHeaders = new Map<string, Record<string, string>>();
const dialogs: string[] = [];
/** What the browser's console said about the Content-Security-Policy (it must say nothing: the page loads only what its policy allows). */
const cspReports: string[] = [];

beforeAll(async () => {
  fleet = await startFleet();
  raw = await RawAgent.connect(fleet.relay.url, await tokenFor(['evil'], HOSTILE_ID));
  await raw.hello(['evil'], { hostname: HOSTILE_HOST, software: '<i>raw</i>' });

  const get = (path: string) => fetch(`${fleet.relay.url}${path}`);
  // site-a: three requests to web, one to api whose target refuses; site-b: two to files.
  for (const path of ['/t/web/one', '/t/web/two', '/t/web/three', '/t/files/a', '/t/files/b']) expect((await get(path)).status).toBe(200);
  const failed = await get('/t/api/orders');
  expect(failed.status).toBe(502);
  expect(failed.headers.get('x-ctbridge-error')).toBe('CTB_TARGET_UNREACHABLE');

  shots = mkdtempSync(join(tmpdir(), 'ctbridge-status-pages-'));
  context = await launchChromium(chromiumPackage.path, { width: 1500, height: 900 }, dialogs);
});

afterAll(async () => {
  await context?.close();
  raw?.close();
  await stopAll();
  await fleet?.backend.close();
});

const REFRESH = '<meta http-equiv="refresh" content="5">';

/** Opens `url` in a new tab, saves a full-page screenshot as `name`.png, returns the page. */
async function open(url: string, name: string): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text());
  });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  // The page reloads itself every 5 s; on a loaded machine a reload could land between two reads of
  // one test (the page's context is destroyed). The test reads one copy: the refresh is taken out on the way in.
  let refresh = false;
  await page.route(url, async (route) => {
    const response = await route.fetch();
    const body = await response.text();
    refresh = body.includes(REFRESH);
    await route.fulfill({ response, body: body.replace(REFRESH, '') });
  });
  const answer = await page.goto(url);
  expect(answer?.status()).toBe(200);
  expect(refresh, 'the page refreshes itself').toBe(true);
  answerHeaders.set(name, answer!.headers());
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`status page screenshot: ${path}`);
  return page;
}

/** The text of the row of the table under heading `section` whose first cell is `first` (cells tab-separated, as a person reads them). */
async function row(page: Page, section: string, first: string): Promise<string> {
  const rows = page.locator(`h2:text-is("${section}") + table tbody tr`);
  for (const text of await rows.allInnerTexts()) if (text.split('\t')[0] === first) return text;
  throw new Error(`no row "${first}" under "${section}"; the page reads:\n${await page.locator('body').innerText()}`);
}

chromiumPackage.describe('status pages in a browser', () => {
  it("the relay's page: ready, each tunnel's state and agents, each connected agent", async () => {
    const page = await open(`${fleet.relay.adminUrl}/`, 'relay');
    const text = await page.locator('body').innerText();
    expect(await page.locator('h1 .state').innerText()).toBe('ready');
    // The page's style sheet applies under its Content-Security-Policy (issue 12), and nothing was blocked.
    expect(answerHeaders.get('relay')?.['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-/);
    expect(await page.locator('h1 .state').evaluate((e) => getComputedStyle(e).backgroundColor)).toBe('rgb(216, 245, 216)');
    expect(cspReports).toEqual([]);
    expect(text).toContain(`listening on 127.0.0.1:${fleet.relay.port}`);
    expect(text).toContain(`public URL\n${fleet.relay.url}`);
    expect(text).toMatch(/agents connected\s+3/);

    expect(await row(page, 'Tunnels', 'web')).toMatch(/^web\thttp\tserving\t1\tsite-a\tyes$/);
    expect(await row(page, 'Tunnels', 'api')).toMatch(/^api\thttp\tserving\t1\tsite-a\tyes$/);
    expect(await row(page, 'Tunnels', 'files')).toMatch(/^files\thttp\tserving\t1\tsite-b\tyes$/);
    expect(await row(page, 'Tunnels', 'evil')).toMatch(/^evil\thttp\tserving\t1\t.+\tno \(named in an agent token\)$/);

    expect(await page.locator('h2', { hasText: 'Connected agents' }).innerText()).toBe('Connected agents (3)');
    const siteA = await row(page, 'Connected agents (3)', 'site-a');
    expect(siteA).toContain('\tweb, api\t127.0.0.1\t');
    expect(siteA).toMatch(/\tctbridge\/\S+\t/);
    expect(siteA).toMatch(/\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 59m \d+s\)\tserving$/);
    expect(await row(page, 'Connected agents (3)', 'site-b')).toContain('\tfiles\t127.0.0.1\t');
  });

  it("each agent's page: its relay connection, its tunnels with targets and counts, the recent failure and its code", async () => {
    const a = await open(`${await fleet.siteA.adminUrl()}/`, 'agent-site-a');
    const text = await a.locator('body').innerText();
    expect(await a.locator('h1').innerText()).toBe('ctbridge agent site-a ready');
    expect(text).toContain('serving web, api');
    const relay = await row(a, 'Relay connections', `ws://127.0.0.1:${fleet.relay.port}/_ctbridge/agent`);
    expect(relay.split('\t')[1]).toBe('connected');
    expect(await row(a, 'Tunnels', 'web')).toMatch(new RegExp(`^web\\t${fleet.backend.url}\\t${fleet.relay.url}/t/web/\\t3\\t0\\t\\d+$`));
    expect(await row(a, 'Tunnels', 'api')).toMatch(new RegExp(`^api\\thttp://127.0.0.1:${fleet.deadPort}\\t${fleet.relay.url}/t/api/\\t1\\t1\\t\\d+$`));
    const failures = await a.locator('h2:text-is("Recent target failures (1, newest first)") + table tbody tr').allInnerTexts();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/^\d+s ago\tapi\tCTB_TARGET_UNREACHABLE\t.*connection refused/);

    const b = await open(`${await fleet.siteB.adminUrl()}/`, 'agent-site-b');
    expect(await b.locator('h1').innerText()).toBe('ctbridge agent site-b ready');
    expect(await row(b, 'Tunnels', 'files')).toMatch(new RegExp(`^files\\t${fleet.backend.url}\\t${fleet.relay.url}/t/files/\\t2\\t0\\t\\d+$`));
    expect(await b.locator('body').innerText()).toContain('None since the agent started.');
  });

  it("shows an agent's markup (id, hostname, software) as text: nothing runs, no element is added", async () => {
    const page = await open(`${fleet.relay.adminUrl}/`, 'relay-hostile-agent');
    const evil = await row(page, 'Connected agents (3)', HOSTILE_ID);
    expect(evil).toContain(`\t${HOSTILE_HOST}\tevil\t`);
    expect(evil).toContain('\t<i>raw</i>\t');
    expect(await page.title()).toMatch(/^ctbridge relay /);
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('#injected, #injected-img, i').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });
});
