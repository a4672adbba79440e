-- wrk script for bench/run_webservers.sh: every request carries "Authorization: Bearer <token>",
-- the tokens taken in turn from a file of one token a line. Thread k of n starts at line k*N/n,
-- so while the threads keep pace the first N requests of a run send every token exactly once.
-- "firstpass" also times each thread's first N/n responses (all tokens new to the server) and
-- done() prints that rate. Usage: wrk -s rotate_tokens.lua URL -- TOKEN_FILE THREADS [firstpass]

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } rotate_timespec_t;
int clock_gettime(int clk_id, rotate_timespec_t *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("rotate_timespec_t")

local function now_s()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

-- Main state: hand each thread its index, keep the threads so done() can read their counters.
local threads = {}
function setup(thread)
    thread:set("id", #threads)
    threads[#threads + 1] = thread
end

-- Thread state. Requests are formatted once here: a run then costs wrk one table index per
-- request, so the load generator takes as little of the shared box as a static wrk run does.
local requests, count, next_i
function init(args)
    local path, nthreads = args[1], tonumber(args[2])
    assert(path and nthreads, "usage: -- TOKEN_FILE THREADS [firstpass]")
    requests = {}
    for line in io.lines(path) do
        if #line > 0 then
            requests[#requests + 1] = wrk.format("GET", nil, {Authorization = "Bearer " .. line})
        end
    end
    count = #requests
    assert(count > 0, "no tokens in " .. path)
    local from = math.floor(id * count / nthreads)
    share = math.floor((id + 1) * count / nthreads) - from
    next_i = from
    responses, non200 = 0, 0
    if args[3] ~= "firstpass" then
        -- wrk asks for response callbacks only when this global is a function after init: the
        -- steady-state runs skip the per-response Lua call altogether.
        response = nil
    end
end

function request()
    if t0 == nil then
        t0 = now_s()
    end
    next_i = next_i + 1
    if next_i > count then
        next_i = 1
    end
    return requests[next_i]
end

function response(status, headers, body)
    responses = responses + 1
    if status ~= 200 then
        non200 = non200 + 1
    end
    if responses == share then
        t_first = now_s()
        first_non200 = non200
    end
    t_last = now_s()
end

-- Main state again: one line of key=value pairs per figure, for run_webservers.sh to parse.
function done(summary, latency, _)
    local e = summary.errors
    io.write(string.format("RESULT requests=%d duration_s=%.3f non2xx=%d connect=%d read=%d " ..
        "write=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
        summary.requests, summary.duration / 1e6, e.status, e.connect, e.read, e.write, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
    local start, stop, reqs, bad, complete = nil, nil, 0, 0, true
    for _, t in ipairs(threads) do
        local t0, first, last = t:get("t0"), t:get("t_first"), t:get("t_last")
        if t0 ~= nil and last ~= nil then
            local share, responses = t:get("share"), t:get("responses")
            if first == nil then
                -- This thread never got through its share: what it did was all first pass.
                complete, first = false, last
                reqs, bad = reqs + responses, bad + t:get("non200")
            else
                reqs, bad = reqs + share, bad + t:get("first_non200")
            end
            start = (start == nil or t0 < start) and t0 or start
            stop = (stop == nil or first > stop) and first or stop
        end
    end
    if start ~= nil and stop > start then
        io.write(string.format(
            "FIRSTPASS requests=%d seconds=%.3f rps=%.1f non200=%d complete=%s\n",
            reqs, stop - start, reqs / (stop - start), bad, complete and "yes" or "no"))
    end
end
