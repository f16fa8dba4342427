-- mizan.forms: field validation against spec/forms_cases.json (the data the
-- client's tests will share), and every load error naming form and field.
local forms = require "mizan.forms"
local json = require "mizan.json"
local h = require "helpers"

local function normalize(v) return json.decode(json.encode(v)) end

describe("form fields", function()
  local data = h.load_json("spec/forms_cases.json")

  it("has cases for every field kind", function()
    local kinds = {}
    for _, group in ipairs(data.fields) do kinds[group.kind] = true end
    for _, k in ipairs { "char", "text", "email", "url", "integer", "decimal", "boolean", "choice",
                         "multiple_choice", "date", "datetime" } do
      assert.is_true(kinds[k], k)
    end
  end)

  it("validate every case of spec/forms_cases.json as it says", function()
    local n = 0
    for _, group in ipairs(data.fields) do
      local field = forms[group.kind] "f" (group.options)
      local form = { fields = { field } }
      for _, case in ipairs(group.cases) do
        n = n + 1
        local input = {}
        if not case.absent then input.f = case.input end
        local what = ("%s %s <- %s"):format(group.kind, json.encode(group.options), json.encode(case.input))
        local cleaned, errors = forms.validate(form, input)
        if case.errors then
          assert.is_nil(cleaned, what)
          assert.same(case.errors, errors.f, what)
        else
          assert.is_nil(errors, what .. ": " .. json.encode(errors or {}))
          assert.same(normalize(case.cleaned), normalize(cleaned.f), what)
        end
      end
    end
    assert.is_true(n > 100)
  end)
end)

describe("form load errors", function()
  local PRELUDE = 'local mizan = require "mizan"\nlocal forms = mizan.forms\n'
  local function load_error(body)
    local ok, err = h.try_load(PRELUDE .. body)
    assert.is_false(ok, "the app loaded but should not have")
    return tostring(err)
  end
  local ok_submit = "on_submit_success = function() return true end"

  it("names the form and the field of a duplicate field", function()
    local err = load_error(([[forms.form "contact" { fields = { forms.char "name" {}, forms.email "name" {} }, %s }]]):format(ok_submit))
    assert.matches("app.lua:3: form 'contact', field 'name': a duplicate field name", err, 1, true)
  end)

  it("names the form and the field of a choice field without choices", function()
    local err = load_error(([[forms.form "survey" { fields = { forms.choice "topic" {} }, %s }]]):format(ok_submit))
    assert.matches("form 'survey', field 'topic': a choice field needs choices", err, 1, true)
  end)

  it("names the form and the field of a bad constraint", function()
    for opt, msg in pairs {
      ["max_length = -1"] = "option 'max_length' must be a non-negative integer",
      ["maxlen = 3"] = "char fields have no option 'maxlen'",
      ["min_length = 5, max_length = 2"] = "the minimum (5) is greater than the maximum (2)",
      ["required = 'yes'"] = "option 'required' must be true or false",
    } do
      local err = load_error(([[forms.form "f1" { fields = { forms.char "name" { %s } }, %s }]]):format(opt, ok_submit))
      assert.matches("form 'f1', field 'name': " .. msg, err, 1, true)
    end
    local err = load_error(([[forms.form "f2" { fields = { forms.choice "c" { choices = { "a", "b" } } }, %s }]]):format(ok_submit))
    assert.matches("form 'f2', field 'c': option 'choices' choice #1 must be a {value, label} pair", err, 1, true)
    err = load_error(([[forms.form "f3" { fields = { forms.decimal "d" { max_digits = 2, decimal_places = 3 } }, %s }]]):format(ok_submit))
    assert.matches("form 'f3', field 'd': decimal_places is greater than max_digits", err, 1, true)
    err = load_error(([[forms.form "f4" { fields = { forms.integer "n" { initial = "x" } }, %s }]]):format(ok_submit))
    assert.matches("form 'f4', field 'n': the initial value is not valid: Enter a whole number.", err, 1, true)
  end)

  it("refuses a form without on_submit_success or fields", function()
    assert.matches("form 'x': on_submit_success must be a function", load_error [[forms.form "x" { fields = { forms.char "a" {} } }]], 1, true)
    assert.matches("form 'y': fields must be a non-empty list", load_error(([[forms.form "y" { fields = {}, %s }]]):format(ok_submit)), 1, true)
  end)
end)
