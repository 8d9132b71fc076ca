"""Run a command and sample its process tree's memory every 20 ms: peak anonymous RSS (what the
process allocated) and peak file-backed RSS (mapped checkpoint pages, i.e. page cache), from
/proc/PID/status. Prints one JSON line; exits with the command's status.
    python3 scripts/device/rss.py -- CMD ARGS..."""
import json
import os
import subprocess
import sys
import time


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def status_kb(pid, keys):
    vals = dict.fromkeys(keys, 0)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in vals:
                    vals[k] = int(v.split()[0])
    except OSError:
        pass
    return vals


def main():
    cmd = sys.argv[sys.argv.index("--") + 1:]
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    peak = {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}
    while proc.poll() is None:
        tot = dict.fromkeys(peak, 0)
        for p in tree(proc.pid):
            for k, v in status_kb(p, peak).items():
                tot[k] += v
        for k in peak:
            peak[k] = max(peak[k], tot[k])
        time.sleep(0.02)
    res = {"cmd": " ".join(cmd[:3]), "exit": proc.returncode, "wall_s": round(time.time() - t0, 2)}
    res.update({f"peak_{k}_gib": round(v / 1048576, 2) for k, v in peak.items()})
    print("rss:", json.dumps(res), flush=True)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
