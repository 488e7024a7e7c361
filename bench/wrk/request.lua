-- One request script for every HTTP scenario, configured by environment variables:
--   BENCH_METHOD     GET (default) or POST
--   BENCH_TOKEN      bearer token, optional
--   BENCH_PATHS      file with one path per line (cycled)
--   BENCH_BODIES     file with one body per line; line i is sent once, by whichever thread owns it
--   BENCH_OFFSET     first line of BENCH_BODIES this run may use (the runs before used the lines below)
--   BENCH_UPLOAD     file whose bytes are sent as the `ciphertext` part of a multipart body, the body line
--                    being its `meta` part
--   BENCH_THREADS    the number of wrk threads (-t)
-- done() prints `BENCH_NEXT <line>` (the offset for the next run) and `BENCH_EXHAUSTED <n>` (requests that
-- had to reuse a body: the run is then invalid, since reused ids are refused).
local method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN")
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local boundary = "confrere-bench-boundary"

local function lines(path)
  local result = {}
  if path == nil or path == "" then return result end
  for line in io.lines(path) do result[#result + 1] = line end
  return result
end

local function read_all(path)
  if path == nil or path == "" then return nil end
  local handle = assert(io.open(path, "rb"))
  local data = handle:read("*a")
  handle:close()
  return data
end

local created = {}
local counter = 1
function setup(thread)
  thread:set("id", counter)
  created[#created + 1] = thread
  counter = counter + 1
end

function init(args)
  paths = lines(os.getenv("BENCH_PATHS"))
  if #paths == 0 then paths = { "/" } end
  bodies = lines(os.getenv("BENCH_BODIES"))
  upload = read_all(os.getenv("BENCH_UPLOAD"))
  headers = {}
  if upload then
    headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
  elseif #bodies > 0 then
    headers["Content-Type"] = "application/json"
  end
  if token then headers["Authorization"] = "Bearer " .. token end
  index = offset + id - 1
  exhausted = 0
end

local function multipart(meta)
  return "--" .. boundary .. "\r\n"
    .. "Content-Disposition: form-data; name=\"meta\"\r\n\r\n" .. meta .. "\r\n"
    .. "--" .. boundary .. "\r\n"
    .. "Content-Disposition: form-data; name=\"ciphertext\"; filename=\"ciphertext.bin\"\r\n"
    .. "Content-Type: application/octet-stream\r\n\r\n" .. upload .. "\r\n"
    .. "--" .. boundary .. "--\r\n"
end

function request()
  local path = paths[(index % #paths) + 1]
  local body = nil
  if #bodies > 0 then
    if index >= #bodies then exhausted = exhausted + 1 end
    body = bodies[(index % #bodies) + 1]
    if upload then body = multipart(body) end
  end
  index = index + threads
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local next_line, reused = offset, 0
  for _, thread in ipairs(created) do
    next_line = math.max(next_line, thread:get("index"))
    reused = reused + thread:get("exhausted")
  end
  io.write(string.format("BENCH_NEXT %d\nBENCH_EXHAUSTED %d\n", next_line, reused))
end
