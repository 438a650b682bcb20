-- RFC 7662 introspection of one active user access token (a JWT with a sid: the denylist
-- checks its jti, session and user) by the confidential client `rs` with HTTP Basic.
-- Environment: LK_ACCESS_TOKEN, LK_BASIC (the base64 of rs:secret).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. (os.getenv("LK_BASIC") or "")
wrk.body = "token=" .. (os.getenv("LK_ACCESS_TOKEN") or "")

