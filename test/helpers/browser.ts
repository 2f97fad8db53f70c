/**
 * Headless Chromium for the page tests (Debian's chromium, found by
 * test/helpers/system.ts needs('chromium')), started the way this machine
 * allows: no sandbox (root), no background networking (the network is
 * closed), a fresh profile. Dialogs (alert, confirm) are dismissed and
 * collected: a page that opens one is running script it should not.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export async function launchChromium(executablePath: string, viewport: { width: number; height: number }, dialogs: string[]): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'ctbridge-chromium-profile-')), {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport,
  });
  context.on('page', (p) => p.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  }));
  return context;
}
