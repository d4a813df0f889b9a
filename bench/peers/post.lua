-- wrk script for bench/compare.sh scenario (d): REST publish throughput over
-- keep-alive connections. Every request is a POST of the same JSON body
-- (WRK_BODY_BYTES bytes, default 100) to the URL's path, e.g.
--   wrk -t1 -c50 -d10s -s bench/peers/post.lua \
--       http://127.0.0.1:8081/v1/topics/bench.rest/events     (heraldd)
--   wrk ... -s bench/peers/post.lua http://127.0.0.1:PORT/204 (nginx ceiling)
-- At the end it prints one line that compare.sh reads:
--   result: requests=N duration_us=N rps=N non2xx=N errors=N p50_us=N p99_us=N max_us=N

local size = tonumber(os.getenv("WRK_BODY_BYTES") or "100")
local head = '{"bench":"rest","pad":"'
local tail = '"}'
local pad = size - #head - #tail
if pad < 0 then pad = 0 end

wrk.method = "POST"
wrk.body = head .. string.rep("x", pad) .. tail
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "result: requests=%d duration_us=%d rps=%.1f non2xx=%d errors=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.requests / secs, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
