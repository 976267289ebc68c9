-- wrk script: request paths picked at random from a file (one absolute path per line,
-- given after `--`), and print one machine-readable summary line at the end:
--   WRKJSON {"requests":..,"bytes":..,"duration_us":..,"p50_us":..,"p99_us":..,...}
local paths = {}

function init(args)
  local file = args[1]
  if file == nil then
    error("usage: wrk ... -s wrk-paths.lua URL -- PATHS_FILE")
  end
  for line in io.lines(file) do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("no paths in " .. file)
  end
  -- Different threads, different sequences (tostring of a table is its address).
  local addr = tonumber(string.match(tostring({}), "0x(%x+)") or "1", 16) or 1
  math.randomseed(os.time() + addr % 100000)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"bytes":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
