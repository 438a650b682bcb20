-- The signed-in browser round trip of the authorization code flow: GET /oauth2/authorize with
-- the SSO session cookie (a first-party public client, so no page: a 302 to the redirect URI
-- with ?code=...), then POST /oauth2/token with that code and the PKCE verifier.
--
-- wrk gives Lua no handle on a connection, so each thread keeps a queue of codes: a 302 that
-- carries a code puts it in the queue, and the next request of the thread (on whichever of its
-- connections is free) redeems it; with the queue empty the request is an authorize. At the
-- start every connection sends an authorize; from then on the requests alternate. A code is
-- redeemed once, within milliseconds (codes live 60 s).
--
-- A round trip counts only when the token endpoint answers 200 with an ID token. done() prints
-- one line: round trips (token 200s) and their rate over wrk's duration, codes received,
-- authorize answers without a code (an error redirect), answers with an "error" body, other
-- answers, the statuses of those two, and codes left unredeemed at the end.
--
-- Environment: LK_SPA_CLIENT_ID, LK_REDIRECT_URI, LK_SESSION_COOKIE ("name=value"),
-- LK_CODE_VERIFIER, LK_CODE_CHALLENGE (S256 of the verifier).

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local client_id = os.getenv("LK_SPA_CLIENT_ID") or ""
local redirect_uri = os.getenv("LK_REDIRECT_URI") or ""
local cookie = os.getenv("LK_SESSION_COOKIE") or ""
local verifier = os.getenv("LK_CODE_VERIFIER") or ""
local challenge = os.getenv("LK_CODE_CHALLENGE") or ""

local authorize_path = "/oauth2/authorize?response_type=code&client_id=" .. enc(client_id)
  .. "&redirect_uri=" .. enc(redirect_uri) .. "&scope=openid&state=s"
  .. "&code_challenge=" .. enc(challenge) .. "&code_challenge_method=S256"
local authorize_headers = { ["Cookie"] = cookie }
local token_headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local token_prefix = "grant_type=authorization_code&client_id=" .. enc(client_id)
  .. "&redirect_uri=" .. enc(redirect_uri) .. "&code_verifier=" .. enc(verifier) .. "&code="

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread state; globals so that done() can read them with thread:get().
queue, head, tail = {}, 1, 0
ok, codes, no_code, token_bad, other = 0, 0, 0, 0, 0
statuses = ""

function request()
  if head <= tail then
    local code = queue[head]
    queue[head] = nil
    head = head + 1
    return wrk.format("POST", "/oauth2/token", token_headers, token_prefix .. enc(code))
  end
  return wrk.format("GET", authorize_path, authorize_headers, nil)
end

local function note(status)
  if not statuses:find("%f[%d]" .. status .. "%f[^%d]") then
    statuses = statuses .. " " .. status
  end
end

function response(status, headers, body)
  if status == 302 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    if code then
      codes = codes + 1
      tail = tail + 1
      queue[tail] = code:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    else
      no_code = no_code + 1
    end
  elseif status == 200 and body and body:find('"id_token"', 1, true) then
    ok = ok + 1
  elseif body and body:find('"error"', 1, true) then
    token_bad = token_bad + 1
    note(status)
  else
    other = other + 1
    note(status)
  end
end

function done(summary, latency, requests)
  local n_ok, n_codes, n_no_code, n_bad, n_other, left = 0, 0, 0, 0, 0, 0
  local seen = ""
  for _, t in ipairs(threads) do
    n_ok = n_ok + t:get("ok")
    n_codes = n_codes + t:get("codes")
    n_no_code = n_no_code + t:get("no_code")
    n_bad = n_bad + t:get("token_bad")
    n_other = n_other + t:get("other")
    left = left + (t:get("tail") - t:get("head") + 1)
    seen = seen .. t:get("statuses")
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "authorize-chain: round trips %d, round trips/s %.1f, codes %d, authorize without code %d, "
      .. "token errors %d, other answers %d (statuses:%s), codes left %d\n",
    n_ok, n_ok / secs, n_codes, n_no_code, n_bad, n_other, seen == "" and " none" or seen, left))
end
