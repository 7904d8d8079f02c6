"""The benchmark runner's library: measurements, the context, the report.

run.py imports every tests/bench/b_*.py module and calls its run(ctx) with
a Ctx from this file. A module returns a list of figure dicts (see
/docs/benchmarks.md, "Method"):

    {"name": ..., "value": Stats or float, "unit": "ms", "anchor": "...",
     "target": "< 100 ms", "met": True/False/None, "note": "...",
     "plot": optional {"file": "x.png", "title", "xlabel", "ylabel",
                       "logscale": "x"|"y"|"xy"|None,
                       "series": {"label": [(x, y), ...]}}}

Stats holds repeated measurements (median, min, max); Ctx gives a module its
build dir, quick flag, a fresh temporary directory, repeat(), clusters of
real daemons that are stopped when the module ends, and a deadline.
format_table() prints the figures; write_report() writes the Markdown
report (docs/benchmarks.md in full mode) and write_plots() draws the PNGs
with gnuplot.
"""
import datetime
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402 - the path is set just above


class Stats:
    """Repeated measurements of one quantity; the figure is the median."""

    def __init__(self, values):
        self.values = [float(v) for v in values]
        s = sorted(self.values)
        n = len(s)
        if n == 0:
            self.median = self.min = self.max = float("nan")
        else:
            self.median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
            self.min = s[0]
            self.max = s[-1]

    @property
    def n(self):
        return len(self.values)

    def __float__(self):
        return self.median

    def __repr__(self):
        return f"Stats(median={self.median!r}, min={self.min!r}, max={self.max!r}, n={self.n})"


def percentile(values, p):
    """The p-th percentile (0..100) of values, nearest rank; nan when empty."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(math.ceil(p / 100.0 * len(s))) - 1))
    return s[k]


def numeric(value):
    """The figure's number (a Stats gives its median), or None."""
    if isinstance(value, Stats):
        value = value.median
    if isinstance(value, bool) or value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def fmt_num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 10000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2g}"


def fmt_value(value):
    """"12.3 [11.0–14.2]" for Stats with more than one run, else the number."""
    if isinstance(value, Stats):
        if value.n > 1:
            return f"{fmt_num(value.median)} [{fmt_num(value.min)}–{fmt_num(value.max)}]"
        return fmt_num(value.median)
    return fmt_num(numeric(value))


def fmt_met(met):
    return {True: "met", False: "NOT met", None: "—"}.get(met, str(met))


def remove_dirs(dirs):
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


class BenchCluster(harness.Cluster):
    """A harness Cluster whose daemons log at info level (debug logging
    would be part of what is measured)."""

    log_level = "info"


class Ctx:
    """What run.py hands to a benchmark module's run(ctx)."""

    def __init__(self, build, quick, name, budget):
        self.build = build
        self.quick = quick
        self.name = name
        self.repo = REPO
        self.started = time.monotonic()
        self.deadline = self.started + budget
        self.tmpdir = tempfile.mkdtemp(prefix=f"butte-bench-{name}-")
        self._clusters = []
        self._dirs = [self.tmpdir]
        harness.BUILD = build

    def log(self, msg):
        t = time.monotonic() - self.started
        print(f"  [{self.name} {t:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def left(self):
        """Seconds until the deadline (negative once past it)."""
        return self.deadline - time.monotonic()

    def repeat(self, fn, warmup=1, runs=5):
        """Call fn() warmup + runs times; the runs' return values make the Stats.

        Past the deadline the remaining runs are skipped once at least one
        counted run exists (Stats.n then says how many were made)."""
        for _ in range(warmup):
            if self.left() <= 0:
                break
            fn()
        values = []
        for i in range(runs):
            if values and self.left() <= 0:
                self.log(f"deadline reached: {len(values)} of {runs} runs made")
                break
            values.append(float(fn()))
        return Stats(values)

    def cluster(self, log_level="info", parent=None):
        """A cluster in a new directory under the module's tmpdir, or under parent
        (e.g. a tmpfs); the directory is removed with the module's."""
        d = tempfile.mkdtemp(prefix="cluster-", dir=parent or self.tmpdir)
        if parent is not None:
            self._dirs.append(d)
        c = BenchCluster(d)
        c.log_level = log_level
        self._clusters.append(c)
        return c

    def close(self, keep_dirs=False):
        """Stop every cluster and remove the temporary directories (or, with
        keep_dirs, leave them in self.dirs for the caller to remove)."""
        errors = []
        for c in reversed(self._clusters):
            try:
                c.stop()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(str(exc))
        self._clusters = []
        if not keep_dirs:
            remove_dirs(self._dirs)
        self.dirs = self._dirs
        return errors


# -- the printed table ------------------------------------------------------------

def format_table(results):
    """results: list of module result dicts (see run.py). Returns text."""
    rows = [("module", "figure", "value", "unit", "target", "met")]
    for r in results:
        if r["error"]:
            rows.append((r["module"], "ERROR: " + r["error"].splitlines()[-1][:70], "", "", "", ""))
        for f in r["figures"]:
            rows.append((r["module"], str(f.get("name", "?")), fmt_value(f.get("value")),
                         str(f.get("unit", "")), str(f.get("target", "") or ""),
                         fmt_met(f.get("met"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    widths[1] = min(widths[1], 60)
    lines = []
    for k, row in enumerate(rows):
        cells = [row[i][:widths[i]].ljust(widths[i]) for i in range(len(row))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- the machine ------------------------------------------------------------------

def machine():
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "mem": "?", "kernel": platform.release(), "arch": platform.machine(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip()
                if key in ("model name", "cpu") and ":" in line:  # x86_64 / ppc64le
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    try:
        out = subprocess.run(["cc", "--version"], capture_output=True, text=True, timeout=5)
        info["cc"] = out.stdout.splitlines()[0] if out.stdout else "?"
    except (OSError, subprocess.SubprocessError):
        info["cc"] = "?"
    return info


# -- plots ---------------------------------------------------------------------------

def _gp_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_plot(plot, outdir):
    """Draw one plot dict into outdir/plot["file"] with gnuplot; returns the path or None."""
    series = plot.get("series") or {}
    if not series or not shutil.which("gnuplot"):
        return None
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, plot["file"])
    with tempfile.TemporaryDirectory(prefix="butte-plot-") as td:
        plots = []
        for i, (label, points) in enumerate(series.items()):
            data = os.path.join(td, f"s{i}.dat")
            with open(data, "w") as f:
                for x, y in points:
                    f.write(f"{x} {y}\n")
            plots.append(f"{_gp_str(data)} using 1:2 with linespoints lw 2 pt 7 title {_gp_str(label)}")
        script = [
            "set terminal pngcairo size 900,540 enhanced font 'DejaVu Sans,11'",
            f"set output {_gp_str(path)}",
            f"set title {_gp_str(plot.get('title', ''))}",
            f"set xlabel {_gp_str(plot.get('xlabel', ''))}",
            f"set ylabel {_gp_str(plot.get('ylabel', ''))}",
            "set grid", "set key top left", "set style data linespoints",
        ]
        if plot.get("logscale"):
            script.append(f"set logscale {plot['logscale']}")
        for extra in plot.get("gnuplot", []):
            script.append(extra)
        script.append("plot " + ", ".join(plots))
        r = subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True,
                           capture_output=True, timeout=30)
        if r.returncode != 0:
            print(f"gnuplot failed for {plot['file']}: {r.stderr.strip()}", file=sys.stderr)
            return None
    return path


def write_plots(results, outdir):
    done = {}
    for r in results:
        for f in r["figures"]:
            plot = f.get("plot")
            if plot and plot.get("file") and plot["file"] not in done:
                done[plot["file"]] = write_plot(plot, outdir)
    return done


# -- the report ------------------------------------------------------------------------

METHOD = """\
Every figure comes from `make bench` (the runner is `tests/bench/run.py`,
one module `tests/bench/b_<n>_<name>.py` per item) on the machine above,
with the binaries built by `make` (`-O2 -g`), daemons logging at `info`
level, all traffic on loopback.

- **Repetition.** A measurement is made once as a warm-up (discarded) and
  then five times; the table gives the **median** and, in brackets, the
  **[min–max]** of the five runs. A figure given as a single number without
  brackets was measured once (a whole-run distribution such as a latency
  percentile over thousands of requests, or a run too long to repeat; its
  note says so).
- **Ratios side by side.** Where butte is compared with the physical cost
  (for example a plain fork/exec loop), both are measured in the same run,
  alternating, and the ratio is taken per run before the median.
- **Bounds.** Every loop is bounded in count and in time; a module that
  runs out of time reports the runs it made.
- **Isolation.** Each module starts its own daemons in its own temporary
  directories; the directories are removed after the last module, so that
  no module measures the file system still busy with the removal of the
  one before.
- **Targets.** "met" compares the median (or the stated percentile) with
  the target of issue 3; every target that is missed is listed at the end
  with its cause.
- `make bench QUICK=1` runs the same code scaled down (in under two
  minutes, in CI) to keep the harness working; its figures are not the
  ones reported here.
"""


def _md_cell(s):
    return str(s if s is not None else "").replace("|", "\\|").replace("\n", " ")


def _fig_row(f):
    unit = f.get("unit", "")
    value = fmt_value(f.get("value"))
    if unit and value != "—":
        value = f"{value} {unit}"
    return "| " + " | ".join(_md_cell(c) for c in (
        f.get("name", "?"), value, f.get("anchor") or "—", f.get("target") or "—",
        fmt_met(f.get("met")))) + " |"


def render_report(results, mach, quick, plots_rel="benchmarks", plot_files=None, total_s=None):
    """The Markdown report as a string."""
    plot_files = plot_files or {}
    out = ["# Benchmarks", ""]
    if quick:
        out += ["*Quick mode (`make bench QUICK=1`): everything scaled down; "
                "these are not the reported figures.*", ""]
    out += [
        "What a cluster manager is for, measured: how fast butte places work, how",
        "quickly it replaces what dies, what it costs per machine, and how its API",
        "holds up under load — each figure beside the published figure of Mesos,",
        "Marathon, Nomad or Kubernetes it answers (issue 3). `make bench` rewrites",
        "this file and the plots under `docs/benchmarks/`.",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']} ({mach['arch']}), {mach['cores']} cores",
        f"- Memory: {mach['mem']}",
        f"- Kernel: Linux {mach['kernel']}",
        f"- Compiler: {mach.get('cc', '?')}; Python {mach['python']}",
        f"- Date: {mach['date']}" + (f"; the whole run took {total_s:.0f} s" if total_s else ""),
        "",
        "## Method",
        "",
        METHOD,
    ]
    ordered = sorted(results, key=lambda r: (r["order"], r["module"]))
    for r in ordered:
        out += [f"## {r['order']}. {r['title']}", ""]
        if r.get("doc"):
            out += [r["doc"].strip(), ""]
        if r["error"]:
            out += ["**This benchmark failed in this run:**", "", "```",
                    r["error"].strip()[-1500:], "```", ""]
        if r["figures"]:
            out += ["| Figure | butte | Anchor | Target | Met |",
                    "|---|---|---|---|---|"]
            out += [_fig_row(f) for f in r["figures"]]
            out.append("")
            notes = [(f.get("name", "?"), f.get("note")) for f in r["figures"] if f.get("note")]
            if notes:
                out += ["Notes:", ""]
                out += [f"- *{_md_cell(n)}*: {note}" for n, note in notes]
                out.append("")
        shown = []
        for f in r["figures"]:
            plot = f.get("plot")
            if plot and plot.get("file") and plot_files.get(plot["file"]) and plot["file"] not in shown:
                shown.append(plot["file"])
                out += [f"![{_md_cell(plot.get('title', plot['file']))}]({plots_rel}/{plot['file']})", ""]
        out.append(f"*Module `{r['module']}.py`, {r['seconds']:.1f} s.*")
        out.append("")
    out += ["## Targets not met and why", ""]
    missed = [(r, f) for r in ordered for f in r["figures"] if f.get("met") is False]
    failed = [r for r in ordered if r["error"]]
    if not missed and not failed:
        out += ["Every target with a verdict was met in this run.", ""]
    for r, f in missed:
        out.append(f"- **{r['order']}. {_md_cell(f.get('name', '?'))}** — "
                   f"{fmt_value(f.get('value'))} {f.get('unit', '')} against "
                   f"{f.get('target', '?')}. {f.get('note') or 'No cause recorded.'}")
    for r in failed:
        out.append(f"- **{r['order']}. {r['title']}** did not complete: "
                   f"{r['error'].strip().splitlines()[-1]}")
    out.append("")
    return "\n".join(out)
