-- GET /api/v1/me with one bearer access token (a user JWT from the password grant, obtained
-- before the pass): signature check, denylist (jti, sid, user), then one read of the user.
-- Environment: LK_ACCESS_TOKEN.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("LK_ACCESS_TOKEN") or "")
