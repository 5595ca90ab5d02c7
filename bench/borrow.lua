-- wrk script: borrow/return cycles through the gateway. Each connection borrows a title for a
-- reader (a librarian token acting for readers), then returns that loan, and so on. The title
-- and reader lists come from bench/borrow.sh (borrow-data.lua beside this file at run time).
local data = dofile(os.getenv("BORROW_DATA"))
local token = data.token
local titles, readers = data.titles, data.readers
local loan = nil
local counter = 0

request = function()
  counter = counter + 1
  local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  if loan then
    local path = "/api/loans/" .. loan .. "/return"
    loan = nil
    return wrk.format("POST", path, headers, "")
  end
  local title = titles[math.random(#titles)]
  local reader = readers[math.random(#readers)]
  local body = string.format('{"bookId":"%s","userId":"%s","days":14}', title, reader)
  return wrk.format("POST", "/api/loans", headers, body)
end

response = function(status, headers, body)
  if status == 201 then
    loan = string.match(body, '"id":"([0-9a-f%-]+)"')
  end
end
