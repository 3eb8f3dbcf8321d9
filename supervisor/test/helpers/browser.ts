// A real browser for the admin page's tests: Debian's Chromium, headless,
// driven by playwright-core (no browser download: the system one is used).
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { run } from './env.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface TestBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Saves a PNG of the page as `<artifacts>/<name>.png`. */
  shot(name: string): Promise<void>;
  /** Closes it; throws if a Chromium process of it is still there afterwards. */
  close(): Promise<void>;
}

/**
 * Chromium in network namespace `netns`, with its profile in `profileDir`
 * (so the test can tell its own processes from anyone else's), trusting the
 * page's self-signed certificate.
 */
export async function openBrowser(netns: string, profileDir: string, artifactsDir: string): Promise<TestBrowser> {
  await mkdir(artifactsDir, { recursive: true });
  // Playwright starts the executable itself and talks to it over inherited pipes, which exec keeps.
  const launcher = join(dirname(profileDir), 'chromium-in-netns');
  await writeFile(launcher, `#!/bin/sh\nexec ip netns exec ${netns} ${CHROMIUM} "$@"\n`);
  await chmod(launcher, 0o755);
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: launcher,
    headless: true,
    // Root has no user namespace sandbox here; the page is our own.
    args: ['--no-sandbox'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
    acceptDownloads: true,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    shot: async (name) => void (await page.screenshot({ path: join(artifactsDir, `${name}.png`), fullPage: true })),
    close: async () => {
      await context.close();
      const { stdout } = await run('pgrep', ['-af', profileDir]).catch(() => ({ stdout: '' }));
      if (stdout.trim() !== '') throw new Error(`Chromium left running: ${stdout.trim()}`);
    },
  };
}
