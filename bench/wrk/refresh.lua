-- Refresh-token grant with rotation. Each refresh returns a new refresh token and spends the
-- presented one (presenting a spent token again revokes its whole family), so every wrk
-- thread keeps its own queue of valid tokens: request() takes one, response() puts the new
-- one back. No token is ever presented twice.
--
-- Environment: LK_TOKENS_FILE (one refresh token per line, from logins made before the run),
-- LK_WRK_THREADS (wrk -t), LK_CLIENT_ID (default web). Thread n of N takes lines n, n+N, ...
-- A thread that runs out of tokens (it lost some to failed requests) sends an invalid one;
-- the server answers 400, so the loss shows up as non-2xx instead of hiding. done() prints
-- one line with the chain's own counts (non-200 answers, exhausted queues, tokens left).

local client_id = os.getenv("LK_CLIENT_ID") or "web"
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Per-thread state; globals so that done() can read them with thread:get().
queue, head, tail = {}, 1, 0
non200, exhausted = 0, 0

function init(args)
  local n = tonumber(os.getenv("LK_WRK_THREADS") or "1")
  local path = os.getenv("LK_TOKENS_FILE")
  local f = assert(io.open(path or "", "r"), "cannot open LK_TOKENS_FILE " .. tostring(path))
  local i = 0
  for line in f:lines() do
    if line ~= "" then
      if i % n == id then
        tail = tail + 1
        queue[tail] = line
      end
      i = i + 1
    end
  end
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local token
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    token = "lkrt_exhausted"
    exhausted = exhausted + 1
  end
  return wrk.format(nil, nil, nil,
    "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. token)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
  local token = body and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    tail = tail + 1
    queue[tail] = token
  end
end

function done(summary, latency, requests)
  local bad, dry, left = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    dry = dry + t:get("exhausted")
    left = left + (t:get("tail") - t:get("head") + 1)
  end
  io.write(string.format("refresh-chain: non-200 %d, exhausted %d, tokens left %d\n", bad, dry, left))
end
