-- wrk script: POST the echo body.
wrk.method = "POST"
wrk.body = '{"text":"hello world"}'
wrk.headers["Content-Type"] = "application/json"
