-- wrk: GET the pk function with a random account id (as pgbench -S picks one)
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/mizan/call/pk/?aid=" .. math.random(1, 100000))
end
