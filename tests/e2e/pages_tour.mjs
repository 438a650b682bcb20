// The hosted pages that the app flows do not reach, in Chromium **with JavaScript off** (the
// pages must work without it): the magic-link pages (ask for a link, the code page and a
// wrong code, the link's landing page, signed in to the account page), the account page, the
// form_post answer page (its button, since no script runs), forgot password and its answer,
// the sign-out confirmation and the signed-out page. Screenshots of each at both widths.
//
// Inputs (environment): LK_ISSUER, MAGIC_LINK (a live link asked for on the pages),
// FORM_POST_URL (an authorization request with response_mode=form_post for a first-party
// client), SCREENSHOT_DIR. Prints `E2E_RESULT <json>`.
import { DESKTOP, need, run, Shots, log } from './lib.mjs';

const issuer = new URL(need('LK_ISSUER')).origin;
const magicLink = need('MAGIC_LINK');
const formPostUrl = need('FORM_POST_URL');

async function submit(page, name) {
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name }).click()]);
}

async function text(page) {
  return page.locator('main, body').first().innerText();
}

run('pages_tour', async (session) => {
  const context = await session.browser.newContext({ viewport: DESKTOP, javaScriptEnabled: false });
  const page = await context.newPage();
  session.page = page;
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  const seen = {};

  log('magic link: ask for one');
  await page.goto(`${issuer}/login`);
  await page.getByRole('link', { name: 'Email me a sign-in link' }).click();
  await page.locator('input[name="email"]').waitFor({ state: 'visible' });
  seen.magic_request_autocomplete = await page.locator('input[name="email"]').getAttribute('autocomplete');
  await shots.both(page, 'magic-request');
  await page.locator('input[name="email"]').fill('nobody@example.com');
  await submit(page, 'Email me a link');
  await page.locator('input[name="code"]').waitFor({ state: 'visible' });
  seen.code_autocomplete = await page.locator('input[name="code"]').getAttribute('autocomplete');
  await shots.both(page, 'magic-code');
  await page.locator('input[name="code"]').fill('00000000');
  await submit(page, 'Sign in');
  seen.wrong_code = await text(page);
  await shots.both(page, 'magic-code-wrong');

  log('magic link: follow it');
  await page.goto(magicLink);
  await page.getByRole('button', { name: 'Sign in' }).waitFor({ state: 'visible' });
  await shots.both(page, 'magic-landing');
  await submit(page, 'Sign in');
  if (new URL(page.url()).pathname !== '/account') {
    throw new Error(`the link did not sign in to the account page: ${page.url()}`);
  }
  seen.account = await text(page);
  await shots.both(page, 'account');

  log('form_post answer without script');
  await page.goto(formPostUrl);
  const cont = page.getByRole('button');
  await cont.first().waitFor({ state: 'visible' });
  seen.form_post_fields = await page.locator('form input[type="hidden"]').evaluateAll(
    (inputs) => inputs.map((i) => i.name),
  );
  seen.form_post_action = await page.locator('form').getAttribute('action');
  await shots.both(page, 'form-post');

  log('forgot password');
  await page.goto(`${issuer}/password/forgot`);
  await page.locator('input[name="email"]').fill('nobody@example.com');
  await shots.both(page, 'forgot');
  await submit(page, 'Send the link');
  seen.forgot_answer = await text(page);
  await shots.both(page, 'forgot-sent');

  log('sign out with confirmation');
  await page.goto(`${issuer}/oauth2/logout`);
  await page.getByRole('button', { name: 'Sign out' }).waitFor({ state: 'visible' });
  seen.logout_has_way_back = await page.getByRole('link', { name: 'Stay signed in' }).count();
  await shots.both(page, 'logout-confirm');
  await submit(page, 'Sign out');
  seen.signed_out = await text(page);
  await shots.both(page, 'signed-out');

  await context.close();
  return { ...seen, screenshots: shots.taken };
});
