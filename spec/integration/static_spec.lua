-- static_dir: files, content types, ETag/304, no escape from the folder, and
-- window.__MIZAN_SSR_DATA__ in every HTML page, escaped against hostile strings.
local testing = require "mizan.testing"
local json = require "mizan.json"
local lfs = require "lfs"
local h = require "helpers"

local HOSTILE = '</script><script>alert(1)</script><!-- \226\128\168\226\128\169 & "quotes"'

describe("static files and SSR data", function()
  local srv, dir
  setup(function()
    dir = h.app_dir(([[
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
mizan.config { static_dir = "public" }
mizan.register(client { context = "global" } (function(req)
  return { motto = %q, who = req.user and req.user.username or mizan.null }
end), "site")
mizan.register(client { context = "box", auth = true, input = { n = T.integer, tag = T.optional(T.string) } } (function(req, args)
  return { n = args.n, owner = req.user.username, tag = args.tag or mizan.null, motto = %q }
end), "box_item")
]]):format(HOSTILE, HOSTILE))
    lfs.mkdir(dir .. "/public")
    lfs.mkdir(dir .. "/public/docs")
    h.write(dir .. "/public/index.html", "<!doctype html><html><head><title>t</title></head><body>hi</body></html>")
    h.write(dir .. "/public/docs/index.html", "<p>no head here</p>")
    lfs.mkdir(dir .. "/public/box")
    h.write(dir .. "/public/box/index.html", '<html><head><meta name="mizan-contexts" content="box, nope, global"></head></html>')
    h.write(dir .. "/public/app.js", "console.log(1)")
    h.write(dir .. "/public/style.css", "body{}")
    h.write(dir .. "/public/logo.svg", "<svg/>")
    h.write(dir .. "/secret.txt", "outside the folder")
    os.execute(("ln -s %q %q"):format(dir .. "/secret.txt", dir .. "/public/link.txt"))
    os.execute(("ln -s /etc %q"):format(dir .. "/public/etc"))
    srv = testing.server(dir)
  end)
  teardown(function() srv:stop() end)

  it("serves files with their content types", function()
    for path, ctype in pairs { ["/app.js"] = "text/javascript", ["/style.css"] = "text/css",
                               ["/logo.svg"] = "image/svg+xml", ["/"] = "text/html", ["/docs/"] = "text/html" } do
      local res = srv:request("GET", path)
      assert.equals(200, res.status, path)
      assert.matches(ctype, res.headers["content-type"], 1, true)
    end
    assert.equals("console.log(1)", srv:request("GET", "/app.js").body)
  end)

  it("answers 304 to a matching If-None-Match", function()
    local first = srv:request("GET", "/style.css")
    local etag = first.headers.etag
    assert.matches('^W/"', etag)
    local again = srv:request("GET", "/style.css", { headers = { "If-None-Match: " .. etag } })
    assert.equals(304, again.status)
    assert.equals("", again.body)
    assert.equals(200, srv:request("GET", "/style.css", { headers = { 'If-None-Match: W/"other"' } }).status)
  end)

  it("never lets a path out of the folder", function()
    for _, path in ipairs { "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/docs/../../secret.txt",
                            "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/link.txt", "/etc/passwd", "/docs/%00x" } do
      local res = srv:request("GET", path)
      assert.equals(404, res.status, path)
      assert.is_nil(res.body:find("outside the folder", 1, true), path)
      assert.is_nil(res.body:find("root:", 1, true), path)
    end
  end)

  it("puts the global context into every HTML page, escaped so no string can break out", function()
    local page = srv:request("GET", "/").body
    local data = page:match("<script>window.__MIZAN_SSR_DATA__=(.-);</script></head>")
    assert.is_string(data, page)
    assert.is_nil(data:find("</script", 1, true))
    assert.is_nil(data:find("<!--", 1, true))
    assert.is_nil(data:find("\226\128\168", 1, true))
    assert.is_nil(data:find("\226\128\169", 1, true))
    local decoded = json.decode(data)
    assert.equals(HOSTILE, decoded.site.motto, "the escapes decode back to the same text")
    assert.equals(json.null, decoded.site.who)
    assert.equals(1, select(2, page:gsub("<script>", "")), "exactly one script tag was added")
    -- a page without </head> gets it at the start
    assert.matches("^<script>window.__MIZAN_SSR_DATA__=", srv:request("GET", "/docs/").body)
  end)

  it("hydrates the requesting user's own global context", function()
    local agent = srv:agent()
    agent:call("auth.signup", { username = "pia", password = "pia password" })
    local res = srv:request("GET", "/", { headers = { "Cookie: mizan_session=" .. agent.cookie } })
    local data = json.decode(res.body:match("__MIZAN_SSR_DATA__=(.-);</script>"))
    assert.equals("pia", data.site.who)
    assert.equals("pia", data.current_user.username)
  end)

  it("puts the named contexts a page asks for in it too, params from the page's query, for that user only", function()
    local agent = srv:agent()
    agent:call("auth.signup", { username = "quin", password = "quin password" })
    local cookie = { "Cookie: mizan_session=" .. agent.cookie }
    local page = srv:request("GET", "/box/?n=3&tag=x&other=1", { headers = cookie }).body
    local text = page:match("__MIZAN_SSR_CONTEXTS__=(.-);</script>")
    assert.is_string(text, page)
    assert.is_nil(text:find("</script", 1, true))
    local list = json.decode(text)
    assert.equals(1, #list, "unknown names and global are not among them")
    assert.equals("box", list[1].context)
    assert.same({ n = "3", tag = "x" }, list[1].params, "only the context's params, as the page's query gave them")
    assert.same({ n = 3, owner = "quin", tag = "x", motto = HOSTILE }, list[1].data.box_item)
    assert.equals("quin", json.decode(page:match("__MIZAN_SSR_DATA__=(.-);window")).current_user.username)
    -- a context that fails (signed out here; or a param missing) is left out: the client fetches it
    assert.same({}, json.decode(srv:request("GET", "/box/?n=3").body:match("__MIZAN_SSR_CONTEXTS__=(.-);</script>")))
    assert.same({}, json.decode(srv:request("GET", "/box/", { headers = cookie }).body:match("__MIZAN_SSR_CONTEXTS__=(.-);</script>")))
    -- a page that asks for nothing gets nothing more
    assert.is_nil(srv:request("GET", "/", { headers = cookie }).body:find("__MIZAN_SSR_CONTEXTS__", 1, true))
  end)

  it("still answers the API and 404s outside both", function()
    assert.equals(200, srv:call("site", {}, { method = "GET" }).status)
    h.assert_error(srv:request("GET", "/nope.html"), 404, "not_found")
  end)
end)
