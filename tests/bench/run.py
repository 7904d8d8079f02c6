#!/usr/bin/python3
"""Run butte's benchmarks: `make bench` (and `make bench QUICK=1` in CI).

Discovers tests/bench/b_*.py in sorted file-name order, imports each and
calls its run(ctx) (ctx: benchlib.Ctx) for a list of figure dicts, prints
one table of every figure, then
  - full mode: rewrites docs/benchmarks.md and the plots in docs/benchmarks/;
  - quick mode: writes <build>/benchmarks-quick.md and exits 1 if a module
    raised or produced no numeric value (what CI checks).
A module may also define DOC, a paragraph printed under its heading.

  run.py --build DIR [--quick] [--only PREFIX ...] [--no-write] [--self-check]
"""
import argparse
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402 - the path is set just above

QUICK_BUDGET = 20.0      # seconds a module should take in quick mode
FULL_BUDGET = 600.0      # ... in full mode
HARD_GRACE_QUICK = 40.0  # past its deadline plus this, a module is interrupted
HARD_GRACE_FULL = 300.0


# The modules' directories, removed once every module ran: removing thousands of
# files (a dockerd's data root, a cluster's sandboxes) right before the next
# module would slow the inode allocations that module measures (ext4 without
# a journal skips every inode freed in the last seconds).
LEFTOVERS = []


class ModuleTimeout(Exception):
    pass


def _alarm_cb(signum, frame):
    raise ModuleTimeout("module exceeded its time budget and was interrupted")


def discover(only):
    names = sorted(f[:-3] for f in os.listdir(HERE)
                   if f.startswith("b_") and f.endswith(".py"))
    if only:
        names = [n for n in names if any(n.startswith(p) for p in only)]
    return names


def load(name, path=None):
    path = path or os.path.join(HERE, name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_module(name, build, quick, mod=None):
    """Run one module; returns its result dict."""
    result = {"module": name, "title": name, "order": 99, "doc": None,
              "figures": [], "error": None, "seconds": 0.0}
    budget = QUICK_BUDGET if quick else FULL_BUDGET
    grace = HARD_GRACE_QUICK if quick else HARD_GRACE_FULL
    t0 = time.monotonic()
    ctx = None
    old = signal.signal(signal.SIGALRM, _alarm_cb)
    try:
        mod = mod or load(name)
        result["title"] = getattr(mod, "TITLE", name)
        result["order"] = getattr(mod, "ORDER", 99)
        result["doc"] = getattr(mod, "DOC", None)
        ctx = benchlib.Ctx(build, quick, name, budget)
        print(f"== {name}: {result['title']}", file=sys.stderr, flush=True)
        signal.alarm(int(budget + grace))
        figures = mod.run(ctx)
        signal.alarm(0)
        if not isinstance(figures, list):
            raise TypeError(f"run() returned {type(figures).__name__}, not a list of figures")
        result["figures"] = [f for f in figures if isinstance(f, dict)]
        if not any(benchlib.numeric(f.get("value")) is not None for f in result["figures"]):
            raise ValueError("the module produced no numeric value")
    except BaseException as exc:  # noqa: BLE001 - one module failing must not stop the rest
        signal.alarm(0)
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["error"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        print(result["error"], file=sys.stderr, flush=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if ctx is not None:
            for err in ctx.close(keep_dirs=True):
                print(f"  [{name}] cleanup: {err[:2000]}", file=sys.stderr)
            LEFTOVERS.extend(ctx.dirs)
    result["seconds"] = time.monotonic() - t0
    print(f"== {name}: {result['seconds']:.1f} s", file=sys.stderr, flush=True)
    return result


def self_check():
    """A synthetic module through the whole pipeline (no daemons started)."""
    import tempfile
    import types

    mod = types.ModuleType("b_0_selfcheck")
    mod.TITLE = "Self-check"
    mod.ORDER = 0

    def run(ctx):
        calls = []
        st = ctx.repeat(lambda: calls.append(1) or float(len(calls)), warmup=1, runs=5)
        assert len(calls) == 6 and st.values == [2, 3, 4, 5, 6], st
        assert (st.median, st.min, st.max) == (4, 2, 6), st
        assert benchlib.percentile(range(1, 101), 99) == 99
        assert os.path.isdir(ctx.tmpdir)
        return [{"name": "counter", "value": st, "unit": "n", "anchor": "a", "target": "< 5",
                 "met": True, "note": "ok",
                 "plot": {"file": "selfcheck.png", "title": "t", "xlabel": "x", "ylabel": "y",
                          "series": {"s": [(1, 1), (2, 4)]}}},
                {"name": "missed", "value": 2.5, "unit": "ms", "target": "< 1", "met": False,
                 "note": "because"}]
    mod.run = run
    r = run_module("b_0_selfcheck", os.path.join(benchlib.REPO, "build"), True, mod)
    assert r["error"] is None, r["error"]
    bad = types.ModuleType("b_0_bad")
    bad.run = lambda ctx: [{"name": "x", "value": None}]
    rb = run_module("b_0_bad", "/nonexistent", True, bad)
    assert rb["error"] and "no numeric value" in rb["error"], rb
    print(benchlib.format_table([r, rb]))
    with tempfile.TemporaryDirectory() as td:
        files = benchlib.write_plots([r], td)
        text = benchlib.render_report([r, rb], benchlib.machine(), False, plot_files=files)
        assert "## Targets not met and why" in text and "missed" in text.split("not met and why")[1]
        assert "4.00 [2.00–6.00]" in text, text
    benchlib.remove_dirs(LEFTOVERS)
    print("self-check passed")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(benchlib.REPO, "build"),
                    help="the build dir holding butte-master etc. (absolute)")
    ap.add_argument("--quick", action="store_true", help="scaled down, < 2 minutes (CI)")
    ap.add_argument("--only", action="append", default=[], metavar="PREFIX",
                    help="run only modules whose file name starts with PREFIX (repeatable)")
    ap.add_argument("--no-write", action="store_true", help="print the table, write nothing")
    ap.add_argument("--self-check", action="store_true", help="test the runner itself")
    args = ap.parse_args()
    if args.self_check:
        return self_check()
    build = os.path.abspath(args.build)
    os.environ["BUTTE_BUILD"] = build
    for b in ("butte-master", "butte-agent", "butte-relay"):
        if not os.access(os.path.join(build, b), os.X_OK):
            print(f"run.py: '{build}/{b}' is missing: build first (make BUILD=...)", file=sys.stderr)
            return 2
    names = discover(args.only)
    if not names:
        print("run.py: no benchmark module matches", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    results = [run_module(n, build, args.quick) for n in names]
    benchlib.remove_dirs(LEFTOVERS)
    total = time.monotonic() - t0
    print()
    print(benchlib.format_table(results))
    print(f"\n{len(results)} modules in {total:.1f} s")
    failed = [r["module"] for r in results if r["error"]]
    if not args.no_write:
        mach = benchlib.machine()
        if args.quick:
            path = os.path.join(build, "benchmarks-quick.md")
            text = benchlib.render_report(results, mach, True, total_s=total)
        else:
            files = benchlib.write_plots(results, os.path.join(benchlib.REPO, "docs", "benchmarks"))
            path = os.path.join(benchlib.REPO, "docs", "benchmarks.md")
            text = benchlib.render_report(results, mach, False, plot_files=files, total_s=total)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print(f"wrote {path}")
    if failed:
        print(f"FAILED (raised or produced no number): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
