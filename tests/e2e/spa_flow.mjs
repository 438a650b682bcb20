// The example SPA (examples/spa, oidc-client-ts) against Latchkey, in Chromium, as a person
// would use it: open the app, "Sign in", the hosted sign-in page (one wrong password first),
// back signed in, the ID token's claims shown, "Refresh tokens", "Call the API" (the example
// resource server), "Sign out" (RP-initiated logout), and the SSO session is gone (signing
// in again asks for the password).
//
// Inputs (environment): SPA_URL (the app, with ?issuer=&client_id=&api=), LK_ISSUER,
// LK_USERNAME, LK_PASSWORD, SCREENSHOT_DIR. Prints `E2E_RESULT <json>`.
import { need, run, Shots, signIn, log } from './lib.mjs';

const spaUrl = new URL(need('SPA_URL'));
const issuer = new URL(need('LK_ISSUER'));
const username = need('LK_USERNAME');
const password = need('LK_PASSWORD');

/** Waits for the app's status to reach `state`; the app's own error fails at once. */
async function appState(page, state) {
  const status = page.locator(`#status[data-state="${state}"], #status[data-state="error"]`);
  await status.waitFor({ state: 'attached' });
  if ((await status.getAttribute('data-state')) === 'error') {
    throw new Error(`the app reports: ${await page.locator('#error').innerText()}`);
  }
}

/** The user oidc-client-ts keeps in sessionStorage (tokens and profile). */
async function storedUser(page) {
  return page.evaluate(() => {
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const key = sessionStorage.key(i);
      if (key.startsWith('oidc.user:')) return JSON.parse(sessionStorage.getItem(key));
    }
    return null;
  });
}

run('spa_flow', async ({ page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  log('open the app');
  await page.goto(spaUrl.href);
  await appState(page, 'signed-out');
  await shots.desktop(page, 'spa-signed-out');

  log('sign in');
  const authorizeRequest = page.waitForRequest((r) => r.url().startsWith(`${issuer.origin}/oauth2/authorize`));
  await page.locator('#sign-in').click();
  const authorizeUrl = new URL((await authorizeRequest).url());
  const consent = await signIn(page, shots, { username, password, wrongPasswordFirst: true });
  await page.waitForURL((u) => u.origin === spaUrl.origin);
  await appState(page, 'signed-in');
  const claims = JSON.parse(await page.locator('#claims').innerText());
  const signedIn = await storedUser(page);
  if (!signedIn || !signedIn.refresh_token) throw new Error('no refresh token was stored');
  await shots.desktop(page, 'spa-signed-in');

  log('refresh');
  await page.locator('#refresh').click();
  await page.waitForFunction(
    () => document.getElementById('refreshes').textContent === '1' ||
      !document.getElementById('error').hidden,
  );
  await appState(page, 'signed-in');
  const refreshed = await storedUser(page);
  if (refreshed.access_token === signedIn.access_token) throw new Error('the refresh kept the access token');

  log('call the API');
  await page.locator('#call-api').click();
  await page.waitForFunction(() => document.getElementById('api').dataset.status);
  const apiText = await page.locator('#api').innerText();
  const [apiStatusLine, ...apiRest] = apiText.split('\n');
  const api = { status: Number(apiStatusLine), body: JSON.parse(apiRest.join('\n')) };
  await shots.desktop(page, 'spa-api-answer');

  log('sign out');
  await page.locator('#sign-out').click();
  // Straight back (the ID token hint proves who asks), or Latchkey asks first.
  const signOut = page.getByRole('button', { name: 'Sign out' });
  const outcome = await Promise.race([
    page.waitForURL((u) => u.origin === spaUrl.origin && !u.searchParams.has('id_token_hint'))
      .then(() => 'back', () => 'timeout'),
    signOut.waitFor({ state: 'visible' }).then(() => 'confirm', () => 'timeout'),
  ]);
  if (outcome === 'timeout') throw new Error('signing out went neither back to the app nor to a confirmation');
  const confirmationAsked = outcome === 'confirm' && new URL(page.url()).origin === issuer.origin;
  if (confirmationAsked) {
    await shots.both(page, 'logout-confirm');
    await signOut.click();
  }
  await page.waitForURL((u) => u.origin === spaUrl.origin);
  await appState(page, 'signed-out');
  const loggedOut = await page.locator('#status').getAttribute('data-logged-out');
  if (loggedOut !== 'true') throw new Error('the app did not see the logout come back with its state');
  if (await storedUser(page)) throw new Error('the app still holds a user after signing out');
  await shots.desktop(page, 'spa-signed-out-again');

  log('sign in again: the SSO session must be gone');
  await page.locator('#sign-in').click();
  await page.waitForURL((u) => u.origin === issuer.origin);
  await page.locator('input[name="username"]').waitFor({ state: 'visible' });

  return {
    consent,
    authorize_query: Object.fromEntries(authorizeUrl.searchParams),
    claims,
    id_token: signedIn.id_token,
    access_token: signedIn.access_token,
    refreshed_access_token: refreshed.access_token,
    refreshed_id_token: refreshed.id_token,
    api,
    logout_confirmation: confirmationAsked,
    screenshots: shots.taken,
  };
});
