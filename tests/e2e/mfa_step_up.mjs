// Step-up in Chromium (issue 15). A user signed in on the account pages comes back through an
// application's authorization request:
//  - with max_age=0 and no second factor: "Signed in as ..., enter your password" (the account
//    fixed, not a blank sign-in page); a wrong password shows the error there; the right one
//    goes on to the consent page;
//  - with acr_values=urn:latchkey:acr:mfa: the enrolment page (no "Set up later"), as the user
//    has no second factor.
//
// Inputs (environment): LK_ISSUER, LK_EMAIL, LK_PASSWORD, LK_REAUTH_URL, LK_ACR_URL,
// SCREENSHOT_DIR. Prints `E2E_RESULT <json>`.
import { need, run, Shots, log } from './lib.mjs';

const issuer = new URL(need('LK_ISSUER'));

run('mfa_step_up', async ({ page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  log('sign in on the account pages');
  await page.goto(new URL('/login', issuer).href);
  await page.locator('#username').fill(need('LK_EMAIL'));
  await page.locator('#password').fill(need('LK_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  // The test moves the server's (mock) clock on once the session exists.
  await page.waitForTimeout(500);

  log('max_age=0: the password again, for this account');
  await page.goto(need('LK_REAUTH_URL'));
  await page.locator('#password').waitFor({ state: 'visible' });
  const reauth = await page.locator('main').innerText();
  const username_fields = await page.locator('#username').count();
  await shots.both(page, 'step-up-password');
  await page.locator('#password').fill('not the password');
  await page.getByRole('button', { name: 'Continue' }).click();
  const error = page.locator('p.err');
  await error.waitFor({ state: 'visible' });
  const errorText = await error.innerText();
  await shots.both(page, 'step-up-password-wrong');
  await page.locator('#password').fill(need('LK_PASSWORD'));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Allow' }).waitFor({ state: 'visible' });

  log('acr_values: two factors, and the user has none yet');
  await page.goto(need('LK_ACR_URL'));
  await page.locator('code.key').waitFor({ state: 'visible' });
  const later = await page.getByRole('button', { name: 'Set up later' }).count();
  await shots.both(page, 'step-up-enrolment');
  return {
    reauth_text: reauth,
    username_fields,
    error_text: errorText,
    later_offered: later === 1,
    screenshots: shots.taken,
  };
});
