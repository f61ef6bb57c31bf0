-- wrk script: every request is a new, valid sign-up through the web form.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
end

function request()
  counter = counter + 1
  local body = "email=bench-" .. id .. "-" .. counter .. "%40example.org"
    .. "&name=Bench+User&organisation=Bench+Org&locality=stroud&consent=yes"
  return wrk.format("POST", "/subscriptions",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f signups_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non_2xx=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
