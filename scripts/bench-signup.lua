-- wrk script: every request is a new, valid sign-up through the web form, each with a
-- form token of its own, fetched beforehand (TOKENS_FILE, one a line) as a bot would.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  tokens = {}
  local nthreads = tonumber(os.getenv("THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if i % nthreads == id then table.insert(tokens, line) end
    i = i + 1
  end
end

function request()
  counter = counter + 1
  -- Past the last token they are used again, and refused (422): fetch more.
  local token = tokens[(counter - 1) % #tokens + 1]
  local body = "email=bench-" .. id .. "-" .. counter .. "%40example.org"
    .. "&name=Bench+User&organisation=Bench+Org&locality=stroud&consent=yes"
    .. "&form_token=" .. token
  return wrk.format("POST", "/subscriptions",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f requests_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non_2xx=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
