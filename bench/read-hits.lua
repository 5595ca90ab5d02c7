-- wrk script: anonymous reads of a book by ID, a title picked at random from READ_IDS (one ID a
-- line); counts the answers that came from the gateway's cache (they carry Age) and prints
-- "hits <n> of <m> 200 answers" at the end (bench/hit-rate.sh).
local ids = {}
for line in io.lines(os.getenv("READ_IDS")) do ids[#ids + 1] = line end
local threads = {}
hits, oks = 0, 0 -- globals: done() reads them from every thread

setup = function(thread) threads[#threads + 1] = thread end

request = function()
  return wrk.format("GET", "/api/books/" .. ids[math.random(#ids)])
end

response = function(status, headers, body)
  if status == 200 then
    oks = oks + 1
    if headers["Age"] or headers["age"] then hits = hits + 1 end
  end
end

done = function(summary, latency, requests)
  local h, o = 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hits")
    o = o + t:get("oks")
  end
  io.write(string.format("hits %d of %d 200 answers\n", h, o))
end
