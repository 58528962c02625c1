"""Load from ``wrk`` with a POST Lua script that also counts the requests it sent.

wrk is closed-loop (its percentiles have coordinated omission) and shares the cores with
the servers; read c=1 for the per-hop cost and req/s and CPU per request for capacity.
The Lua ``done()`` hook prints one ``BENCH {json}`` line with exact figures, so nothing
is scraped from wrk's human output.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK = "wrk"
API_KEY = "sk-ant-api03-bench-not-a-real-key"
_BODY_JSON = (
    '{"model":"claude-sonnet-4-5","max_tokens":1024,'
    '"messages":[{"role":"user","content":"Hello, world"}]}'
)
_BODY_SSE = (
    '{"model":"claude-sonnet-4-5","max_tokens":1024,'
    '"messages":[{"role":"user","content":"Hello, world"}],"stream":true}'
)
WORKLOADS = {"json": _BODY_JSON, "sse": _BODY_SSE}
HEADERS = {
    "content-type": "application/json",
    "x-api-key": API_KEY,
    "anthropic-version": "2023-06-01",
    "user-agent": "spendgate-bench/1 (wrk)",
}

# request() counts what was sent (a call cut off when wrk stops is sent, not
# completed); done() sums the per-thread counters and prints one JSON line. wrk
# calls request() once more before any connection, on the first thread only, to
# check the script (script_verify_request), hence the "- 1".
_LUA = """
wrk.method = "POST"
wrk.body = '{body}'
{headers}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) sent = 0; req = wrk.format() end
function request() sent = sent + 1; return req end
function done(summary, latency, requests)
  local total = -1
  for _, t in ipairs(threads) do total = total + t:get("sent") end
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"sent":%d,"completed":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"p999_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    total, summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# The soak's mixed load: three paced streams to one non-streaming call.
_MIXED_LUA = """
local stream = '{sse}'
local plain = '{json}'
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args)
  sent = 0
  local h = {{}}
{headers}
  local hs = {{}}
  for k, v in pairs(h) do hs[k] = v end
  hs["x-bench-gap-ms"] = "{gap_ms}"
  reqs = {{
    wrk.format("POST", nil, hs, stream), wrk.format("POST", nil, hs, stream),
    wrk.format("POST", nil, hs, stream), wrk.format("POST", nil, h, plain)
  }}
end
function request() sent = sent + 1; return reqs[(sent % 4) + 1] end
""" + ("function done" + _LUA.split("function done", 1)[1])


def write_mixed_script(path: Path, api_key: str | None, gap_ms: float) -> Path:
    """The soak's Lua script: 3 streams (events ``gap_ms`` apart) to 1 JSON call."""
    headers = "\n".join(f'  h["{k}"] = "{v}"' for k, v in headers_for(api_key).items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        _MIXED_LUA.format(sse=_BODY_SSE, json=_BODY_JSON, headers=headers, gap_ms=gap_ms)
    )
    return path


class LoadError(RuntimeError):
    """wrk could not run or printed no result."""


@dataclass(frozen=True)
class Run:
    """One wrk run."""

    connections: int
    seconds: float
    sent: int
    completed: int
    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int
    errors: int

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.completed / (self.duration_us / 1e6) if self.duration_us else 0.0


def wrk_path() -> str | None:
    """The wrk executable, or None."""
    return shutil.which(WRK)


def headers_for(api_key: str | None = None) -> dict[str, str]:
    """The request headers, with ``api_key`` (a spendgate proxy key) instead of the default."""
    return {**HEADERS, "x-api-key": api_key or API_KEY}


def write_scripts(directory: Path, api_key: str | None = None) -> dict[str, Path]:
    """One Lua script per workload, written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers_for(api_key).items())
    scripts = {}
    for name, body in WORKLOADS.items():
        path = directory / f"post_{name}.lua"
        path.write_text(_LUA.format(body=body, headers=headers))
        scripts[name] = path
    return scripts


def run(url: str, script: Path, *, connections: int, seconds: float) -> Run:
    """One bounded wrk run (one thread) against ``url``."""
    argv = [
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "-T10s",
        "-s",
        str(script),
        url,
    ]
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LoadError(f"wrk did not run: {exc}") from exc
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line[len("BENCH ") :])
            errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            return Run(
                connections=connections,
                seconds=seconds,
                sent=data["sent"],
                completed=data["completed"],
                duration_us=data["duration_us"],
                p50_us=data["p50_us"],
                p90_us=data["p90_us"],
                p99_us=data["p99_us"],
                p999_us=data["p999_us"],
                max_us=data["max_us"],
                errors=errors,
            )
    raise LoadError(f"wrk printed no result (exit {out.returncode}): {out.stderr.strip()[-500:]}")


def median_run(runs: list[Run]) -> Run:
    """The run with the median requests per second."""
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def median_rps(runs: list[Run]) -> float:
    """Median requests per second of ``runs``."""
    return statistics.median(r.rps for r in runs)
