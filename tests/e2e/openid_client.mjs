// Interoperability: the OpenID Certified relying-party library openid-client (v6) against
// Latchkey. Discovery; an authorization URL with PKCE (S256), nonce and state; the hosted
// sign-in page driven in Chromium; the redirect read off the browser (the Rust test serves the
// redirect URIs on loopback); the code grant with the ID token checked
// (signature against the JWKS too: enableNonRepudiationChecks); userinfo; the refresh grant;
// and the end-session URL followed in the browser back to the post-logout redirect URI.
//
// Inputs (environment): LK_ISSUER, LK_CLIENT_ID, LK_CLIENT_SECRET (confidential clients:
// client_secret_basic; absent: a public client), LK_REDIRECT_URI, LK_POST_LOGOUT_REDIRECT_URI,
// LK_USERNAME, LK_PASSWORD, LK_LOGOUT_HINT (0: end the session without id_token_hint, so
// Latchkey asks the user to confirm), SCREENSHOT_DIR (optional). Prints `E2E_RESULT <json>`.
import * as client from 'openid-client';
import { need, run, Shots, signIn, log } from './lib.mjs';

const issuer = new URL(need('LK_ISSUER'));
const clientId = need('LK_CLIENT_ID');
const secret = process.env.LK_CLIENT_SECRET || undefined;
const redirectUri = new URL(need('LK_REDIRECT_URI'));
const postLogoutUri = new URL(need('LK_POST_LOGOUT_REDIRECT_URI'));
const username = need('LK_USERNAME');
const password = need('LK_PASSWORD');
const logoutHint = process.env.LK_LOGOUT_HINT !== '0';

run('openid_client', async ({ page }) => {
  const shots = new Shots(process.env.SCREENSHOT_DIR);
  // Loopback http issuers need the library's explicit opt-in.
  const config = await client.discovery(
    issuer,
    clientId,
    secret ? { client_secret: secret } : undefined,
    secret ? client.ClientSecretBasic(secret) : client.None(),
    { execute: [client.allowInsecureRequests] },
  );
  // Verify ID token signatures against the JWKS as well (the code flow over TLS would not
  // require it; here it checks the keys Latchkey publishes).
  client.enableNonRepudiationChecks(config);
  const metadata = config.serverMetadata();
  if (!metadata.code_challenge_methods_supported?.includes('S256')) {
    throw new Error(`discovery does not offer S256: ${JSON.stringify(metadata)}`);
  }

  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri.href,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  log('authorize');
  await page.goto(authorizationUrl.href);
  const consent = await signIn(page, shots, { username, password });
  await page.waitForURL((u) => u.href.startsWith(redirectUri.href));
  const callback = new URL(page.url());
  if (callback.searchParams.get('iss') !== metadata.issuer) {
    throw new Error(`the redirect carries iss=${callback.searchParams.get('iss')}`);
  }

  log('code grant');
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();

  log('userinfo');
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

  log('refresh');
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const refreshedClaims = refreshed.claims();
  if (refreshed.access_token === tokens.access_token) throw new Error('the refresh kept the access token');

  log('end session');
  const logoutState = client.randomState();
  const endSession = client.buildEndSessionUrl(config, {
    ...(logoutHint ? { id_token_hint: refreshed.id_token ?? tokens.id_token } : {}),
    post_logout_redirect_uri: postLogoutUri.href,
    state: logoutState,
  });
  await page.goto(endSession.href);
  const signOut = page.getByRole('button', { name: 'Sign out' });
  const outcome = await Promise.race([
    page.waitForURL((u) => u.href.startsWith(postLogoutUri.href)).then(() => 'back', () => 'timeout'),
    signOut.waitFor({ state: 'visible' }).then(() => 'confirm', () => 'timeout'),
  ]);
  if (outcome === 'timeout') throw new Error('the end-session URL went neither back nor to a confirmation');
  if (outcome === 'confirm') {
    await shots.both(page, 'logout-confirm');
    await signOut.click();
    await page.waitForURL((u) => u.href.startsWith(postLogoutUri.href));
  }
  const afterLogout = new URL(page.url());
  if (afterLogout.searchParams.get('state') !== logoutState) {
    throw new Error(`the post-logout redirect carries state=${afterLogout.searchParams.get('state')}, not ours`);
  }

  return {
    consent,
    client_auth: secret ? 'client_secret_basic' : 'none',
    claims,
    userinfo,
    refreshed_claims: refreshedClaims ?? null,
    scope: tokens.scope,
    refreshed_scope: refreshed.scope,
    id_token: tokens.id_token,
    logout_confirmation: outcome === 'confirm',
    end_session_query: Object.fromEntries(endSession.searchParams),
    screenshots: shots.taken,
  };
});
