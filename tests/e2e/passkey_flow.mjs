// Passkeys in Chromium (issue 15), with a virtual authenticator (the Chrome DevTools
// Protocol's WebAuthn domain: CTAP2, resident keys, user verification):
// 1. sign in with the password; on the account page "Add a passkey" registers one (the
//    recovery codes come with this first factor); the page lists it;
// 2. in other browsers holding the same passkey: the browser's passkey autofill signs in
//    with no password typed (the virtual authenticator answers the autofill request as a
//    user picking the passkey would), the answer replayed is refused; in a browser without
//    autofill, a copy of the passkey whose sign counter went back (a clone) is refused and
//    the current one signs in with "Sign in with a passkey";
// 3. the passkey as the second factor: the password, then "Use your passkey" on the
//    two-step page.
//
// Inputs (environment): LK_ISSUER (on a host name: browsers refuse IP addresses as
// relying parties), LK_EMAIL, LK_PASSWORD, SCREENSHOT_DIR. Prints `E2E_RESULT <json>`.
import { need, run, Shots, log, DESKTOP } from './lib.mjs';

const issuer = new URL(need('LK_ISSUER'));
const email = need('LK_EMAIL');
const password = need('LK_PASSWORD');

/** A virtual platform authenticator on `page`'s browser: it answers every ceremony. */
async function authenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      ctap2Version: 'ctap2_1',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

async function passwordStep(page) {
  await page.goto(new URL('/login', issuer).href);
  await page.locator('#username').fill(email);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** A browser without passkey autofill (conditional mediation): the button is the way in. */
async function withoutAutofill(context) {
  await context.addInitScript(() => {
    if (window.PublicKeyCredential) {
      window.PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
    }
  });
}

/** Records the passkey form `page` posts. */
function recordPosts(page) {
  const posted = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/login/passkey') {
      posted.push(r.postData());
    }
  });
  return posted;
}

run('passkey_flow', async ({ browser, context, page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  const first = await authenticator(context, page);

  log('1. the sign-in page offers passkeys; sign in with the password, add one on the account page');
  await page.goto(new URL('/login', issuer).href);
  const autocomplete = await page.locator('#username').getAttribute('autocomplete');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor({ state: 'visible' });
  await shots.both(page, 'sign-in-with-passkey-offered');
  await passwordStep(page);
  await page.waitForURL((u) => u.pathname === '/account');
  const add = page.getByRole('button', { name: 'Add a passkey' });
  await add.waitFor({ state: 'visible' });
  await page.locator('#passkey_name').fill('Test laptop');
  await shots.both(page, 'account-add-passkey');
  await add.click();
  const codes = page.locator('ol.codes code');
  await codes.first().waitFor({ state: 'visible' });
  const recovery = await codes.allInnerTexts();
  await shots.both(page, 'passkey-recovery-codes');
  await page.getByRole('link', { name: 'I have saved them' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  const account = await page.locator('main').innerText();
  await shots.both(page, 'account-with-passkey');
  const { credentials } = await first.cdp.send('WebAuthn.getCredentials', {
    authenticatorId: first.authenticatorId,
  });
  if (credentials.length !== 1 || !credentials[0].isResidentCredential) {
    throw new Error(`expected one resident credential, got ${JSON.stringify(credentials)}`);
  }

  log('2a. another browser holding the passkey: the autofill signs in, no password typed');
  const auto = await browser.newContext({ viewport: DESKTOP });
  const autoPage = await auto.newPage();
  const held = await authenticator(auto, autoPage);
  await held.cdp.send('WebAuthn.addCredential', {
    authenticatorId: held.authenticatorId,
    credential: credentials[0],
  });
  const autoPosts = recordPosts(autoPage);
  await autoPage.goto(new URL('/login', issuer).href);
  // The virtual authenticator answers the autofill request as a user picking the passkey.
  await autoPage.waitForURL((u) => u.pathname === '/account');
  const autofill = await autoPage.locator('main').innerText();
  if (autoPosts.length !== 1) throw new Error(`posted ${autoPosts.length} passkey forms`);

  log('the same answer again is refused');
  const replay = await autoPage.request.post(new URL('/login/passkey', issuer).href, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    data: autoPosts[0],
    maxRedirects: 0,
  });
  const replayText = await replay.text();
  const replayStatus = replay.status();
  const { credentials: used } = await held.cdp.send('WebAuthn.getCredentials', {
    authenticatorId: held.authenticatorId,
  });
  await auto.close();

  log('2b. a browser without autofill: "Sign in with a passkey"');
  const fresh = await browser.newContext({ viewport: DESKTOP });
  await withoutAutofill(fresh);
  const other = await fresh.newPage();
  const second = await authenticator(fresh, other);
  // First a copy of the passkey as it was before its last use: its sign counter went back,
  // the mark of a cloned authenticator, and it is refused.
  await second.cdp.send('WebAuthn.addCredential', {
    authenticatorId: second.authenticatorId,
    credential: credentials[0],
  });
  await other.goto(new URL('/login', issuer).href);
  const button = other.getByRole('button', { name: 'Sign in with a passkey' });
  await button.waitFor({ state: 'visible' });
  await button.click();
  await other.waitForURL((u) => u.pathname === '/login/passkey');
  const cloned = await other.locator('p.err').first().innerText();
  await shots.both(other, 'sign-in-passkey-refused');
  await second.cdp.send('WebAuthn.clearCredentials', { authenticatorId: second.authenticatorId });
  await second.cdp.send('WebAuthn.addCredential', {
    authenticatorId: second.authenticatorId,
    credential: used[0],
  });
  await other.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await other.waitForURL((u) => u.pathname === '/account');
  const passwordless = await other.locator('main').innerText();

  log('3. the password, then the passkey as the second factor');
  await fresh.clearCookies();
  await passwordStep(other);
  const use = other.getByRole('button', { name: 'Use your passkey' });
  await use.waitFor({ state: 'visible' });
  await shots.both(other, 'second-step-with-passkey');
  await use.click();
  await other.waitForURL((u) => u.pathname === '/account');
  const afterSecond = await other.locator('main').innerText();
  const { credentials: after } = await second.cdp.send('WebAuthn.getCredentials', {
    authenticatorId: second.authenticatorId,
  });
  await fresh.close();

  return {
    recovery_codes: recovery,
    account_text: account,
    autocomplete,
    autofill_text: autofill,
    cloned_text: cloned,
    passwordless_text: passwordless,
    replay_status: replayStatus,
    replay_text: replayText,
    after_second_factor_text: afterSecond,
    sign_count: after[0]?.signCount ?? -1,
    screenshots: shots.taken,
  };
});
