-- Password grant: every request logs the same user in through the public client `web`.
-- Environment: LK_USERNAME, LK_PASSWORD, LK_CLIENT_ID (default web).
local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=password&username=" .. enc(os.getenv("LK_USERNAME") or "")
  .. "&password=" .. enc(os.getenv("LK_PASSWORD") or "")
  .. "&client_id=" .. enc(os.getenv("LK_CLIENT_ID") or "web")
