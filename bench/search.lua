-- wrk script: cycles through catalog searches (words of bench/generate-catalog.py's vocabulary,
-- a typo, filters, sorts, facets), so the cached run sees a realistic set of distinct pages.
local paths = {
  "/api/books?search=darkness",
  "/api/books?search=history%20garden",
  "/api/books?search=river&sort=newest",
  "/api/books?search=cafe",
  "/api/books?search=hystory",
  "/api/books?search=senor&language=es",
  "/api/books?category=science%20fiction&sort=popular",
  "/api/books?search=garden&category=history&available=true",
  "/api/books?sort=title&page=50",
  "/api/books?search=dark%20river&page=2",
  "/api/books/facets?search=darkness",
  "/api/books/facets?category=fantasy",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
