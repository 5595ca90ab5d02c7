-- wrk script: borrow/return cycles through the gateway. Each request borrows a title for a
-- reader (a librarian token acting for readers), or returns the oldest loan still open, and so on. The title
-- and reader lists come from bench/borrow.sh (borrow-data.lua beside this file at run time).
local data = dofile(os.getenv("BORROW_DATA"))
local token = data.token
local titles, readers = data.titles, data.readers
-- Loans answered 201 and not returned yet, oldest first. Per thread, not per connection (wrk's
-- script has no per-connection state): a single "the loan to return" variable was overwritten
-- when two connections' borrows answered before the next request was made, and those loans stayed
-- open for good; over a few runs on one stack the readers reached their loan limit and the load
-- turned into refusals.
local open = {}

request = function()
  local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  if #open > 0 then
    local path = "/api/loans/" .. table.remove(open, 1) .. "/return"
    return wrk.format("POST", path, headers, "")
  end
  local title = titles[math.random(#titles)]
  local reader = readers[math.random(#readers)]
  local body = string.format('{"bookId":"%s","userId":"%s","days":14}', title, reader)
  return wrk.format("POST", "/api/loans", headers, body)
end

response = function(status, headers, body)
  if status == 201 then
    local id = string.match(body, '"id":"([0-9a-f%-]+)"')
    if id then
      open[#open + 1] = id
    end
  end
end
