-- The hosted sign-in form: every request POSTs /login for the same user, without a pending
-- authorization request (the page on its own, as the account pages use it). Success is a 303
-- to /account that sets the SSO session cookie; each one starts a new session (a row, or
-- Redis keys) and pays one argon2id verification.
--
-- The CSRF token is a MAC of the browser's CSRF cookie, with no lifetime of its own, so one
-- cookie and token pair fetched from GET /login before the run serves every request.
--
-- done() prints one line: sign-ins (303 with a session cookie) and their rate over wrk's
-- duration, and the other answers by status (a 403 is a refused CSRF token, a 401/429 page a
-- refused or throttled sign-in).
--
-- Environment: LK_USERNAME, LK_PASSWORD, LK_CSRF_COOKIE ("name=value"), LK_CSRF_TOKEN,
-- LK_SESSION_COOKIE_NAME (the session cookie's name, default latchkey_session).

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local session_name = os.getenv("LK_SESSION_COOKIE_NAME") or "latchkey_session"

wrk.method = "POST"
wrk.path = "/login"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("LK_CSRF_COOKIE") or ""
wrk.body = "csrf=" .. enc(os.getenv("LK_CSRF_TOKEN") or "")
  .. "&username=" .. enc(os.getenv("LK_USERNAME") or "")
  .. "&password=" .. enc(os.getenv("LK_PASSWORD") or "")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

ok, failed = 0, 0
statuses = ""

function response(status, headers, body)
  local set = headers["Set-Cookie"] or headers["set-cookie"] or ""
  if status == 303 and set:find(session_name .. "=", 1, true) then
    ok = ok + 1
  else
    failed = failed + 1
    if not statuses:find("%f[%d]" .. status .. "%f[^%d]") then
      statuses = statuses .. " " .. status
    end
  end
end

function done(summary, latency, requests)
  local n_ok, n_failed, seen = 0, 0, ""
  for _, t in ipairs(threads) do
    n_ok = n_ok + t:get("ok")
    n_failed = n_failed + t:get("failed")
    seen = seen .. t:get("statuses")
  end
  io.write(string.format("sign-in-chain: sign-ins %d, sign-ins/s %.1f, failed %d (statuses:%s)\n",
    n_ok, n_ok / (summary.duration / 1e6), n_failed, seen == "" and " none" or seen))
end
