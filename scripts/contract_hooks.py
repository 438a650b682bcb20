"""Schemathesis hooks of scripts/contract.sh: the credentials each operation takes.

The credential is chosen from the operation's own `security` in openapi.yaml (the first
requirement that can be met), so a new endpoint gets the right one from its spec:

* adminBearer: the admin token (/admin/v1);
* clientSecretBasic: HTTP Basic of the resource-server client (introspection, the feed, and
  the Basic alternative of the token and revocation endpoints);
* bearerAccessToken: an access token of the seeded user (/api/v1), minted by the password
  grant for every test case: the fuzzer revokes it itself (logout, logout-all, password
  change), and a revoked token would leave the following cases only a 401 to check. Minting
  is retried while the token endpoint answers that the account's sessions were just revoked
  (it refuses new tokens within the second of a logout-all).

An operation whose requirements are all `{}` (or none) is sent as generated.
"""

import os
import time

import requests
import schemathesis

URL = os.environ["LK_CONTRACT_URL"]
ADMIN_TOKEN = os.environ["LK_CONTRACT_ADMIN_TOKEN"]
RS_CLIENT = ("contract-rs", os.environ["LK_CONTRACT_RS_SECRET"])
USER = ("contract-user@example.com", os.environ["LK_CONTRACT_USER_PASSWORD"])
PUBLIC_CLIENT = "contract-web"


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


KNOWN = {"adminBearer", "clientSecretBasic", "bearerAccessToken"}


def requirement_for(operation):
    """The first security requirement of the operation that names only schemes we hold."""
    raw = operation.schema.raw_schema
    requirements = operation.definition.raw.get("security", raw.get("security", []))
    for requirement in requirements:
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
            return ("Authorization", f"Bearer {ADMIN_TOKEN}")
        if scheme == "clientSecretBasic":
            return ("Authorization", requests.auth._basic_auth_str(*RS_CLIENT))
        return ("Authorization", f"Bearer {mint_access_token()}")

    def set(self, case, data, ctx):
        if data is None:
            return
        name, value = data
        case.headers = dict(case.headers or {})
        # Replace any generated Authorization header, whatever its case.
        for key in [k for k in case.headers if k.lower() == name.lower()]:
            del case.headers[key]
        case.headers[name] = value
