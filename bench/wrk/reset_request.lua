-- POST /api/v1/password/reset (JSON {"email": ...}) over many distinct addresses, every
-- other request for an existing user (reset-NNNNN@example.com, created by bench/run.sh) and
-- the rest for addresses without an account (nobody-NNNNN@example.com). The endpoint answers
-- 202 at once and does the account work (user lookup, audit row, and for a user a reset
-- token and a mail) in a background task.
-- Environment: LK_RESET_USERS (how many reset-NNNNN users exist), LK_WRK_THREADS (wrk -t).
-- Thread n of N takes user numbers n, n+N, ... (mod LK_RESET_USERS). done() prints the
-- number of answers that were not 202 and how many requests named an existing user, so the
-- outbox can be checked against it.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

sent, existing, non202 = 0, 0, 0

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
  if status ~= 202 then
    non202 = non202 + 1
  end
end

function done(summary, latency, requests)
  local s, e, bad = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    e = e + t:get("existing")
    bad = bad + t:get("non202")
  end
  io.write(string.format("reset-chain: sent %d, existing %d, non-202 %d\n", s, e, bad))
end
