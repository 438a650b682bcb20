// The example SPA: sign in (authorization code + PKCE + nonce) with oidc-client-ts, show the
// ID token's claims, refresh, call the resource server with the access token, sign out
// (RP-initiated logout). Plain ES module, no build step; `oidc` is the library's browser
// bundle, loaded by index.html.
import defaults from './config.js';

const { UserManager, WebStorageStateStore, Log } = window.oidc;
Log.setLogger(console);
Log.setLevel(Log.WARN);

const $ = (id) => document.getElementById(id);

// Settings: config.js, overridden by ?issuer=&client_id=&api= (kept for the visit).
function loadConfig() {
  const saved = JSON.parse(sessionStorage.getItem('spa.config') || '{}');
  const query = new URLSearchParams(location.search);
  const fromQuery = {};
  for (const [param, key] of [['issuer', 'issuer'], ['client_id', 'clientId'], ['api', 'api']]) {
    if (query.has(param)) fromQuery[key] = query.get(param);
  }
  const config = { ...defaults, ...saved, ...fromQuery };
  sessionStorage.setItem('spa.config', JSON.stringify({ ...saved, ...fromQuery }));
  config.issuer = config.issuer.replace(/\/+$/, '');
  config.api = config.api.replace(/\/+$/, '');
  return config;
}

const config = loadConfig();
const manager = new UserManager({
  authority: config.issuer,
  client_id: config.clientId,
  redirect_uri: `${location.origin}/callback`,
  post_logout_redirect_uri: `${location.origin}/`,
  response_type: 'code',
  scope: config.scope,
  // Tokens live in this tab only; nothing renews behind the user's back in this example.
  userStore: new WebStorageStateStore({ store: window.sessionStorage }),
  automaticSilentRenew: false,
  loadUserInfo: false,
  monitorSession: false,
});

let refreshes = Number(sessionStorage.getItem('spa.refreshes') || 0);

function randomString() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function claimsOf(jwt) {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  const padded = part + '='.repeat((4 - (part.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function showError(e) {
  const el = $('error');
  el.textContent = String(e && e.message ? e.message : e);
  el.hidden = false;
  $('status').dataset.state = 'error';
  console.error(e);
}

function render(user) {
  const signedIn = Boolean(user && !user.expired);
  $('sign-in').hidden = signedIn;
  for (const id of ['refresh', 'call-api', 'sign-out']) $(id).hidden = !signedIn;
  $('signed-in').hidden = !signedIn;
  $('config').textContent = `issuer ${config.issuer} · client ${config.clientId} · API ${config.api}`;
  if (!signedIn) {
    $('status').textContent = 'You are signed out.';
    $('status').dataset.state = 'signed-out';
    return;
  }
  const claims = claimsOf(user.id_token);
  $('status').textContent = `Signed in as ${claims.email || claims.preferred_username || claims.sub}`;
  $('status').dataset.state = 'signed-in';
  $('claims').textContent = JSON.stringify(claims, null, 2);
  $('expires').textContent = new Date(user.expires_at * 1000).toISOString();
  $('refreshes').textContent = String(refreshes);
  $('scope').textContent = user.scope || '';
}

async function signIn() {
  // PKCE (S256) is the library's default for the code flow; the nonce binds the ID token to
  // this request and is checked by the library on the way back.
  await manager.signinRedirect({ nonce: randomString(), state: { returnTo: '/' } });
}

async function refresh() {
  const before = await manager.getUser();
  // With a refresh token, signinSilent uses the refresh_token grant (no iframe).
  const user = await manager.signinSilent();
  if (!user || user.access_token === before.access_token) {
    throw new Error('the refresh returned no new access token');
  }
  refreshes += 1;
  sessionStorage.setItem('spa.refreshes', String(refreshes));
  render(user);
}

async function callApi() {
  const user = await manager.getUser();
  $('api').textContent = 'calling…';
  const answer = await fetch(`${config.api}/api/me`, {
    headers: { authorization: `Bearer ${user.access_token}` },
  });
  const body = await answer.text();
  let shown = body;
  try {
    shown = JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    /* not JSON: shown as it is */
  }
  $('api').textContent = `${answer.status}\n${shown}`;
  $('api').dataset.status = String(answer.status);
}

async function signOut() {
  // RP-initiated logout: the ID token as id_token_hint, our client_id, the registered
  // post-logout URI and a state the library checks when we come back.
  sessionStorage.removeItem('spa.refreshes');
  await manager.signoutRedirect({ client_id: config.clientId, state: { signedOut: true } });
}

function on(id, action) {
  $(id).addEventListener('click', () => {
    $('error').hidden = true;
    action().catch(showError);
  });
}

async function main() {
  on('sign-in', signIn);
  on('refresh', refresh);
  on('call-api', callApi);
  on('sign-out', signOut);
  const query = new URLSearchParams(location.search);
  if (location.pathname === '/callback') {
    if (query.has('error')) {
      throw new Error(`sign-in failed: ${query.get('error')} ${query.get('error_description') || ''}`);
    }
    await manager.signinRedirectCallback();
    history.replaceState(null, '', '/');
  } else if (query.has('state') && !query.has('code')) {
    // Back from the identity provider's logout.
    await manager.signoutRedirectCallback();
    await manager.removeUser();
    history.replaceState(null, '', '/');
    $('status').dataset.loggedOut = 'true';
  }
  render(await manager.getUser());
}

main().catch((e) => {
  render(null);
  showError(e);
});
