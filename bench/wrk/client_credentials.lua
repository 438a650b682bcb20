-- client_credentials grant for the confidential client `billing` (client_secret_post).
-- Environment: LK_CLIENT_ID (default billing), LK_CLIENT_SECRET.
local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=" .. enc(os.getenv("LK_CLIENT_ID") or "billing")
  .. "&client_secret=" .. enc(os.getenv("LK_CLIENT_SECRET") or "")
