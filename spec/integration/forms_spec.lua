-- Forms over HTTP: schema, validate, submit, Django's error shape, clean,
-- unknown fields, affects, auth, and the x-mizan-forms export.
local testing = require "mizan.testing"
local json = require "mizan.json"
local h = require "helpers"

describe("forms", function()
  local srv
  setup(function() srv = testing.server("spec/apps/forms") end)
  teardown(function() srv:stop() end)

  local good = { name = "Ada", email = "ada@lovelace.dev", topic = "help", message = "Hello there, friend.", agree = true }

  it("registers schema, validate and submit", function()
    local schema = srv:call("contact.schema", {}, { method = "GET" }).json.result
    assert.equals("Contact Us", schema.title)
    local names = {}
    for i, f in ipairs(schema.fields) do names[i] = f.name end
    assert.same({ "name", "email", "topic", "message", "agree", "source" }, names, "declared order")
    local name = schema.fields[1]
    assert.same({ name = "name", kind = "char", label = "Your name", required = true, help_text = "As you like to be called.",
                  initial = json.null, disabled = false, constraints = { max_length = 100, strip = true } }, name)
    assert.same({ { value = "sales", label = "Sales" }, { value = "help", label = "Help" } }, schema.fields[3].choices)
    assert.equals("help", schema.fields[3].initial)
    assert.equals("Email", schema.fields[2].label)
  end)

  it("validates without submitting", function()
    local r = srv:call("contact.validate", good).json.result
    assert.same({ valid = true, errors = {} }, r)
    r = srv:call("contact.validate", { email = "nope", message = "short" }).json.result
    assert.is_false(r.valid)
    assert.same({ "This field is required." }, r.errors.name)
    assert.same({ "Enter a valid email address." }, r.errors.email)
    assert.same({ "Ensure this value has at least 10 characters (it has 5)." }, r.errors.message)
    assert.same({ "This field is required." }, r.errors.agree)
    assert.equals(0, srv:call("outbox", {}, { method = "GET" }).json.result.count)
  end)

  it("answers a bad submission with 400 validation_error and Django's error shape", function()
    local err = h.assert_error(srv:call("contact.submit", { name = ("x"):rep(120), email = "a@b.co", topic = "spam",
                                                           message = "long enough message", agree = true }),
                               400, "validation_error")
    assert.same({ "Ensure this value has at most 100 characters (it has 120)." }, err.fields.name)
    assert.same({ "Select a valid choice. spam is not one of the available choices." }, err.fields.topic)
  end)

  it("runs clean for cross-field errors, with __all__", function()
    local bad = {}
    for k, v in pairs(good) do bad[k] = v end
    bad.topic, bad.email = "sales", "buyer@example.com"
    local err = h.assert_error(srv:call("contact.submit", bad), 400, "validation_error")
    assert.same({ "We do not sell to example.com." }, err.fields.email)
    assert.same({ "Sales enquiries need a real company." }, err.fields.__all__)
  end)

  it("submits cleaned data only: declared fields, converted, unknown fields dropped", function()
    local input = {}
    for k, v in pairs(good) do input[k] = v end
    input.name = "  Ada  "
    input.is_admin = true
    input.source = "forged"
    local res = srv:call("contact.submit", input)
    assert.equals(200, res.status)
    local data = res.json.result.data
    assert.equals("Ada", data.name)
    assert.equals("web", data.source, "a disabled field keeps its initial value")
    assert.is_nil(data.is_admin)
    assert.same(data, srv:call("outbox", {}, { method = "GET" }).json.result.last)
  end)

  it("invalidates and purges what a form affects", function()
    local before = srv:context("items").json.item_list
    local res = srv:call("new_item.submit", { title = "second" })
    assert.equals("items", res.headers["x-mizan-invalidate"])
    assert.same({ "items" }, res.json.invalidate)
    local after = srv:context("items").json.item_list
    assert.equals(#before + 1, #after)
  end)

  it("applies the form's auth to its functions", function()
    h.assert_error(srv:call("members_only.submit", { note = "x" }), 401, "unauthenticated")
    h.assert_error(srv:call("members_only.schema", {}, { method = "GET" }), 401, "unauthenticated")
  end)

  it("refuses a cross-site submission like any mutation", function()
    local res = srv:call("contact.submit", good, { headers = { ["Content-Type"] = "application/json", Origin = "https://evil.example" } })
    h.assert_error(res, 403, "csrf_failed")
  end)

  it("exports x-mizan-forms with the full field spec", function()
    local doc = srv:request("GET", "/api/mizan/schema/").json
    local f = doc["x-mizan-forms"].contact
    assert.equals("Contact Us", f.title)
    assert.equals(6, #f.fields)
    assert.same({ schema = "contact.schema", validate = "contact.validate", submit = "contact.submit" }, f.functions)
    assert.equals(true, doc["x-mizan-forms"].members_only.auth)
    assert.same({ "items" }, doc["x-mizan-functions"]["new_item.submit"].affects)
    assert.equals("mutation", doc["x-mizan-functions"]["contact.submit"].kind)
    assert.equals("query", doc["x-mizan-functions"]["contact.validate"].kind)
  end)
end)
