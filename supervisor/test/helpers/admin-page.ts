// What the admin page's browser tests share: the first-use password, the
// login, and a watch on the page for script errors and CSP refusals.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openBrowser, type TestBrowser } from './browser.js';
import { BUILD } from './env.js';

/** Where the admin page tests keep their screenshots. */
export const ADMIN_ARTIFACTS = join(BUILD, 'test-reports', 'admin-web');

/** Chromium on the management side (`netns`), its profile in the test's directory; with the page's problems watched. */
export async function openAdminBrowser(netns: string, testDir: string): Promise<{ browser: TestBrowser; problems: string[] }> {
  const browser = await openBrowser(netns, join(testDir, 'chromium'), ADMIN_ARTIFACTS);
  return { browser, problems: pageProblems(browser.page) };
}

export async function setPassword(page: Page, password: string, repeat: string): Promise<void> {
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('The same password again').fill(repeat);
  await page.getByRole('button', { name: 'Set password and log in' }).click();
}

export async function logIn(page: Page, password: string): Promise<void> {
  await page.getByLabel('Admin password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Script errors and Content-Security-Policy refusals in the page, as they happen: there must be none. */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return problems;
}

/**
 * Opens `url`, again if Chromium just saw its network namespace's links settle
 * (net::ERR_NETWORK_CHANGED: the laptop's link came up moments before).
 */
export async function openUrl(page: Page, url: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url);
      return;
    } catch (e) {
      if (attempt >= 5 || !String(e).includes('ERR_NETWORK_CHANGED')) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
