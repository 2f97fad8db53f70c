import type http from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { TunnelRequests } from '../../../../agent/tunnel-requests.js';
import { parseAgentConfig } from '../../../../src/config/index.js';
import { CtbridgeError } from '../../../../src/errors.js';
import { validateXml } from '../../../../src/xml/validate.js';
import { createClientTrackerHandler, CT_METRICS, DEFAULT_MAX_ANSWER } from '../../../../relay/clienttracker/index.js';
import type { ExchangeContext, KindHandler } from '../../../../relay/tunnel-kind.js';
import { sessionPair } from '../../../helpers/ws-pair.js';
import { request } from '../../../helpers/http.js';
import { captureLog, errorTextOf, listen, relayConfig, type LogLine, type TestServer } from './helpers.js';

const NS = 'http://clienttracker.cioc.ca/schema/';
const PUBLIC = 'https://relay.example/t/cioc';

const REGISTRATION = `<?xml version="1.0" encoding="UTF-8"?>
<response xmlns="${NS}">
  <resourceType>
    <name>Toronto Community Services</name>
    <launchURL>https://intranet.example/ct/ctlaunch.asp?ctid=[CTID]&amp;login=[LOGIN]&amp;key=[KEY]</launchURL>
    <resourceInfoURL>https://intranet.example/ct/ctfetch.asp?num=[ID]&amp;lang=fr&amp;token=s3cr3t</resourceInfoURL>
    <resourceSummaryURL>https://intranet.example/printlist.asp?IDList=[IDS]</resourceSummaryURL>
    <resourceEmailURL>https://intranet.example/recordlist?IDList=[IDS]</resourceEmailURL>
    <resourceTaxonomyInfoURL>https://INTRANET.example:443/ct/ctfetchtax.asp?IDList=[IDS]</resourceTaxonomyInfoURL>
  </resourceType>
</response>
`;

const ITEM_WITHOUT_URL = `<?xml version="1.0" encoding="UTF-8"?>
<response xmlns="${NS}">
  <resourceInfo>
    <id>ZZZ00123</id>
    <name>Food Bank</name>
  </resourceInfo>
</response>
`;

const QUIRK = `<?xml version="1.0" encoding="UTF-8"?>
<response xmlns="https://clienttracker.cioc.ca/schema/">
  <error>Record not found</error>
</response>
`;

const HTML_500 = '<!DOCTYPE html>\n<html><head><title>Server Error</title></head><body><h1>500 - Internal server error.</h1></body></html>';

type Provider = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Harness {
  front: TestServer;
  handler: KindHandler;
  lines: LogLine[];
  counts: { name: string; labels: Record<string, string> }[];
  /** What the fake provider (behind the agent) answers. */
  provider: Provider;
  /** When set, the next request is answered with this bridge error instead (the relay's own refusal). */
  bridgeError: CtbridgeError | undefined;
  /** When set, the agent resets each exchange with this error (its failure, as data) instead of serving it. */
  agentReset: CtbridgeError | undefined;
  get(path: string, method?: string): ReturnType<typeof request>;
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

function xmlAnswer(body: string | Buffer, status = 200, headers: Record<string, string> = {}): Provider {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/xml; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
}

/**
 * A front server that does what PublicRequests does for a clienttracker
 * tunnel: one exchange per request over a real session to a real agent
 * (TunnelRequests) in front of the fake provider, a 'data' listener on the
 * exchange, then the kind's respond(); a reset before the answer goes to
 * the kind's sendError().
 */
async function harness(clientTracker: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<Harness> {
  const config = relayConfig({
    tunnels: { cioc: { kind: 'clienttracker', timeouts: { request: '45s', idle: '20s' }, clientTracker: { rpcUrl: 'http://127.0.0.1:9/ct/', ...clientTracker } } },
    ...extra,
  });
  const { lines, log } = captureLog();
  const counts: Harness['counts'] = [];
  const handler = createClientTrackerHandler(config.tunnels.cioc, {
    publicUrlFor: (t) => `https://relay.example/t/${t}/`,
    log,
    metrics: { increment: (name, labels) => counts.push({ name, labels }) },
    maxResponseBody: config.limits.maxResponseBody,
  });
  const h = { handler, lines, counts, provider: xmlAnswer(REGISTRATION), bridgeError: undefined, agentReset: undefined } as Omit<Harness, 'front' | 'get'> & Partial<Harness>;
  const provider = await listen((req, res) => h.provider!(req, res));
  const pair = await sessionPair();
  const agentConfig = parseAgentConfig({ relay: 'ws://127.0.0.1:9', token: 'a.b.c', tunnels: { cioc: { target: provider.url } } }, 'agent.yaml', {});
  const agentLog = captureLog();
  const requests = new TunnelRequests(agentConfig, agentLog.log);
  pair.agent.on('exchange', (ex) => (h.agentReset ? ex.reset(h.agentReset) : requests.serve(ex)));
  const front = await listen((req, res) => {
    const ctx: ExchangeContext = { requestId: 'req-1', tunnel: 'cioc', method: req.method ?? 'GET', url: req.url ?? '/' };
    if (h.bridgeError) {
      handler.sendError(res, h.bridgeError, ctx);
      return;
    }
    const ex = pair.relay.request({ kind: 'http', tunnel: 'cioc', method: ctx.method, target: ctx.url, headers: ['Host', 'relay.example'], requestId: ctx.requestId }, true);
    ex.once('response', (head) => {
      ex.on('data', () => undefined); // the request handler counts bytes here
      handler.respond(ex, head, res, ctx);
    });
    ex.once('reset', (err) => {
      if (res.headersSent) res.destroy();
      else handler.sendError(res, err, ctx);
    });
    res.once('close', () => {
      if (!ex.closed) ex.reset(new CtbridgeError('CTB_CANCELLED', 'the caller went away'));
    });
  });
  open.push(async () => {
    await front.close();
    await requests.destroy();
    await pair.close();
    await provider.close();
  });
  h.front = front;
  h.get = (path: string, method?: string) => request(`${front.url}${path}`, method ? { method } : {});
  return h as Harness;
}

function expectXmlError(answer: Awaited<ReturnType<typeof request>>, code: string, status = 200): string {
  expect(answer.status).toBe(status);
  expect(answer.headers['x-ctbridge-error']).toBe(code);
  expect(answer.headers['x-ctbridge-request-id']).toBe('req-1');
  expect(answer.headers['content-type']).toBe('application/xml; charset=utf-8');
  expect(Number(answer.headers['content-length'])).toBe(answer.body.length);
  expect(validateXml('resourceInfo', answer.body)).toEqual({ ok: true });
  const text = errorTextOf(answer.text);
  expect(text).toBeDefined();
  return text as string;
}

describe('clienttracker kind: registration', () => {
  it('rewrites the server-called URLs to the tunnel, placeholders and query intact, browser URLs untouched', async () => {
    const h = await harness();
    const res = await h.get('/ct/ctregister.asp');
    expect(res.status).toBe(200);
    expect(res.headers['x-ctbridge-error']).toBeUndefined();
    expect(res.headers['x-ctbridge-request-id']).toBe('req-1');
    expect(res.headers['content-type']).toBe('application/xml; charset=utf-8');
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
    const expected = REGISTRATION.replace(
      '<resourceInfoURL>https://intranet.example/ct/ctfetch.asp?',
      `<resourceInfoURL>${PUBLIC}/ct/ctfetch.asp?`,
    ).replace('<resourceTaxonomyInfoURL>https://INTRANET.example:443/ct/', `<resourceTaxonomyInfoURL>${PUBLIC}/ct/`);
    expect(res.text).toBe(expected);
    expect(res.text).toContain(`<resourceInfoURL>${PUBLIC}/ct/ctfetch.asp?num=[ID]&amp;lang=fr&amp;token=s3cr3t</resourceInfoURL>`);
    expect(res.text).toContain(`<resourceTaxonomyInfoURL>${PUBLIC}/ct/ctfetchtax.asp?IDList=[IDS]</resourceTaxonomyInfoURL>`);
    expect(res.text).toContain('<launchURL>https://intranet.example/ct/ctlaunch.asp?ctid=[CTID]&amp;login=[LOGIN]&amp;key=[KEY]</launchURL>');
    expect(res.text).toContain('<resourceSummaryURL>https://intranet.example/printlist.asp?IDList=[IDS]</resourceSummaryURL>');
    expect(res.text).toContain('<resourceEmailURL>https://intranet.example/recordlist?IDList=[IDS]</resourceEmailURL>');
    expect(res.text).not.toContain('%5B');
    expect(validateXml('registration', res.body)).toEqual({ ok: true });

    const line = h.lines.find((l) => l.msg === 'registration URLs rewritten');
    expect(line).toMatchObject({
      level: 30,
      tunnel: 'cioc',
      requestId: 'req-1',
      rewritten: [
        {
          element: 'resourceInfoURL',
          from: 'https://intranet.example/ct/ctfetch.asp?num=[ID]&lang=fr&token=[REDACTED]',
          to: `${PUBLIC}/ct/ctfetch.asp?num=[ID]&lang=fr&token=[REDACTED]`,
        },
        { element: 'resourceTaxonomyInfoURL', from: 'https://INTRANET.example:443/ct/ctfetchtax.asp?IDList=[IDS]', to: `${PUBLIC}/ct/ctfetchtax.asp?IDList=[IDS]` },
      ],
    });
    expect(JSON.stringify(h.lines)).not.toContain('s3cr3t');
    expect(h.counts).toContainEqual({ name: CT_METRICS.rewrites, labels: { tunnel: 'cioc' } });
  });

  it('rewrites browser URLs only when configured, and keeps a BOM and leading blank lines byte for byte', async () => {
    const h = await harness({ rewrite: ['launchURL', 'resourceInfoURL'] });
    const original = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`\n\n${REGISTRATION}`)]);
    h.provider = xmlAnswer(original);
    const res = await h.get('/ct/ctregister.asp');
    expect(res.body.subarray(0, 5)).toEqual(Buffer.from([0xef, 0xbb, 0xbf, 0x0a, 0x0a]));
    expect(res.text).toContain(`<launchURL>${PUBLIC}/ct/ctlaunch.asp?ctid=[CTID]&amp;login=[LOGIN]&amp;key=[KEY]</launchURL>`);
    expect(res.text).toContain(`<resourceInfoURL>${PUBLIC}/ct/ctfetch.asp?num=[ID]`);
    expect(res.text).toContain('<resourceTaxonomyInfoURL>https://INTRANET.example:443/ct/ctfetchtax.asp?IDList=[IDS]</resourceTaxonomyInfoURL>');
    expect(validateXml('registration', res.body)).toEqual({ ok: true });
    // The launch URL's [KEY] placeholder is redacted in the log like any key value.
    expect(h.lines.find((l) => l.msg === 'registration URLs rewritten')?.rewritten).toContainEqual({
      element: 'launchURL',
      from: 'https://intranet.example/ct/ctlaunch.asp?ctid=[CTID]&login=[LOGIN]&key=[REDACTED]',
      to: `${PUBLIC}/ct/ctlaunch.asp?ctid=[CTID]&login=[LOGIN]&key=[REDACTED]`,
    });
  });

  it('leaves a URL that already points at the relay alone', async () => {
    const h = await harness();
    const already = REGISTRATION.replace('https://intranet.example/ct/ctfetch.asp', `${PUBLIC}/ct/ctfetch.asp`);
    h.provider = xmlAnswer(already);
    const res = await h.get('/ct/ctregister.asp');
    expect(res.text).toContain(`<resourceInfoURL>${PUBLIC}/ct/ctfetch.asp?num=[ID]`);
    expect(res.text).not.toContain('/t/cioc/t/cioc/');
    const line = h.lines.find((l) => String(l.msg).startsWith('registration URLs rewritten'));
    expect(line?.skipped).toEqual([{ element: 'resourceInfoURL', url: `${PUBLIC}/ct/ctfetch.asp?num=[ID]&lang=fr&token=[REDACTED]`, reason: 'already the public URL' }]);
  });

  it('decompresses a gzip answer to rewrite it, and sends the result uncompressed', async () => {
    const h = await harness();
    h.provider = xmlAnswer(gzipSync(REGISTRATION), 200, { 'content-encoding': 'gzip', etag: '"abc"' });
    const res = await h.get('/ct/ctregister.asp');
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers.etag).toBeUndefined();
    expect(res.text).toContain(`<resourceInfoURL>${PUBLIC}/ct/ctfetch.asp?num=[ID]`);
    expect(validateXml('registration', res.body)).toEqual({ ok: true });
  });

  it('passes a valid fetch answer through byte for byte, with the provider headers', async () => {
    const h = await harness({ validation: 'enforce' });
    const item = `<?xml version="1.0" encoding="UTF-8"?>\n<response xmlns="${NS}"><resourceInfo><id>ZZZ00123</id><name>Food Bank</name><url>https://intranet.example/record/ZZZ00123</url></resourceInfo></response>\n`;
    h.provider = xmlAnswer(item, 200, { 'x-provider': 'kept', 'set-cookie': 'ASPSESSIONID=1; path=/', connection: 'close' });
    const res = await h.get('/ct/ctfetch.asp?num=ZZZ00123');
    expect(res.text).toBe(item);
    expect(res.headers['x-provider']).toBe('kept');
    expect(res.headers['set-cookie']).toEqual(['ASPSESSIONID=1; path=/']);
    expect(h.lines.filter((l) => (l.level ?? 0) >= 40)).toEqual([]);
  });
});

describe('clienttracker kind: validation modes', () => {
  it('report: passes the https-namespace quirk through untouched and reports it', async () => {
    const h = await harness({ validation: 'report' });
    h.provider = xmlAnswer(QUIRK);
    const res = await h.get('/ct/ctfetch.asp?num=1');
    expect(res.status).toBe(200);
    expect(res.text).toBe(QUIRK);
    expect(res.headers['x-ctbridge-error']).toBeUndefined();
    const warn = h.lines.find((l) => l.msg === 'provider answer violates the schema');
    expect(warn).toMatchObject({ level: 40, reason: 'namespace-quirk', action: 'passed through', mode: 'report' });
    expect(h.counts).toContainEqual({ name: CT_METRICS.answerProblems, labels: { tunnel: 'cioc', reason: 'namespace-quirk', mode: 'report' } });
  });

  it('enforce: still passes the quirk (docs/client-tracker-protocol.md: never an outage for it)', async () => {
    const h = await harness({ validation: 'enforce' });
    h.provider = xmlAnswer(QUIRK);
    const res = await h.get('/ct/ctfetch.asp?num=1');
    expect(res.text).toBe(QUIRK);
  });

  it('report: passes an invalid answer through untouched, logs the issues and counts them', async () => {
    const h = await harness({ validation: 'report' });
    h.provider = xmlAnswer(ITEM_WITHOUT_URL);
    const res = await h.get('/ct/ctfetch.asp?num=ZZZ00123');
    expect(res.text).toBe(ITEM_WITHOUT_URL);
    expect(res.headers['x-ctbridge-error']).toBeUndefined();
    const warn = h.lines.find((l) => l.msg === 'provider answer violates the schema');
    expect(warn).toMatchObject({ level: 40, reason: 'schema', kind: 'resourceInfo', path: '/ct/ctfetch.asp?num=ZZZ00123', action: 'passed through' });
    expect(warn?.issues).toEqual([expect.objectContaining({ line: 3, element: 'resourceInfo' })]);
    expect(h.counts).toContainEqual({ name: CT_METRICS.answerProblems, labels: { tunnel: 'cioc', reason: 'schema', mode: 'report' } });
  });

  it('enforce: replaces an invalid answer with an XML error naming line and element', async () => {
    const h = await harness({ validation: 'enforce' });
    h.provider = xmlAnswer(ITEM_WITHOUT_URL);
    const text = expectXmlError(await h.get('/ct/ctfetch.asp?num=ZZZ00123'), 'CTB_UPSTREAM_INVALID');
    expect(text).toMatch(/^The provider behind 'cioc' answered with XML that is not a valid Client Tracker answer \(line 3, element <resourceInfo>: .*url.*\); ask the provider's developers to correct it\.$/);
    expect(h.lines.find((l) => l.msg === 'provider answer violates the schema')).toMatchObject({ action: 'replaced with an XML error' });
  });

  it('enforce: an HTML 500 page becomes CTB_UPSTREAM_INVALID naming status and content type', async () => {
    const h = await harness({ validation: 'enforce' });
    h.provider = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' });
      res.end(HTML_500);
    };
    const text = expectXmlError(await h.get('/ct/ctfetch.asp?num=1'), 'CTB_UPSTREAM_INVALID');
    expect(text).toBe(
      "The provider behind 'cioc' answered something that is not Client Tracker XML (HTTP 500, text/html); ask your IT team to check the provider's web site for errors.",
    );
    expect(h.lines.find((l) => l.msg === 'provider answer is not Client Tracker XML')).toMatchObject({ detail: 'an HTML page', status: 500 });
  });

  it('report: an HTML 500 page passes through untouched, and is logged', async () => {
    const h = await harness();
    h.provider = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end(HTML_500);
    };
    const res = await h.get('/ct/ctfetch.asp?num=1');
    expect(res.status).toBe(500);
    expect(res.text).toBe(HTML_500);
    expect(res.headers['x-ctbridge-error']).toBeUndefined();
    expect(h.lines.find((l) => l.msg === 'provider answer is not Client Tracker XML')).toMatchObject({ level: 40, action: 'passed through' });
  });

  it('enforce: JSON and empty answers are not Client Tracker XML', async () => {
    const h = await harness({ validation: 'enforce' });
    h.provider = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    expect(expectXmlError(await h.get('/x'), 'CTB_UPSTREAM_INVALID')).toContain('(HTTP 200, application/json)');
    h.provider = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    expect(expectXmlError(await h.get('/x'), 'CTB_UPSTREAM_INVALID')).toContain('(HTTP 503, no content type)');
  });

  it('a DOCTYPE is never passed on in enforce mode, and passed but logged in report mode', async () => {
    const doctype = `<?xml version="1.0"?>\n<!DOCTYPE response [<!ENTITY x "y">]>\n<response xmlns="${NS}"><error>&x;</error></response>`;
    const enforce = await harness({ validation: 'enforce' });
    enforce.provider = xmlAnswer(doctype);
    const text = expectXmlError(await enforce.get('/x'), 'CTB_UPSTREAM_INVALID');
    expect(text).toContain('line 2: the answer contains a <!DOCTYPE>');
    const report = await harness({ validation: 'report' });
    report.provider = xmlAnswer(doctype);
    expect((await report.get('/x')).text).toBe(doctype);
    expect(report.lines.find((l) => l.msg === 'provider answer violates the schema')).toMatchObject({ reason: 'doctype' });
  });

  it('off: passes anything through without logging, but still rewrites', async () => {
    const h = await harness({ validation: 'off' });
    h.provider = xmlAnswer(ITEM_WITHOUT_URL);
    expect((await h.get('/x')).text).toBe(ITEM_WITHOUT_URL);
    h.provider = xmlAnswer(REGISTRATION);
    expect((await h.get('/ct/ctregister.asp')).text).toContain(`<resourceInfoURL>${PUBLIC}/ct/ctfetch.asp?num=[ID]`);
    expect(h.lines.filter((l) => (l.level ?? 0) >= 40)).toEqual([]);
  });
});

describe('clienttracker kind: answers without a body', () => {
  it('passes HEAD and 304 answers through as they are, without reading them as XML', async () => {
    const h = await harness({ validation: 'enforce' });
    h.provider = (req, res) => {
      res.writeHead(req.method === 'HEAD' ? 200 : 304, { 'content-type': 'text/html', etag: '"v1"' });
      res.end();
    };
    const head = await h.get('/ct/ctfetch.asp?num=1', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['x-ctbridge-error']).toBeUndefined();
    expect(head.headers['content-type']).toBe('text/html');
    expect(head.headers['x-ctbridge-request-id']).toBe('req-1');
    const notModified = await h.get('/ct/ctfetch.asp?num=1');
    expect(notModified.status).toBe(304);
    expect(notModified.headers.etag).toBe('"v1"');
    expect(h.lines.filter((l) => (l.level ?? 0) >= 40)).toEqual([]);
  });
});

describe('clienttracker kind: errors', () => {
  it("turns the agent's error, carried as data, into the XML error for its code, keeping the code", async () => {
    const h = await harness();
    h.agentReset = new CtbridgeError('CTB_TARGET_UNREACHABLE', "tunnel 'cioc': connect ECONNREFUSED 10.0.0.5:80 for /ct/ctfetch.asp?key=SECRETKEY");
    expect(expectXmlError(await h.get('/ct/ctfetch.asp?num=1&key=SECRETKEY'), 'CTB_TARGET_UNREACHABLE')).toBe(
      "The on-premise ctbridge agent for 'cioc' could not reach the provider's server; ask your IT team to check that the provider's web site is running.",
    );
    h.agentReset = new CtbridgeError('CTB_TARGET_TIMEOUT', "tunnel 'cioc': the target sent nothing for 10s", { params: { seconds: 10 } });
    expect(expectXmlError(await h.get('/x'), 'CTB_TARGET_TIMEOUT')).toContain('did not answer within 10 seconds');
    h.agentReset = new CtbridgeError('CTB_TARGET_BAD_RESPONSE', 'HPE_INVALID_CONSTANT');
    expect(expectXmlError(await h.get('/x'), 'CTB_TARGET_BAD_RESPONSE')).toBe(
      "The provider's server behind 'cioc' sent an answer that is not valid HTTP; ask your IT team to check the provider's web site and its logs.",
    );
    expect(JSON.stringify(h.lines)).not.toContain('SECRETKEY');
  });

  it("a real agent failure reaches the caller as XML: the provider's server refusing connections", async () => {
    const h = await harness();
    h.provider = (req) => req.socket.destroy(); // closes without answering
    expect(expectXmlError(await h.get('/ct/ctfetch.asp?num=1'), 'CTB_TARGET_UNREACHABLE')).toContain("could not reach the provider's server");
  });

  it('an answer over the limit becomes CTB_BODY_TOO_LARGE (chunked, or with a length)', async () => {
    const h = await harness({}, { limits: { maxResponseBody: '1KiB' } });
    h.provider = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/xml' }); // chunked: counted while reading
      res.write(`<response xmlns="${NS}"><resourceInfo><name>`);
      res.end(`${'x'.repeat(4000)}</name></resourceInfo></response>`);
    };
    const text = expectXmlError(await h.get('/x'), 'CTB_BODY_TOO_LARGE');
    expect(text).toBe(
      "The provider's answer for 'cioc' is larger than the bridge allows (1024 bytes); ask the relay operator to raise the limit if such answers are expected.",
    );
    h.provider = xmlAnswer('y'.repeat(2000));
    expectXmlError(await h.get('/x'), 'CTB_BODY_TOO_LARGE');
    expect(h.lines.find((l) => l.msg === "provider's answer is larger than the limit")).toMatchObject({ limit: 1024 });
  });

  it('caps answers at 10 MiB when limits.maxResponseBody is 0 (unlimited), and abandons the rest', async () => {
    expect(DEFAULT_MAX_ANSWER).toBe(10 * 1024 * 1024);
    const h = await harness();
    let closed: Promise<void> | undefined;
    h.provider = (_req, res) => {
      // Declares more than the cap and sends one byte past it, then waits: the relay must not wait for the rest.
      res.writeHead(200, { 'content-type': 'application/xml', 'content-length': String(DEFAULT_MAX_ANSWER + 100) });
      res.write(Buffer.alloc(DEFAULT_MAX_ANSWER + 1, 0x20));
      closed = new Promise((resolve) => res.on('close', () => resolve()));
    };
    expect(expectXmlError(await h.get('/x'), 'CTB_BODY_TOO_LARGE')).toContain(`(${DEFAULT_MAX_ANSWER} bytes)`);
    await closed; // the exchange was reset, and the agent abandoned the provider's response
  });

  it('sendError: the agent-not-connected sentence, status errorStatus (default 200), code and request id headers', async () => {
    const h = await harness();
    h.bridgeError = new CtbridgeError('CTB_AGENT_NOT_CONNECTED', "the on-premise agent for tunnel 'cioc' is not connected to the relay");
    expect(expectXmlError(await h.get('/x'), 'CTB_AGENT_NOT_CONNECTED', 200)).toBe(
      "The on-premise ctbridge agent for 'cioc' is not connected to the relay; ask your IT team to check the agent service.",
    );
    expect(h.counts).toContainEqual({ name: CT_METRICS.errors, labels: { tunnel: 'cioc', code: 'CTB_AGENT_NOT_CONNECTED' } });
  });

  it('sendError honours clientTracker.errorStatus', async () => {
    const h = await harness({ errorStatus: 502 });
    h.bridgeError = new CtbridgeError('CTB_TARGET_UNREACHABLE', 'x');
    expectXmlError(await h.get('/x'), 'CTB_TARGET_UNREACHABLE', 502);
  });

  it('sendError: timeouts in seconds from the error\'s params, never from (or with) its message', async () => {
    const h = await harness();
    h.bridgeError = new CtbridgeError('CTB_REQUEST_TIMEOUT', "tunnel 'cioc' did not complete the request within 45000 ms", { params: { seconds: 45 } });
    expect(expectXmlError(await h.get('/x'), 'CTB_REQUEST_TIMEOUT')).toBe(
      "The provider behind 'cioc' did not answer within 45 seconds; try again, and if it keeps happening ask your IT team to check that the provider's web site is running.",
    );
    h.bridgeError = new CtbridgeError('CTB_TARGET_TIMEOUT', 'stuck for 20000 ms');
    expect(expectXmlError(await h.get('/x'), 'CTB_TARGET_TIMEOUT')).toContain('did not answer in time;');
    h.bridgeError = new CtbridgeError('CTB_BAD_REQUEST', 'path "/ct/x?key=SECRETKEY" contains a ".." segment');
    const text = expectXmlError(await h.get('/x'), 'CTB_BAD_REQUEST');
    expect(text).not.toContain('SECRETKEY');
    expect(text).not.toMatch(/\bat \w+ \(/); // no stack trace
  });

  it('has a plain-words sentence for every bridge code on the path to Client Tracker', async () => {
    const h = await harness();
    for (const [code, expected] of [
      ['CTB_PATH_NOT_ALLOWED', "The relay does not open this address of the provider behind 'cioc'"],
      ['CTB_SOURCE_NOT_ALLOWED', "The relay does not accept calls for 'cioc' from this Client Tracker server's address"],
      ['CTB_AGENT_BUSY', "The on-premise ctbridge agent for 'cioc' is handling too many requests"],
      ['CTB_AGENT_DISCONNECTED', "The connection to the on-premise ctbridge agent for 'cioc' dropped"],
      ['CTB_SHUTTING_DOWN', "The bridge for 'cioc' is restarting"],
    ] as const) {
      h.bridgeError = new CtbridgeError(code, 'internal detail');
      const text = expectXmlError(await h.get('/x'), code);
      expect(text.startsWith(expected)).toBe(true);
      expect(text).not.toContain('internal detail');
    }
  });
});
