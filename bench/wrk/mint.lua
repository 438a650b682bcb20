-- Seeding for the revoke scenario: client_credentials tokens for `billing`, each thread
-- appending the access tokens it gets to LK_TOKENS_FILE.<thread id>, one per line.
-- Environment: LK_CLIENT_SECRET, LK_TOKENS_FILE.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  out = assert(io.open(os.getenv("LK_TOKENS_FILE") .. "." .. id, "w"))
  out:setvbuf("line")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = "grant_type=client_credentials&client_id=billing&client_secret="
    .. enc(os.getenv("LK_CLIENT_SECRET") or "")
end

function response(status, headers, body)
  local token = body and body:match('"access_token"%s*:%s*"([^"]+)"')
  if token then
    out:write(token, "\n")
  end
end
