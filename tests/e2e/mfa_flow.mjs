// Two-step sign-in in Chromium (issue 15): the password on the hosted sign-in page leads to
// the code page; a wrong code shows the error there; the right one opens the account page.
// Then, in a fresh browser, "Use a recovery code instead" does the same with a recovery code.
//
// Inputs (environment): LK_ISSUER, LK_EMAIL, LK_PASSWORD, LK_WRONG_CODE, LK_CODE,
// LK_RECOVERY_CODE, SCREENSHOT_DIR. Prints `E2E_RESULT <json>`.
import { need, run, Shots, log } from './lib.mjs';

const issuer = new URL(need('LK_ISSUER'));
const email = need('LK_EMAIL');
const password = need('LK_PASSWORD');

async function password_step(page) {
  await page.goto(new URL('/login', issuer).href);
  await page.locator('#username').fill(email);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#otp').waitFor({ state: 'visible' });
}

run('mfa_flow', async ({ browser, page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  log('password, then the code page');
  await password_step(page);
  await shots.both(page, 'sign-in-second-step');
  await page.locator('#otp').fill(need('LK_WRONG_CODE'));
  await page.getByRole('button', { name: 'Verify' }).click();
  const error = page.locator('p.err');
  await error.waitFor({ state: 'visible' });
  const errorText = await error.innerText();
  await shots.both(page, 'sign-in-second-step-wrong-code');
  await page.locator('#otp').fill(need('LK_CODE'));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  const account = await page.locator('main').innerText();

  log('a recovery code, in a fresh browser');
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const other = await context.newPage();
  await password_step(other);
  await other.locator('summary').click();
  await other.locator('#recovery_code').waitFor({ state: 'visible' });
  await shots.both(other, 'sign-in-recovery-code');
  await other.locator('#recovery_code').fill(need('LK_RECOVERY_CODE'));
  await other.getByRole('button', { name: 'Use recovery code' }).click();
  await other.waitForURL((u) => u.pathname === '/account');
  await context.close();

  return { error_text: errorText, account_text: account, screenshots: shots.taken };
});
