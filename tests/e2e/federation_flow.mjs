// Signing in through an upstream provider, in Chromium: the example SPA (oidc-client-ts)
// asks Latchkey to sign the user in; on the hosted sign-in page the user picks "Continue with
// Google" (a fake Google on loopback, which signs in at once), comes back to Latchkey, and
// then to the app signed in. Then, in a fresh browser, Google asserts the address of an
// existing account without verifying it: the proof page asks for that account's password,
// and the account page then lists the linked Google account. Last, a GitHub account with no
// verified address signs up without one: its account page says so.
//
// Inputs (environment): SPA_URL, LK_ISSUER, LK_PROOF_PASSWORD, SCREENSHOT_DIR.
// Prints `E2E_RESULT <json>`.
import { need, run, Shots, log } from './lib.mjs';

const spaUrl = new URL(need('SPA_URL'));
const issuer = new URL(need('LK_ISSUER'));
const proofPassword = need('LK_PROOF_PASSWORD');

run('federation_flow', async ({ browser, page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  log('open the app');
  await page.goto(spaUrl.href);
  await page.locator('#status[data-state="signed-out"]').waitFor({ state: 'attached' });
  await page.locator('#sign-in').click();
  const google = page.getByRole('link', { name: 'Continue with Google' });
  await google.waitFor({ state: 'visible' });
  await shots.both(page, 'sign-in-with-providers');
  log('continue with Google');
  await google.click();
  await page.waitForURL((u) => u.origin === spaUrl.origin);
  const status = page.locator('#status[data-state="signed-in"], #status[data-state="error"]');
  await status.waitFor({ state: 'attached' });
  if ((await status.getAttribute('data-state')) === 'error') {
    throw new Error(`the app reports: ${await page.locator('#error').innerText()}`);
  }
  const claims = JSON.parse(await page.locator('#claims').innerText());
  await shots.desktop(page, 'spa-signed-in-with-google');

  log('proof of an existing account, in a fresh browser');
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const other = await context.newPage();
  await other.goto(new URL('/federation/google/start', issuer).href);
  const password = other.locator('input[name="password"]');
  await password.waitFor({ state: 'visible' });
  const proofText = await other.locator('main').innerText();
  await shots.both(other, 'federation-proof');
  await password.fill(proofPassword);
  await other.getByRole('button', { name: 'Link and sign in' }).click();
  await other.waitForURL((u) => u.pathname === '/account');
  const account = await other.locator('main').innerText();
  await shots.both(other, 'account-with-links');
  await context.close();

  log('a GitHub account without a verified address, in a fresh browser');
  const third = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const quiet = await third.newPage();
  await quiet.goto(new URL('/federation/github/start', issuer).href);
  await quiet.waitForURL((u) => u.pathname === '/account');
  const noEmail = await quiet.locator('main').innerText();
  await shots.both(quiet, 'account-without-email');
  await third.close();

  return {
    claims,
    proof_text: proofText,
    account_text: account,
    no_email_text: noEmail,
    screenshots: shots.taken,
  };
});
