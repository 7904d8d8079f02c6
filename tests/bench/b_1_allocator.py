"""Allocation cycle time of master/allocator.c, in process (issue 3, item 1).

Runs <build>/bench/bench_allocator, which builds an allocator for each cell
of agents x frameworks and times allocation cycles in which every offer is
declined with a long refuse filter (Mesos's DeclineOffers benchmark): one
warm-up cycle, then five timed ones. The program prints one JSON line per
cell; this module turns them into figures and a log-log plot of cycle time
against agents, one series per framework count.
"""
import json
import os
import subprocess

TITLE = "Allocator cycle"
ORDER = 1

FULL_AGENTS = [1000, 10000, 50000]
FULL_FRAMEWORKS = [1, 100, 1000]
QUICK_AGENTS = [1000, 10000]
QUICK_FRAMEWORKS = [1, 100]

ANCHORS = {
    (10000, 1000): "Mesos 1.06 s after MESOS-9249 (3.18 s before)",
    (2000, 200): "Mesos 2.92 s (2016)",
}


def _stats(ctx, values):
    """A Stats of measurements already taken (the program skipped the warm-up)."""
    it = iter(values)
    return ctx.repeat(lambda: next(it), warmup=0, runs=len(values))


def _fmt(n):
    return "{:,}".format(n)


def run(ctx):
    agents = QUICK_AGENTS if ctx.quick else FULL_AGENTS
    frameworks = QUICK_FRAMEWORKS if ctx.quick else FULL_FRAMEWORKS
    prog = os.path.join(ctx.build, "bench", "bench_allocator")
    cmd = [prog, "--agents", ",".join(map(str, agents)),
           "--frameworks", ",".join(map(str, frameworks)),
           "--runs", "5", "--warmup", "1"]
    ctx.log("running " + " ".join(cmd))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, timeout=600,
                         universal_newlines=True).stdout
    cells = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(cells) != len(agents) * len(frameworks):
        raise RuntimeError("bench_allocator printed %d cells, expected %d"
                           % (len(cells), len(agents) * len(frameworks)))
    series = {}
    figures = []
    for c in cells:
        st = _stats(ctx, c["ms"])
        key = (c["agents"], c["frameworks"])
        series.setdefault("%s frameworks" % _fmt(c["frameworks"]), []).append(
            (c["agents"], max(st.median, 1e-4)))
        fig = {
            "name": "%s agents x %s frameworks" % (_fmt(key[0]), _fmt(key[1])),
            "value": st,
            "unit": "ms",
            "anchor": ANCHORS.get(key, ""),
            "target": "",
            "met": None,
            "note": "offers per cycle: %s" % ", ".join(map(str, sorted(set(c["offers"])))),
        }
        if key == (10000, 1000):
            fig["target"] = "< 100 ms"
            fig["met"] = st.median < 100.0
        if key[1] == 1:
            fig["note"] = ("one framework: after the warm-up it filters every agent, so the "
                           "cycle only shuffles and skips (no offers)")
        figures.append(fig)
    for pts in series.values():
        pts.sort()
    if figures:
        figures[0]["plot"] = {
            "file": "allocator.png",
            "title": "Allocation cycle, every offer declined with a filter",
            "xlabel": "agents",
            "ylabel": "cycle time (ms)",
            "logscale": "xy",
            "series": series,
        }
    return figures
