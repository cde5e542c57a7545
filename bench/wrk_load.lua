-- wrk script of bench/: POST distinct pathway Bundles made from a template, or GET paths read from a file.
-- Arguments after "--": mode (post|get), file, first sequence number, thread count, Prefer return value,
-- NIR prefix. Headers common to all requests come with wrk's -H. The result is printed by done() as one
-- JSON line that bench/loadgen.py reads.

local mode, template, paths = nil, nil, {}
local seq, stride = 0, 1
local nir_prefix = ""
local created = 0

function setup(thread)
  -- Each thread has its own Lua state; this global tells it which share of the sequence numbers is its own.
  thread:set("thread_index", created)
  created = created + 1
end

function init(args)
  mode = args[1]
  local f = assert(io.open(args[2], "rb"))
  stride = tonumber(args[4])
  if mode == "post" then
    template = f:read("*a")
    seq = tonumber(args[3]) + thread_index
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/fhir+json"
    if args[5] ~= nil and args[5] ~= "" then
      wrk.headers["Prefer"] = "return=" .. args[5]
    end
    nir_prefix = args[6]
  else
    -- One line per query: the path, then optionally a tab and the Authorization header to send with it.
    -- The requests are formatted once here, so that each one costs wrk almost nothing.
    for line in f:lines() do
      if #line > 0 then
        local path, authorization = line:match("^([^\t]*)\t?(.*)$")
        local headers = {}
        for name, value in pairs(wrk.headers) do headers[name] = value end
        if authorization ~= "" then headers["Authorization"] = authorization end
        paths[#paths + 1] = wrk.format("GET", path, headers)
      end
    end
    -- Threads start at different places so that they do not ask the same queries in step.
    seq = tonumber(args[3]) + thread_index * math.floor(#paths / stride)
    stride = 1
  end
  f:close()
end

function request()
  if mode == "post" then
    local n = seq
    seq = seq + stride
    -- The same values as bench.pathway_bundle.fill_template: tag, uuid tail, INS-NIR with its key.
    local nir = nir_prefix .. string.format("%06d", n % 1000000)
    local ins = nir .. string.format("%02d", 97 - (tonumber(nir) % 97))
    local body = template:gsub("@@TAG@@", string.format("%08d", n % 100000000))
    body = body:gsub("@@HEX@@", string.format("%012x", n))
    body = body:gsub("@@INS@@", ins)
    return wrk.format(nil, nil, nil, body)
  end
  local formatted = paths[(seq % #paths) + 1]
  seq = seq + stride
  return formatted
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
