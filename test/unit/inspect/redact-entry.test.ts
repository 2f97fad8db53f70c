/**
 * What the inspector keeps never holds a secret: a secret header value, a
 * secret query value, a JSON or form field named as a secret, a Client
 * Tracker `<key>`, or a log.redact name; in the entry, its JSON, and the
 * pages rendered from it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { exchangePage, exchangesPage } from '../../../src/admin/exchanges-page.js';
import type { RawExchange } from '../../../src/inspect/entry.js';
import { BodyTap, issueText, keepBody, keepHeaderObject, keepHeaders, redactBodyText, redactJson, redactXml, toEntry } from '../../../src/inspect/redact-entry.js';
import { ExchangeRing } from '../../../src/inspect/ring.js';
import { configureRedaction } from '../../../src/redact.js';

const SECRETS = ['Bearer-S3cr3t-AUTH', 'sess-C00kie-V4lue', 'qs-T0ken-Value', 'json-P4ssw0rd', 'ct-K3y-Value', 'x-Api-K3y-Value', 'form-S3cret'];

afterEach(() => configureRedaction([]));

describe('redaction of what the inspector keeps', () => {
  it('replaces secret header values (Authorization, cookies, log.redact names) and secret queries in URL headers', () => {
    configureRedaction(['x-api-key']);
    const kept = keepHeaders([
      'Authorization', `Bearer ${SECRETS[0]}`, 'Cookie', `s=${SECRETS[1]}`, 'X-Api-Key', SECRETS[5],
      'Referer', `https://x.example/p?token=${SECRETS[2]}`, 'Accept', 'text/html',
    ]);
    expect(kept).toEqual([
      ['Authorization', '[REDACTED]'], ['Cookie', '[REDACTED]'], ['X-Api-Key', '[REDACTED]'],
      ['Referer', 'https://x.example/p?token=[REDACTED]'], ['Accept', 'text/html'],
    ]);
    expect(keepHeaderObject({ 'set-cookie': [`a=${SECRETS[1]}`, 'b=2'], 'content-length': 5 })).toEqual([
      ['set-cookie', '[REDACTED]'], ['set-cookie', '[REDACTED]'], ['content-length', '5'],
    ]);
  });

  it('replaces JSON fields named as secrets, in whole and cut documents, nested or not', () => {
    const whole = redactJson(JSON.stringify({ user: 'bob', password: SECRETS[3], inner: { Token: SECRETS[2], list: [{ api_key: 'k' }] } }));
    expect(whole).not.toContain(SECRETS[3]);
    expect(whole).not.toContain(SECRETS[2]);
    expect(JSON.parse(whole)).toEqual({ user: 'bob', password: '[REDACTED]', inner: { Token: '[REDACTED]', list: [{ api_key: '[REDACTED]' }] } });
    const cut = redactJson(`{"user":"bob","password":"${SECRETS[3]}","more":"abc`);
    expect(cut).toBe('{"user":"bob","password":"[REDACTED]","more":"abc');
    expect(redactJson(`{"a":1,"secret":"${SECRETS[3].slice(0, 5)}`)).toBe('{"a":1,"secret":"[REDACTED]"');
  });

  it('replaces a Client Tracker <key> (with or without a prefix, cut or whole) and secret attributes', () => {
    const xml = `<?xml version="1.0"?><isInRequest xmlns="https://clienttracker.cioc.ca/schema/"><login>jsmith</login><key>${SECRETS[4]}</key><ctid>42</ctid></isInRequest>`;
    const out = redactXml(xml);
    expect(out).not.toContain(SECRETS[4]);
    expect(out).toContain('<key>[REDACTED]</key><ctid>42</ctid>');
    expect(redactXml(`<ct:key>${SECRETS[4]}</ct:key>`)).toBe('<ct:key>[REDACTED]</ct:key>');
    expect(redactXml(`<a><key>${SECRETS[4].slice(0, 6)}`)).toBe('<a><key>[REDACTED]');
    expect(redactXml(`<a token="${SECRETS[2]}" b="1"/>`)).toBe('<a token="[REDACTED]" b="1"/>');
  });

  it('replaces a <key> that comes as CDATA, behind a comment, or cut inside its CDATA', () => {
    expect(redactXml(`<key><![CDATA[${SECRETS[4]}]]></key><ctid>42</ctid>`)).toBe('<key>[REDACTED]</key><ctid>42</ctid>');
    expect(redactXml(`<key><!-- x -->${SECRETS[4]}</key>`)).toBe('<key>[REDACTED]</key>');
    expect(redactXml(`<key><![CDATA[${SECRETS[4].slice(0, 6)}`)).toBe('<key>[REDACTED]');
  });

  it('replaces form fields, by content type or by shape', () => {
    expect(redactBodyText(`user=bob&password=${SECRETS[6]}`, 'application/x-www-form-urlencoded')).toBe('user=bob&password=[REDACTED]');
    expect(redactBodyText(`user=bob&pwd=${SECRETS[6]}`, 'text/plain')).toBe('user=bob&pwd=[REDACTED]');
    expect(redactBodyText(`{"token":"${SECRETS[2]}"}`, undefined)).not.toContain(SECRETS[2]);
  });

  it('keeps the first bytes of a text body; says why for a binary or compressed one', () => {
    const tap = new BodyTap(8);
    tap.add(Buffer.from('hello '));
    tap.add(Buffer.from('world'));
    expect(tap.total).toBe(11);
    expect(tap.whole()).toBeUndefined();
    expect(tap.shown('text/plain', undefined)).toEqual({ bytes: 11, text: 'hello wo', truncated: true });
    expect(keepBody(Buffer.from([1, 2, 3]), 3, 'image/png', undefined)).toEqual({ bytes: 3, note: 'not text (image/png)' });
    expect(keepBody(Buffer.from('x'), 1, 'text/plain', 'gzip')).toEqual({ bytes: 1, note: 'compressed (gzip)' });
    expect(keepBody(Buffer.from('{"a":1}'), 7, 'application/vnd.x+json', undefined).text).toContain('"a": 1');
  });

  it('names an XML problem on a secret element by place only', () => {
    expect(issueText({ line: 3, element: 'key', message: `'${SECRETS[4]}' is not valid` })).toBe('line 3, element <key>');
    expect(issueText({ line: 2, element: 'id', message: 'too long' })).toBe('line 2, element <id>: too long');
  });

  it('an exchange full of secrets shows none of them in its JSON or on the pages', () => {
    configureRedaction(['x-api-key']);
    const body = (text: string, contentType: string) => ({ head: Buffer.from(text), total: text.length, contentType, contentEncoding: undefined });
    // As the data path hands it over: nothing redacted yet.
    const e: RawExchange = {
      side: 'agent', startedAt: Date.now(), requestId: 'r1', tunnel: 'web', kind: 'http', method: 'POST',
      target: `/api?token=${SECRETS[2]}&q=1`, status: 200, durationMs: 2, bytesIn: 10, bytesOut: 10,
      requestHeaders: ['Authorization', SECRETS[0], 'Cookie', SECRETS[1], 'X-Api-Key', SECRETS[5]],
      responseHeaders: ['Set-Cookie', SECRETS[1]],
      requestBody: body(JSON.stringify({ password: SECRETS[3] }), 'application/json'),
      responseBody: body(`<isInRequest><key>${SECRETS[4]}</key></isInRequest>`, 'text/xml'),
      ct: { message: 'isInRequest', validation: 'invalid', firstError: issueText({ line: 1, element: 'key', message: SECRETS[4] }) },
    };
    const ring = new ExchangeRing({ entries: 10, maxBytes: 1024 ** 2 });
    const streamed: string[] = [];
    ring.subscribe((x) => streamed.push(JSON.stringify(x)));
    ring.record(e);
    const outputs = [
      JSON.stringify(ring.list()), JSON.stringify(toEntry(e, 1)), streamed.join(''),
      exchangesPage('agent', ring, {}, ring.list()), exchangePage('agent', 'r1', ring.get('r1')),
      JSON.stringify(ring.replaySource('r1') ?? null),
    ];
    expect(streamed).toHaveLength(1);
    for (const out of outputs) for (const s of SECRETS) expect(out).not.toContain(s);
    expect(outputs[4]).toContain('[REDACTED]');
    expect(outputs[4]).toContain('/api?token=[REDACTED]&amp;q=1');
  });
});
