-- spec/shared is the committed copy of the design contract's data (DESIGN.md,
-- vectors, conformance suites, the benchmark peer's config), so a clone stands
-- alone. Where the upstream shared/ folder exists beside the repository, the
-- copy must still equal it, file for file.
local lfs = require "lfs"
local h = require "helpers"

local COPIED = { "DESIGN.md", "vectors", "conformance", "bench" }

-- Every regular file under `root/rel`, as paths relative to `root`.
local function files(root, rel, out)
  out = out or {}
  local path = root .. "/" .. rel
  local mode = lfs.attributes(path, "mode")
  if mode == "file" then
    out[#out + 1] = rel
  elseif mode == "directory" then
    for name in lfs.dir(path) do
      if name ~= "." and name ~= ".." then files(root, rel .. "/" .. name, out) end
    end
  end
  return out
end

local function tree(root)
  local out = {}
  for _, top in ipairs(COPIED) do files(root, top, out) end
  table.sort(out)
  return out
end

describe("spec/shared (the committed copy of shared/)", function()
  it("holds the vectors and conformance data the specs read", function()
    assert.equals("file", lfs.attributes(h.shared("vectors/cache_keys.json"), "mode"))
    assert.equals("file", lfs.attributes(h.shared("vectors/invalidate_header.json"), "mode"))
    assert.equals("directory", lfs.attributes(h.shared("conformance/JSONTestSuite/test_parsing"), "mode"))
    assert.equals("file", lfs.attributes(h.shared("bench/openresty.conf"), "mode"))
  end)

  local upstream = h.upstream_shared()
  local check = upstream and it or pending
  check("still equals ../shared, file for file (copy it again when shared/ changes)", function()
    local theirs, ours = tree(upstream), tree("spec/shared")
    assert.same(theirs, ours)
    for _, rel in ipairs(theirs) do
      if h.read(upstream .. "/" .. rel) ~= h.read("spec/shared/" .. rel) then
        error(("spec/shared/%s differs from %s/%s: cp -r %s/%s spec/shared/%s"):format(rel, upstream, rel, upstream,
          rel, rel), 0)
      end
    end
  end)
end)
