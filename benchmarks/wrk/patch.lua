-- wrk script of benchmark 2: PATCH /ngsi-ld/v1/entities/{id}/attrs (NGSI-LD 1.8 §6.6.3.3),
-- rotating over the ids of the loaded stations.
--   wrk -t2 -c16 -d15s -s patch.lua http://127.0.0.1:PORT -- BODY_FILE ID_PREFIX COUNT
-- Every thread starts at its own offset and walks the ids in order; the summary is printed as
-- one JSON line (latencies in microseconds) for benchmarks/run.py to read.

local body, prefix, count
local next_index = 0
-- globals: setup() runs in the main Lua state and sets `thread_no` in each thread's own state
threads_made = 0

function setup(thread)
   thread:set("thread_no", threads_made)
   threads_made = threads_made + 1
end

function init(args)
   local fh = assert(io.open(args[1], "rb"))
   body = fh:read("*a")
   fh:close()
   prefix = args[2]
   count = tonumber(args[3])
   -- spread the threads over the id range so they rarely PATCH one entity at once
   next_index = math.floor(thread_no * count / 2) % count
   wrk.method = "PATCH"
   wrk.headers["Content-Type"] = "application/json"
   wrk.body = body
end

function request()
   local path = string.format("/ngsi-ld/v1/entities/%s%06d/attrs", prefix, next_index)
   next_index = (next_index + 1) % count
   return wrk.format(nil, path)
end

function done(summary, latency, requests)
   local s = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
      '"timeouts": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, ' ..
      '"mean_us": %.1f, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      s.connect, s.read, s.write, s.status, s.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(95),
      latency:percentile(99), latency.mean, latency.max))
end
