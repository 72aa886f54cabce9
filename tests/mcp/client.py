"""An MCP client this project did not write (the official Python `mcp` SDK) driving
`agentssh mcp`. Usage: client.py sdk|raw AGENTSSH_BIN PROFILE REMOTE_FILE [server args...]

Prints one JSON object with what it saw; tests/mcp.rs checks it. The environment (HOME,
XDG_*) is inherited, so the server uses the test's isolated daemon and profiles."""

import asyncio
import json
import os
import subprocess
import sys


def attr(obj, snake, camel):
    """SDK releases name fields in camelCase (older) or snake_case (newer)."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def dump(result):
    return {
        "is_error": bool(attr(result, "is_error", "isError")),
        "structured": attr(result, "structured_content", "structuredContent"),
        "text": [c.text for c in result.content if getattr(c, "type", "") == "text"],
    }


async def sdk(binary, profile, remote, extra):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=binary, args=["mcp", *extra], env=dict(os.environ))
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            out["server_name"] = attr(init, "server_info", "serverInfo").name
            tools = await s.list_tools()
            out["tools"] = [t.name for t in tools.tools]
            out["schemas"] = {t.name: attr(t, "input_schema", "inputSchema") for t in tools.tools}
            out["exec"] = dump(await s.call_tool("exec", {"profile": profile, "command": "echo hi; echo err >&2; exit 3"}))
            out["missing_profile"] = dump(await s.call_tool("exec", {"profile": "nope", "command": "true"}))
            out["inline"] = dump(await s.call_tool("exec", {"host": "127.0.0.1", "command": "true"}))
            opened = dump(await s.call_tool("session_open", {"profile": profile}))
            out["session_open"] = opened
            sid = (opened["structured"] or {}).get("id")
            if sid:
                out["session_run"] = dump(await s.call_tool("session_run", {"session_id": sid, "command": "cd /tmp && echo ran-$((6*7))"}))
                out["session_run2"] = dump(await s.call_tool("session_run", {"session_id": sid, "command": "pwd"}))
                out["session_list"] = dump(await s.call_tool("session_list", {}))
                out["session_close"] = dump(await s.call_tool("session_close", {"session_id": sid}))
            out["file_read"] = dump(await s.call_tool("file_read", {"profile": profile, "remote": remote}))
            out["wrong_type"] = dump(await s.call_tool("exec", {"profile": profile, "command": 5}))
            try:
                r = await s.call_tool("no_such_tool", {})
                out["unknown_tool"] = {"raised": False, **dump(r)}
            except Exception as e:  # the SDK raises McpError for a JSON-RPC error
                out["unknown_tool"] = {"raised": True, "error": str(e)}
            out["after"] = dump(await s.call_tool("profile_list", {}))
    return out


def raw(binary, extra):
    """Hand-written frames: a malformed line must get a JSON-RPC error (or be skipped)
    without ending the server."""
    p = subprocess.Popen([binary, "mcp", *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def send(obj_or_text):
        line = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text)
        p.stdin.write((line + "\n").encode())
        p.stdin.flush()

    def recv():
        line = p.stdout.readline()
        return json.loads(line) if line else None

    out = {}
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
    out["init"] = recv()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send("{this is not json")
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    replies = []
    while True:
        r = recv()
        replies.append(r)
        if r is None or r.get("id") == 2:
            break
    out["replies"] = replies
    p.stdin.close()
    out["exit"] = p.wait(timeout=30)
    return out


def main():
    mode, binary, profile, remote, *extra = sys.argv[1:]
    if mode == "sdk":
        result = asyncio.run(sdk(binary, profile, remote, extra))
    else:
        result = raw(binary, extra)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
