-- The MFA grant (issue 15): POST /oauth2/token with
-- grant_type=urn:latchkey:params:oauth:grant-type:mfa, a fresh mfa_token and the user's TOTP
-- code of the current 30 s step. Every mfa_token is single use and every (factor, step) code
-- is accepted once, so each request takes a line of its own: one user's mfa_token (from a
-- password grant made before the pass) and its codes for the steps the pass may fall in.
--
-- Environment: LK_MFA_FILE (written by `mfa_fixture mint`, bench/mfa_fixture.rs: a header
-- "# step0 S steps K", then "mfa_token code(S) ... code(S+K-1)" per user), LK_WRK_THREADS
-- (wrk -t), LK_CLIENT_ID (default web). Thread n of N takes lines n, n+N, ...
-- The code is picked at request time from the wall clock's step (the server allows one step
-- of drift either way, so a request that crosses a step boundary still passes). A thread that
-- runs out of lines sends a spent token again (answered 400, so the shortage shows up as
-- non-2xx and in the chain line); done() prints one line with the chain's own counts:
--   mfa-chain: sent N, 200 N, 400 N, 429 N, other N, exhausted N, outside steps N, lines left N

local client_id = os.getenv("LK_CLIENT_ID") or "web"
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- Per-thread state; globals so that done() can read them with thread:get().
prefixes, codes = {}, {}
head, tail, step0, nsteps = 1, 0, 0, 0
sent, ok, bad400, throttled, other, exhausted, outside = 0, 0, 0, 0, 0, 0, 0
last = nil

function init(args)
  local n = tonumber(os.getenv("LK_WRK_THREADS") or "1")
  local path = os.getenv("LK_MFA_FILE")
  local f = assert(io.open(path or "", "r"), "cannot open LK_MFA_FILE " .. tostring(path))
  local header = f:read("*l") or ""
  step0, nsteps = header:match("^# step0 (%d+) steps (%d+)")
  step0, nsteps = tonumber(step0), tonumber(nsteps)
  assert(step0 and nsteps, "LK_MFA_FILE has no '# step0 S steps K' header")
  local grant = "grant_type=" .. enc("urn:latchkey:params:oauth:grant-type:mfa")
    .. "&client_id=" .. enc(client_id) .. "&mfa_token="
  local i = 0
  for line in f:lines() do
    if line ~= "" then
      if i % n == id then
        local token, rest = line:match("^(%S+) (.*)$")
        tail = tail + 1
        prefixes[tail] = grant .. enc(token) .. "&otp="
        codes[tail] = rest
      end
      i = i + 1
    end
  end
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  sent = sent + 1
  local k = math.floor(os.time() / 30) - step0
  if head > tail then
    exhausted = exhausted + 1
    -- A spent line again: the server refuses it (the token was used).
    return wrk.format(nil, nil, nil, last or "grant_type=none")
  end
  if k < 0 or k >= nsteps then
    outside = outside + 1
    k = (k < 0) and 0 or (nsteps - 1)
  end
  -- Codes are 6 digits, one space apart.
  local code = codes[head]:sub(k * 7 + 1, k * 7 + 6)
  local body = prefixes[head] .. code
  prefixes[head], codes[head] = nil, nil
  head = head + 1
  last = body
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  elseif status == 400 then
    bad400 = bad400 + 1
  elseif status == 429 then
    throttled = throttled + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { sent = 0, ok = 0, bad400 = 0, throttled = 0, other = 0, exhausted = 0, outside = 0, left = 0 }
  for _, th in ipairs(threads) do
    for _, k in ipairs({ "sent", "ok", "bad400", "throttled", "other", "exhausted", "outside" }) do
      t[k] = t[k] + th:get(k)
    end
    t.left = t.left + (th:get("tail") - th:get("head") + 1)
  end
  io.write(string.format(
    "mfa-chain: sent %d, 200 %d, 400 %d, 429 %d, other %d, exhausted %d, outside steps %d, lines left %d, 200/s %.1f\n",
    t.sent, t.ok, t.bad400, t.throttled, t.other, t.exhausted, t.outside, t.left,
    t.ok / (summary.duration / 1e6)))
end
