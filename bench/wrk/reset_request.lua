-- POST /api/v1/password/reset (JSON {"email": ...}) over many distinct addresses, every
-- other request for an existing user (reset-NNNNN@example.com, created by bench/run.sh) and
-- the rest for addresses without an account (nobody-NNNNN@example.com). The endpoint answers
-- 202 at once and does the account work (user lookup, audit row, and for a user a reset
-- token and a mail) in a background task. The background work is bounded per instance (512
-- at once): past that the request is refused with 503 temporarily_unavailable and
-- Retry-After: 1 before anything changed, whatever the address. Under wrk's overload those
-- 503s are expected, so they are counted apart from the 202s and from anything else.
-- Environment: LK_RESET_USERS (how many reset-NNNNN users exist), LK_WRK_THREADS (wrk -t).
-- Thread n of N takes user numbers n, n+N, ... (mod LK_RESET_USERS). done() prints one line,
--   reset-chain: sent S, existing E, 202 A, 503 B (retry-after 1: R, temporarily_unavailable: T), other O, 202/s X
-- (wrk cannot tell which request an answer belongs to, so the 202s for existing users are
-- not counted here; bench/run.sh takes them from the audit trail.)
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

sent, existing, ok202, busy503, retry1, unavail, other = 0, 0, 0, 0, 0, 0, 0

function init(args)
  users = tonumber(os.getenv("LK_RESET_USERS") or "1")
  nthreads = tonumber(os.getenv("LK_WRK_THREADS") or "1")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local k = (math.floor(sent / 2) * nthreads + id) % users
  local email
  if sent % 2 == 0 then
    email = string.format("reset-%05d@example.com", k)
    existing = existing + 1
  else
    email = string.format("nobody-%05d@example.com", k)
  end
  sent = sent + 1
  return wrk.format(nil, nil, nil, '{"email":"' .. email .. '"}')
end

function response(status, headers, body)
  if status == 202 then
    ok202 = ok202 + 1
  elseif status == 503 then
    busy503 = busy503 + 1
    local ra = headers["retry-after"] or headers["Retry-After"]
    if ra == "1" then retry1 = retry1 + 1 end
    if body and string.find(body, "temporarily_unavailable", 1, true) then unavail = unavail + 1 end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, e, a, b, r, t, o = 0, 0, 0, 0, 0, 0, 0
  for _, th in ipairs(threads) do
    s = s + th:get("sent")
    e = e + th:get("existing")
    a = a + th:get("ok202")
    b = b + th:get("busy503")
    r = r + th:get("retry1")
    t = t + th:get("unavail")
    o = o + th:get("other")
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "reset-chain: sent %d, existing %d, 202 %d, 503 %d (retry-after 1: %d, temporarily_unavailable: %d), other %d, 202/s %.1f\n",
    s, e, a, b, r, t, o, a / secs))
end
