"""An MCP client this project did not write (the official Python `mcp` SDK) driving
`agentssh mcp`. Usage: client.py sdk|raw|tools AGENTSSH_BIN PROFILE REMOTE [server args...]
(REMOTE: a file to read for sdk; for tools, a directory the remote user may write in, on
this machine, since the test's sshd runs on loopback.)

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
            # The server keeps its daemon connection between calls; a daemon that went
            # away meanwhile is replaced (autostarted) without the client noticing.
            before = dump(await s.call_tool("exec", {"profile": profile, "command": "echo $PPID"}))
            stopped = subprocess.run([binary, "--json", "daemon", "shutdown"], capture_output=True, text=True)
            out["daemon_shutdown"] = json.loads(stopped.stdout)
            after = dump(await s.call_tool("exec", {"profile": profile, "command": "echo $PPID"}))
            out["daemon_restart"] = {"before": before, "after": after}
    return out


def echo_server():
    """A TCP echo server on loopback (the sshd's side too: it runs on this machine)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                data = c.recv(1024)
                c.sendall(b"echo:" + data)

    threading.Thread(target=serve, daemon=True).start()
    return srv


def through(port, payload):
    """Sends payload to 127.0.0.1:port and returns the answer, or the error's name."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(payload)
            c.settimeout(10)
            got = c.recv(1024)
            return got.decode() if got else "closed"
    except OSError as e:
        return type(e).__name__


async def tools(binary, profile, work, extra):
    """The file and proxy tools, and the client kind of a session opened here."""
    import hashlib

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=binary, args=["mcp", *extra], env=dict(os.environ))
    out = {}
    t = {"profile": profile}
    conf = f"{work}/conf.ini"
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            call = s.call_tool
            out["write"] = dump(await call("file_write", {**t, "remote": conf, "content": "port=8080\nhost=a\n"}))
            out["edit"] = dump(await call("file_edit", {**t, "remote": conf, "find": "port=8080", "replace": "port=9090"}))
            out["edit_regex_all"] = dump(await call("file_edit", {**t, "remote": conf, "find": "=(\\w)", "replace": ": $1", "regex": True, "all": True}))
            out["edit_miss"] = dump(await call("file_edit", {**t, "remote": conf, "find": "no such text", "replace": "x"}))
            out["after_edit"] = dump(await call("file_read", {**t, "remote": conf}))

            src, back = f"{work}/local-src.bin", f"{work}/local-back.bin"
            with open(src, "wb") as f:
                f.write(os.urandom(300 * 1024))
            out["upload"] = dump(await call("file_upload", {**t, "local": src, "remote": f"{work}/remote.bin"}))
            out["download"] = dump(await call("file_download", {**t, "remote": f"{work}/remote.bin", "local": back}))
            sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.exists(p) else None
            out["round_trip"] = {"src": sha(src), "back": sha(back)}
            out["delete"] = dump(await call("file_delete", {**t, "remote": f"{work}/remote.bin"}))
            out["deleted_exists"] = os.path.exists(f"{work}/remote.bin")
            out["delete_again"] = dump(await call("file_delete", {**t, "remote": f"{work}/remote.bin"}))

            echo = echo_server()
            echo_port = echo.getsockname()[1]
            created = dump(await call("proxy_create", {**t, "local": "127.0.0.1:0", "remote": f"127.0.0.1:{echo_port}", "name": "mcp-echo"}))
            out["proxy_create"] = created
            local = ((created["structured"] or {}).get("local") or ":0").rsplit(":", 1)[1]
            out["through_proxy"] = through(int(local), b"ping")
            out["proxy_list"] = dump(await call("proxy_list", {}))
            out["proxy_bad"] = dump(await call("proxy_create", {**t, "local": "127.0.0.1:0"}))
            out["proxy_close"] = dump(await call("proxy_close", {"proxy_id": "mcp-echo"}))
            out["after_close"] = through(int(local), b"ping")
            out["proxy_list_after"] = dump(await call("proxy_list", {}))
            echo.close()

            opened = dump(await call("session_open", {**t, "name": "from-mcp"}))
            out["session_open"] = opened
            out["session_list"] = dump(await call("session_list", {}))
    return out


async def takeover(binary, profile, extra):
    """Opens a session, prints {"opened": ...} as one line, then for each line the test
    writes on stdin (after it changed who controls the session) calls session_send and
    prints the result as one line; stdin's end finishes."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=binary, args=["mcp", *extra], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            opened = dump(await s.call_tool("session_open", {"profile": profile, "name": "mcp-work", "reconnect": False}))
            print(json.dumps({"opened": opened}), flush=True)
            sid = (opened["structured"] or {}).get("id")
            n = 0
            while True:
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    break
                n += 1
                sent = dump(await s.call_tool("session_send", {"session_id": sid, "input": f"echo step-$(({n}*10))\n"}))
                print(json.dumps({"send": sent}), flush=True)
    return {"done": True}


def pid_gone(pid):
    """Whether process pid has ended (gone, or a zombie waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def long_calls(binary, profile, work, extra):
    """Progress notifications during a long exec, and a cancelled exec whose remote
    command must stop while this server keeps running."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=binary, args=["mcp", *extra], env=dict(os.environ))
    out = {}
    progress = []

    async def on_progress(value, total, message):
        progress.append({"progress": value, "message": message})

    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            r = await s.call_tool("exec", {"profile": profile, "command": "sleep 3; echo slept"}, progress_callback=on_progress)
            out["exec"] = dump(r)
            out["progress"] = progress

            marker = f"{work}/pid"
            call = asyncio.ensure_future(s.call_tool("exec", {"profile": profile, "command": f"echo $$ > {marker}.tmp && mv {marker}.tmp {marker} && exec sleep 317"}))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not os.path.exists(marker) and loop.time() < deadline and not call.done():
                await asyncio.sleep(0.05)
            pid = int(open(marker).read()) if os.path.exists(marker) else None
            out["pid"] = pid
            out["alive_before_cancel"] = pid is not None and not pid_gone(pid)
            started = loop.time()
            call.cancel()
            try:
                await call
                out["cancel"] = "finished anyway"
            except asyncio.CancelledError:
                out["cancel"] = "cancelled"
            except Exception as e:
                out["cancel"] = f"raised {type(e).__name__}: {e}"
            while pid is not None and not pid_gone(pid) and loop.time() < started + 15:
                await asyncio.sleep(0.05)
            out["gone"] = pid is not None and pid_gone(pid)
            out["gone_after_s"] = round(loop.time() - started, 2)
            # Still serving, and the server process was never restarted (same session).
            out["after"] = dump(await s.call_tool("exec", {"profile": profile, "command": "echo still-here"}))
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

    def until(id_):
        seen = []
        while True:
            r = recv()
            seen.append(r)
            if r is None or r.get("id") == id_:
                return seen

    # A 20 MiB argument: a tool error for this call.
    send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "file_write", "arguments": {"profile": "t", "remote": "/tmp/never-written", "content": "x" * (20 << 20)}}})
    out["big"] = until(3)[-1]
    # A 40 MiB line, over the message bound: dropped unread (it has no id to answer to),
    # and the server keeps serving.
    send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "file_write", "arguments": {"profile": "t", "remote": "/tmp/never-written", "content": "y" * (40 << 20)}}})
    send({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
    out["after_huge"] = until(5)
    p.stdin.close()
    out["exit"] = p.wait(timeout=30)
    return out


def main():
    mode, binary, profile, remote, *extra = sys.argv[1:]
    if mode == "sdk":
        result = asyncio.run(sdk(binary, profile, remote, extra))
    elif mode == "takeover":
        result = asyncio.run(takeover(binary, profile, extra))
    elif mode == "long":
        result = asyncio.run(long_calls(binary, profile, remote, extra))
    elif mode == "tools":
        result = asyncio.run(tools(binary, profile, remote, extra))
    else:
        result = raw(binary, extra)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
