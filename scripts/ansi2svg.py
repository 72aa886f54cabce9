#!/usr/bin/env python3
"""Render a `tmux capture-pane -e` dump (text with SGR colour codes) as an SVG still.

Usage: ansi2svg.py FILE COLS ROWS > out.svg
Handles the SGR codes tmux emits: reset, bold, reverse, 16/256/RGB foreground and
background. Other escape sequences are dropped.
"""
import html
import re
import sys

BASE = ["#1e1e1e", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
        "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"]
FG, BG = "#d4d4d4", "#1e1e1e"
CW, CH = 8.4, 17  # cell size in px (monospace 14px)


def color256(n):
    if n < 16:
        return BASE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (v, v, v)


def sgr(params, st):
    ps = [int(p) if p else 0 for p in params.split(";")] if params else [0]
    i = 0
    while i < len(ps):
        p = ps[i]
        if p == 0:
            st.update(fg=None, bg=None, bold=False, rev=False)
        elif p == 1:
            st["bold"] = True
        elif p == 22:
            st["bold"] = False
        elif p == 7:
            st["rev"] = True
        elif p == 27:
            st["rev"] = False
        elif 30 <= p <= 37:
            st["fg"] = BASE[p - 30]
        elif 90 <= p <= 97:
            st["fg"] = BASE[p - 90 + 8]
        elif 40 <= p <= 47:
            st["bg"] = BASE[p - 40]
        elif 100 <= p <= 107:
            st["bg"] = BASE[p - 100 + 8]
        elif p == 39:
            st["fg"] = None
        elif p == 49:
            st["bg"] = None
        elif p in (38, 48) and i + 1 < len(ps):
            key = "fg" if p == 38 else "bg"
            if ps[i + 1] == 5 and i + 2 < len(ps):
                st[key] = color256(ps[i + 2])
                i += 2
            elif ps[i + 1] == 2 and i + 4 < len(ps):
                st[key] = "#%02x%02x%02x" % tuple(ps[i + 2:i + 5])
                i += 4
        i += 1


def main():
    path, cols, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")[:rows]
    token = re.compile(r"\x1b\[([0-9;]*)m|\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|(.)", re.S)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * CW:.0f}" height="{rows * CH + 8}" '
           f'font-family="DejaVu Sans Mono,Menlo,Consolas,monospace" font-size="14">',
           f'<rect width="100%" height="100%" fill="{BG}"/>']
    st = dict(fg=None, bg=None, bold=False, rev=False)
    for y, line in enumerate(lines):
        x = 0
        for m in token.finditer(line):
            if m.group(1) is not None:
                sgr(m.group(1), st)
                continue
            ch = m.group(2)
            if ch is None:
                continue
            fg, bg = st["fg"] or FG, st["bg"]
            if st["rev"]:
                fg, bg = (st["bg"] or BG), (st["fg"] or FG)
            px, py = x * CW, y * CH + 4
            if bg:
                out.append(f'<rect x="{px:.1f}" y="{py}" width="{CW:.1f}" height="{CH}" fill="{bg}"/>')
            if ch.strip():
                weight = ' font-weight="bold"' if st["bold"] else ""
                out.append(f'<text x="{px:.1f}" y="{py + 13}" fill="{fg}"{weight}>{html.escape(ch)}</text>')
            x += 1
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
