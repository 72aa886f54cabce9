"""Server time per command on one SSH connection, read from a tcpdump capture.

    python3 bench/wire.py CAPTURE.pcap SERVER_PORT

The capture holds sequential commands over one warm connection (bench/run.sh records 50
pooled `exec -- true` calls). Each command is one exchange: it starts with a client->server
data segment after a quiet gap (the next CLI process needs a millisecond or more to start,
while the daemon's segments within one command follow each other within tens of
microseconds) and ends with the last server->client data segment before the next exchange
(exit status, EOF and close). Packets are encrypted, so only timing and direction are used.
A keepalive that falls into the capture counts as one short exchange; the median shrugs
it off. Prints "MEDIAN_MS COUNT" ("nan 0" when nothing matched), for the connection with the
most data segments.
"""

import statistics
import subprocess
import sys

GAP_MS = 0.4


def segments(pcap, port):
    """(time, from_server) of the data segments of the busiest connection."""
    out = subprocess.run(
        ["tcpdump", "-r", pcap, "-n", "-tt"], capture_output=True, text=True, check=True
    ).stdout
    conns = {}
    for line in out.splitlines():
        f = line.split()
        # 1795619359.533075 IP 127.0.0.1.41288 > 127.0.0.1.57091: Flags [P.], ..., length 140
        if len(f) < 5 or f[1] != "IP" or not f[-1].isdigit() or int(f[-1]) == 0:
            continue
        t, src, dst = float(f[0]), f[2], f[4].rstrip(":")
        from_server = src.endswith("." + port)
        conns.setdefault(dst if from_server else src, []).append((t, from_server))
    return max(conns.values(), key=len) if conns else []


def server_times(segs):
    """Milliseconds from each exchange's first client segment to its last server segment."""
    times, start, last_server, prev = [], None, None, None

    def close():
        if start is not None and last_server is not None and last_server > start:
            times.append((last_server - start) * 1000)

    for t, from_server in segs:
        if not from_server and (prev is None or (t - prev) * 1000 > GAP_MS):
            close()
            start, last_server = t, None
        elif from_server:
            last_server = t
        prev = t
    close()
    return times


def main():
    times = server_times(segments(sys.argv[1], sys.argv[2]))
    print(f"{statistics.median(times):.3f} {len(times)}" if times else "nan 0")


if __name__ == "__main__":
    main()
