-- Refresh-token retries inside a client's grace window (issue 14), against plain rotation
-- (refresh.lua). The client has a grace window (--refresh-grace-secs, --refresh-grace-uses):
-- presenting a used refresh token again within it answers the same successor the first use
-- issued, without rotating. Each chain (one refresh family, from one login) is worked on by
-- one request at a time: it rotates its token once (a refresh), then presents the token it
-- just used LK_RETRIES more times (retries), then moves on to the successor. A chain is
-- either in a thread's queue or in flight, never both, so no token is rotated while one of
-- its retries is in flight (that would be reuse, and revoke the family).
--
-- wrk gives response() no handle on the request it answers, so a response finds its chain by
-- the family id inside the refresh token it returns (lkrt_<family>.<generation>....): the
-- successor of a refresh, or the same successor again for a retry, is always in the family
-- of the token presented.
--
-- Environment: LK_TOKENS_FILE (one refresh token per line, from logins made before the run),
-- LK_WRK_THREADS (wrk -t), LK_CLIENT_ID (the grace client, default web-grace), LK_RETRIES
-- (retries per rotation, default 9: 90% of the requests are retries). Thread n of N takes
-- lines n, n+N, ... done() prints one line: refreshes, retries, retries answered with the
-- same successor, retries answered with another token, non-200 answers, answers with no
-- chain, exhausted queues.

local client_id = os.getenv("LK_CLIENT_ID") or "web-grace"
local retries_per = tonumber(os.getenv("LK_RETRIES") or "9")
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Per-thread state; counters are globals so that done() can read them with thread:get().
-- A chain: { token = the token to rotate next, used = the token last rotated (nil before the
-- first rotation), successor = what rotating `used` returned, left = retries still to send,
-- sent = "refresh" | "retry" while in flight }.
queue, head, tail = {}, 1, 0
inflight = {}
refreshes, retries, same, different, non200, orphans, exhausted = 0, 0, 0, 0, 0, 0, 0

local function family_of(token)
  return token and token:match("^lkrt_([0-9a-f]+)%.")
end

function init(args)
  local n = tonumber(os.getenv("LK_WRK_THREADS") or "1")
  local path = os.getenv("LK_TOKENS_FILE")
  local f = assert(io.open(path or "", "r"), "cannot open LK_TOKENS_FILE " .. tostring(path))
  local i = 0
  for line in f:lines() do
    if line ~= "" then
      if i % n == id then
        tail = tail + 1
        queue[tail] = { token = line, left = 0 }
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
    local chain = queue[head]
    queue[head] = nil
    head = head + 1
    if chain.left > 0 then
      chain.sent = "retry"
      chain.left = chain.left - 1
      token = chain.used
    else
      chain.sent = "refresh"
      token = chain.token
    end
    inflight[family_of(token)] = chain
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
  local family = family_of(token)
  local chain = family and inflight[family]
  if not chain then
    if token then orphans = orphans + 1 end
    return
  end
  inflight[family] = nil
  if chain.sent == "refresh" then
    refreshes = refreshes + 1
    chain.used = chain.token
    chain.successor = token
    chain.token = token
    chain.left = retries_per
  else
    retries = retries + 1
    if token == chain.successor then
      same = same + 1
    else
      -- Not what a retry answers: continue the chain from what came back.
      different = different + 1
      chain.token = token
      chain.left = 0
    end
  end
  tail = tail + 1
  queue[tail] = chain
end

function done(summary, latency, requests)
  local t = { refreshes = 0, retries = 0, same = 0, different = 0, non200 = 0, orphans = 0, exhausted = 0 }
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
  end
  io.write(string.format(
    "retry-chain: refreshes %d, retries %d, same successor %d, other successor %d, non-200 %d, no chain %d, exhausted %d\n",
    t.refreshes, t.retries, t.same, t.different, t.non200, t.orphans, t.exhausted))
end
