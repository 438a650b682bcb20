-- RFC 7009 revocation of distinct access tokens (minted before the pass by mint.lua), each
-- revoked once, by the confidential client `billing` with HTTP Basic authentication.
-- Environment: LK_TOKENS_FILE (one token per line), LK_WRK_THREADS (wrk -t), LK_BASIC (the
-- base64 of billing:secret). Thread n of N takes lines n, n+N, ... A thread that runs out
-- sends a token that is not ours (answered 200 without work): done() reports how many, so a
-- dry run cannot pass for a fast one.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

queue, head, tail = {}, 1, 0
non200, exhausted = 0, 0

function init(args)
  local n = tonumber(os.getenv("LK_WRK_THREADS") or "1")
  local f = assert(io.open(os.getenv("LK_TOKENS_FILE") or "", "r"), "cannot open LK_TOKENS_FILE")
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
  wrk.headers["Authorization"] = "Basic " .. (os.getenv("LK_BASIC") or "")
end

function request()
  local token
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    token = "exhausted"
    exhausted = exhausted + 1
  end
  return wrk.format(nil, nil, nil, "token=" .. token)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local bad, dry, left = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    dry = dry + t:get("exhausted")
    left = left + (t:get("tail") - t:get("head") + 1)
  end
  io.write(string.format("revoke-chain: non-200 %d, exhausted %d, tokens left %d\n", bad, dry, left))
end
