"""Driver of bench/mcp.sh: sequential `exec true` tool calls through ONE `agentssh mcp`
process (driven by the official Python MCP SDK client) against `ssh` with a warm
ControlMaster (timed by hyperfine -N), interleaved in rounds so both see the same machine.

Usage: mcp_driver.py AGENTSSH PROFILE CALLS ROUNDS WARMUP WORKDIR -- SSH_COMMAND...
Prints one JSON object: per-call times in ms of both, and their medians.

The MCP times are taken in the client around `call_tool` (time.perf_counter), so they
include this client's own JSON-RPC work as well as the server's, the daemon's and sshd's.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time


async def main():
    argv = sys.argv[1:]
    sep = argv.index("--")
    binary, profile, calls, rounds, warmup, work = argv[:sep]
    ssh = argv[sep + 1:]
    calls, rounds, warmup = int(calls), int(rounds), int(warmup)
    per_round = (calls + rounds - 1) // rounds

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=binary, args=["mcp", "--profile", profile, "--tools", "exec,sessions"],
                                   env=dict(os.environ))
    mcp_ms, ssh_ms, floor_ms, errors = [], [], [], 0
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            args = {"profile": profile, "command": "true"}
            for _ in range(warmup):
                r = await s.call_tool("exec", args)
                if r.isError if hasattr(r, "isError") else r.is_error:
                    raise SystemExit(f"warm-up exec failed: {r}")
            for rnd in range(rounds):
                n = min(per_round, calls - len(mcp_ms))
                # ssh first in even rounds, MCP first in odd ones.
                order = ["ssh", "mcp"] if rnd % 2 == 0 else ["mcp", "ssh"]
                for which in order:
                    if which == "ssh":
                        out = f"{work}/ssh-r{rnd}.json"
                        subprocess.run(
                            ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup),
                             "--runs", str(n), "--export-json", out, "--", " ".join(ssh)],
                            check=True, stdout=subprocess.DEVNULL)
                        with open(out) as f:
                            ssh_ms += [t * 1000 for t in json.load(f)["results"][0]["times"]]
                    else:
                        for _ in range(n):
                            t0 = time.perf_counter()
                            r = await s.call_tool("exec", args)
                            mcp_ms.append((time.perf_counter() - t0) * 1000)
                            err = r.isError if hasattr(r, "isError") else r.is_error
                            sc = getattr(r, "structuredContent", None) or getattr(r, "structured_content", None) or {}
                            if err or sc.get("exit_status") != 0:
                                errors += 1
            # Reference: a tool call that reaches the daemon but not sshd (`session_list`,
            # no sessions): this client, rmcp and the daemon hop without the SSH part.
            for _ in range(warmup):
                await s.call_tool("session_list", {})
            for _ in range(calls):
                t0 = time.perf_counter()
                await s.call_tool("session_list", {})
                floor_ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        "floor_median_ms": statistics.median(floor_ms),
        "calls": len(mcp_ms),
        "ssh_runs": len(ssh_ms),
        "errors": errors,
        "mcp_median_ms": statistics.median(mcp_ms),
        "mcp_p90_ms": statistics.quantiles(mcp_ms, n=10)[-1],
        "ssh_median_ms": statistics.median(ssh_ms),
        "ssh_p90_ms": statistics.quantiles(ssh_ms, n=10)[-1],
    }))


if __name__ == "__main__":
    asyncio.run(main())
