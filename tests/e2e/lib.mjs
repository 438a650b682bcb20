// What the browser scripts share: launching Debian's Chromium through playwright-core,
// screenshots of the hosted pages at a desktop and a phone width, driving Latchkey's sign-in
// and consent pages, and the one JSON line each script prints for the Rust test.
//
// The scripts are run by tests/api/browser.rs; they take their inputs as environment
// variables and print `E2E_RESULT <json>` on success. Anything unexpected throws: the script
// exits non-zero with the page's URL, a screenshot (failure-*.png) and the browser console.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.LK_E2E_CHROMIUM || '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };
const STEP_TIMEOUT_MS = Number(process.env.LK_E2E_STEP_TIMEOUT_MS || 15000);

/** An input the Rust test must give. */
export function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function log(...args) {
  console.error(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
}

/** Launches Chromium (never downloads one: it must be installed, see scripts/test.sh). */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is required for the browser tests and is missing at ${CHROMIUM}: ` +
        'run scripts/test.sh (it installs Debian\'s chromium), or apt-get install chromium',
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: 30000,
  });
  const context = await browser.newContext({ viewport: DESKTOP });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) =>
    consoleLines.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`),
  );
  return { browser, context, page, consoleLines };
}

/** Saves screenshots of what the page shows at the desktop and the phone width. */
export class Shots {
  constructor(dir) {
    this.dir = dir;
    this.taken = [];
    this.n = 0;
    if (dir) mkdirSync(dir, { recursive: true });
  }

  async both(page, name) {
    if (!this.dir) return;
    this.n += 1;
    const base = `${String(this.n).padStart(2, '0')}-${name}`;
    for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await page.setViewportSize(size);
      const file = join(this.dir, `${base}-${label}.png`);
      await page.screenshot({ path: file, fullPage: true });
      this.taken.push(file);
    }
    await page.setViewportSize(DESKTOP);
  }

  async desktop(page, name) {
    if (!this.dir) return;
    this.n += 1;
    const file = join(this.dir, `${String(this.n).padStart(2, '0')}-${name}-desktop.png`);
    await page.screenshot({ path: file, fullPage: true });
    this.taken.push(file);
  }
}

/**
 * On Latchkey's sign-in page (reached from /oauth2/authorize): optionally one wrong password
 * first (the error page gets its screenshots too), then the right one; the consent page is
 * answered "Allow" if it comes. Returns whether consent was asked.
 */
export async function signIn(page, shots, { username, password, wrongPasswordFirst = false }) {
  const user = page.locator('input[name="username"]');
  await user.waitFor({ state: 'visible' });
  const idp = new URL(page.url()).origin;
  const autocomplete = await user.getAttribute('autocomplete');
  if (autocomplete !== 'username') {
    throw new Error(`the username input has autocomplete=${autocomplete}, not username`);
  }
  await shots.both(page, 'sign-in');
  if (wrongPasswordFirst) {
    await user.fill(username);
    await page.locator('input[name="password"]').fill(`${password} but wrong`);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    await page.locator('input[name="password"]').waitFor({ state: 'visible' });
    await shots.both(page, 'sign-in-error');
  }
  await page.locator('input[name="username"]').fill(username);
  await page.locator('input[name="password"]').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Either the consent page (third-party clients) or straight back to the client.
  const allow = page.getByRole('button', { name: 'Allow' });
  // Each branch settles (a rejection of the loser must not go unhandled).
  const outcome = await Promise.race([
    allow.waitFor({ state: 'visible' }).then(() => 'consent', () => 'timeout'),
    page.waitForURL((u) => u.origin !== idp).then(() => 'back', () => 'timeout'),
  ]);
  if (outcome === 'timeout') {
    throw new Error('after "Sign in", neither the consent page nor the client came');
  }
  const consent = outcome === 'consent';
  if (consent) {
    await shots.both(page, 'consent');
    await allow.click();
  }
  return consent;
}

/** Runs `body`; on failure prints where the browser was, saves a screenshot and exits 1. */
export async function run(name, body) {
  const started = Date.now();
  let session;
  try {
    session = await launch();
    const result = await body(session);
    result.elapsed_ms = Date.now() - started;
    console.log(`E2E_RESULT ${JSON.stringify(result)}`);
    await session.browser.close();
  } catch (e) {
    console.error(`${name} failed: ${e && e.stack ? e.stack : e}`);
    if (session) {
      const { page, consoleLines } = session;
      console.error(`the browser was at: ${page.url()}`);
      try {
        const text = await page.locator('body').innerText({ timeout: 2000 });
        console.error(`the page said:\n${text.slice(0, 2000)}`);
      } catch {
        /* no page to read */
      }
      const dir = process.env.SCREENSHOT_DIR;
      if (dir) {
        try {
          mkdirSync(dir, { recursive: true });
          await page.screenshot({ path: join(dir, `failure-${name}.png`), fullPage: true });
          console.error(`screenshot: ${join(dir, `failure-${name}.png`)}`);
        } catch {
          /* the page is gone */
        }
      }
      console.error(`browser console:\n${consoleLines.join('\n')}`);
      await session.browser.close().catch(() => {});
    }
    process.exit(1);
  }
}
