"""Schemathesis hooks of scripts/contract.sh: the credentials each operation takes, and the
browser a sign-in page needs.

The credential is chosen from the operation's own `security` in openapi.yaml (the first
requirement that can be met), so a new endpoint gets the right one from its spec:

* adminBearer: the admin token (/admin/v1);
* clientSecretBasic: HTTP Basic of the resource-server client (introspection, the feed, and
  the Basic alternative of the token and revocation endpoints);
* bearerAccessToken: an access token of the seeded user (/api/v1, userinfo), minted by the
  password grant for every test case: the fuzzer revokes it itself (logout, logout-all,
  password change), and a revoked token would leave the following cases only a 401 to check.
  Minting is retried while the token endpoint answers that the account's sessions were just
  revoked (it refuses new tokens within the second of a logout-all).
* browserSession: the SSO session cookie of a browser user, signed in through POST /login
  (the account pages). The sessions belong to users of their own, not to the user of the
  access tokens, whose sessions the fuzzer ends (/api/v1/logout-all ends them too): the
  browser user's session is only ever ended by POST /account/logout-all, which gets a
  session of a third user, signed in afresh for every case. Where the session is optional
  (`{}` is also a requirement: the authorization, consent and end-session endpoints), every
  other case is sent without it.

An operation whose requirements are all `{}` (or none) is sent as generated.

Pages and scripts (text/html, text/javascript) are read as UTF-8 text, so that their schemas
(`HtmlPage`, the script's text) are checked too.

The hosted pages' forms also need what a browser holds (`before_call`):

* CSRF: a form that carries a generated `csrf` field gets, in three cases of four, the
  token of a CSRF cookie obtained from GET /login and that cookie (the fourth keeps the
  generated value, which is refused with 403).
* A trusted client: a generated `client_id` names no client, so the authorization and
  end-session endpoints would only ever show their 400 page. In two positive cases of three
  the request is rewritten for one of the browser clients contract.sh seeds (with its
  registered redirect URI, or none, which means that one), and every other of those is also
  made well-formed (response_type=code, PKCE for the public client, no request object,
  resource or scope), so that the sign-in page, the consent page, codes, the form-post page
  and error redirects are all reached. Negative cases keep their generated client: for a
  trusted client, RFC 6749 §4.1.2.1 sends a malformed request's error back to it as a 302,
  which the negative-data check would read as acceptance.
"""

import itertools
import os
import re
import threading
import time

import requests
import schemathesis

URL = os.environ["LK_CONTRACT_URL"]
ADMIN_TOKEN = os.environ["LK_CONTRACT_ADMIN_TOKEN"]
RS_CLIENT = ("contract-rs", os.environ["LK_CONTRACT_RS_SECRET"])
USER = ("contract-user@example.com", os.environ["LK_CONTRACT_USER_PASSWORD"])
PUBLIC_CLIENT = "contract-web"
# Seeded by contract.sh, with the same password as USER.
BROWSER_USER = "contract-browser@example.com"
LOGOUT_ALL_USER = "contract-browser-2@example.com"
# Seeded by contract.sh: (client_id, redirect URI, post-logout redirect URI, public).
BROWSER_CLIENTS = [
    ("contract-spa", "http://127.0.0.1:9/callback", "http://127.0.0.1:9/", True),
    ("contract-portal", "https://portal.contract.test/callback", "https://portal.contract.test/", False),
]
# A well-formed PKCE challenge (its verifier is never needed).
CODE_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"



def _warm_lambda_sources():
    """Parses Schemathesis' generation modules once, now, for Hypothesis' lambda descriptions.

    Hypothesis describes each `.filter(lambda ...)` by parsing the lambda's source file (then
    caches the tree). Done lazily, two workers may call `ast.parse` at the same moment, which
    CPython 3.11 can fail with `SystemError: AST constructor recursion depth mismatch`
    (python/cpython#106905): a "Runtime Error" of the run that has nothing to do with the API.
    """
    import pathlib

    from hypothesis.internal.reflection import get_pretty_function_description

    root = pathlib.Path(schemathesis.__file__).parent
    for folder in ("specs/openapi/coverage", "specs/openapi", "generation"):
        for path in sorted((root / folder).glob("*.py")):
            try:
                probe = eval(compile("lambda value: value", str(path), "eval"))
                get_pretty_function_description(probe)
            except Exception:  # a description is only a nicety; never stop the run for it
                pass


_warm_lambda_sources()

SESSION_COOKIE = "latchkey_session"
CSRF_COOKIE = "latchkey_csrf"

_lock = threading.Lock()
# Which cases get what: one counter per choice, so that each choice cycles through its values.
_optional_session = itertools.count()
_csrf_cases = itertools.count()
_client_cases = itertools.count()


def mint_access_token():
    last = None
    for _ in range(20):
        r = requests.post(
            f"{URL}/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": PUBLIC_CLIENT,
                "username": USER[0],
                "password": USER[1],
            },
            timeout=10,
        )
        if r.status_code == 200:
            return r.json()["access_token"]
        last = f"{r.status_code} {r.text}"
        time.sleep(0.25)
    raise RuntimeError(f"cannot mint an access token for the seeded user: {last}")


_csrf = None


def csrf_pair():
    """A CSRF cookie and the token of its forms, from the sign-in page (kept for the run)."""
    global _csrf
    with _lock:
        if _csrf is None:
            r = requests.get(f"{URL}/login", timeout=10)
            token = re.search(r'name="csrf" value="([^"]+)"', r.text)
            if r.status_code != 200 or CSRF_COOKIE not in r.cookies or token is None:
                raise RuntimeError(f"no CSRF cookie and token from GET /login: {r.status_code}")
            _csrf = (r.cookies[CSRF_COOKIE], token.group(1))
        return _csrf


def sign_in(username):
    """A new SSO session of `username`, through the sign-in form."""
    cookie, token = csrf_pair()
    last = None
    for _ in range(20):
        r = requests.post(
            f"{URL}/login",
            data={"csrf": token, "username": username, "password": USER[1]},
            cookies={CSRF_COOKIE: cookie},
            allow_redirects=False,
            timeout=10,
        )
        if r.status_code == 303 and SESSION_COOKIE in r.cookies:
            return r.cookies[SESSION_COOKIE]
        last = r.status_code
        time.sleep(0.25)
    raise RuntimeError(f"cannot sign {username} in through POST /login: {last}")


_browser_session = (0.0, None)


def browser_session():
    """The browser user's session, signed in again every minute."""
    global _browser_session
    with _lock:
        minted, value = _browser_session
    if value is None or time.monotonic() - minted > 60:
        value = sign_in(BROWSER_USER)
        with _lock:
            _browser_session = (time.monotonic(), value)
    return value


KNOWN = {"adminBearer", "clientSecretBasic", "bearerAccessToken", "browserSession"}


def requirements_of(operation):
    raw = operation.schema.raw_schema
    return operation.definition.raw.get("security", raw.get("security", []))


def requirement_for(operation):
    """The first security requirement of the operation that names only schemes we hold."""
    for requirement in requirements_of(operation):
        if requirement and set(requirement) <= KNOWN:
            return requirement
    return None


@schemathesis.auth(refresh_interval=None)
class LatchkeyCredentials:
    def get(self, case, ctx):
        requirement = requirement_for(ctx.operation)
        if requirement is None:
            return None
        (scheme,) = requirement.keys()
        if scheme == "adminBearer":
            return ("header", "Authorization", f"Bearer {ADMIN_TOKEN}")
        if scheme == "clientSecretBasic":
            return ("header", "Authorization", requests.auth._basic_auth_str(*RS_CLIENT))
        if scheme == "browserSession":
            optional = {} in requirements_of(ctx.operation)
            if optional and next(_optional_session) % 2:
                return None
            if ctx.operation.path == "/account/logout-all":
                return ("cookie", SESSION_COOKIE, sign_in(LOGOUT_ALL_USER))
            return ("cookie", SESSION_COOKIE, browser_session())
        return ("header", "Authorization", f"Bearer {mint_access_token()}")

    def set(self, case, data, ctx):
        if data is None:
            return
        location, name, value = data
        if location == "cookie":
            case.cookies = dict(case.cookies or {})
            case.cookies[name] = value
            return
        case.headers = dict(case.headers or {})
        # Replace any generated Authorization header, whatever its case.
        for key in [k for k in case.headers if k.lower() == name.lower()]:
            del case.headers[key]
        case.headers[name] = value


def _is_negative(case):
    meta = getattr(case, "meta", None)
    generation = getattr(meta, "generation", None)
    mode = getattr(generation, "mode", None)
    return bool(mode is not None and mode.is_negative)


def _with_csrf(case):
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("csrf"), str):
        return
    if next(_csrf_cases) % 4 == 0:
        return
    cookie, token = csrf_pair()
    body["csrf"] = token
    case.cookies = dict(case.cookies or {})
    case.cookies[CSRF_COOKIE] = cookie


def _trusted_client(case):
    path, method = case.operation.path, case.operation.method.upper()
    if path not in ("/oauth2/authorize", "/oauth2/logout") or _is_negative(case):
        return
    n = next(_client_cases)
    if n % 3 == 0:
        return
    if method == "GET":
        params = case.query = dict(case.query or {})
    elif isinstance(case.body, dict):
        params = case.body
    else:
        return
    client_id, redirect_uri, post_logout_uri, public = BROWSER_CLIENTS[(n // 3) % 2]
    well_formed = (n // 6) % 2 == 0
    params["client_id"] = client_id
    if path == "/oauth2/logout":
        target, uri = "post_logout_redirect_uri", post_logout_uri
        if well_formed:
            params.pop("id_token_hint", None)
    else:
        target, uri = "redirect_uri", redirect_uri
        if well_formed:
            params["response_type"] = "code"
            for name in ("request", "request_uri", "resource", "scope"):
                params.pop(name, None)
            if public:
                params["code_challenge"] = CODE_CHALLENGE
                params["code_challenge_method"] = "S256"
    if n % 2:
        params[target] = uri
    else:
        params.pop(target, None)


@schemathesis.hook
def before_call(context, case, kwargs):
    _with_csrf(case)
    _trusted_client(case)


@schemathesis.deserializer("text/html", "text/javascript")
def as_text(ctx, response):
    return response.content.decode("utf-8")
