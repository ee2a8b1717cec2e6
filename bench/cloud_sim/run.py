#!/usr/bin/env python3
"""Cloud bursting on a generated Philly-like trace (issue 12's benchmark).

Runs ty-sim on traces from bench/traces/gen_trace.py (several seeds, so one
monster job landing in the cloud or not does not decide the result) with a
small owned cluster plus one cloud pool, and prints always-burst,
never-burst and our policy side by side: average JCT and cloud cost summed
over the seeds, and the ratios the issue names (our JCT vs always-burst's,
our cost vs always-burst's) with "met" / "NOT met" against the target
(JCT within 10 % of always-burst at no more than half its cost).

  bench/cloud_sim/run.py --ty-sim build/bin/ty-sim [--seeds 1,2,3,4,5] [--load 0.8]
      [--nodes 8x8:A100] [--pool cloud:16x8:A100,boot=180s,price=29.39] [--sweep 15m,30m,1h,2h,3h]
      [--policy ARGS]   # our policy's ty-sim flags (default: none, the broker's defaults)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "traces", "gen_trace.py")


def run(ty_sim, trace, nodes, pool, extra):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [ty_sim, trace, "--nodes", nodes, "--pool", pool, "--json", out.name] + extra
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        runs = json.load(open(out.name))["runs"]
    return [(r["jct"]["avg_s"] * r["finished"], r["finished"], r["cloud"]["cost"], r["cloud"]["gpu_hours"],
             r["queueing_delay"]["p95_s"]) for r in runs]


def without(flags, option):
    """`flags` less `option` and its value (ty-sim refuses an option given twice)."""
    out, skip = [], False
    for f in flags:
        if skip:
            skip = False
        elif f == option:
            skip = True
        elif not f.startswith(option + "="):
            out.append(f)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ty-sim", default="build/bin/ty-sim")
    p.add_argument("--seeds", default="1,2,3,4,5")
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--load", type=float, default=0.8)
    p.add_argument("--nodes", default="8x8:A100")
    p.add_argument("--pool", default="cloud:16x8:A100,boot=180s,price=29.39")
    p.add_argument("--policy", default="", help="our policy's ty-sim flags (default: the broker's defaults)")
    p.add_argument("--sweep", default="", help="also these --burst-after thresholds (e.g. 15m,30m,1h,2h)")
    a = p.parse_args()
    owned_gpus = sum(int(g.split(":")[0].split("x")[0]) * int(g.split(":")[0].split("x")[1])
                     for g in a.nodes.split(","))
    variants = [("always-burst", ["--burst-after", "0", "--burst-per-gpu-hour", "0", "--rented-for-eligible-only", "off"]),
                ("never-burst", ["--burst-after", "never"]),
                ("our policy", a.policy.split())]
    for t in filter(None, a.sweep.split(",")):
        variants.append(("ours, after " + t, without(a.policy.split(), "--burst-after") + ["--burst-after", t]))
    totals = {name: [0.0, 0, 0.0, 0.0, 0.0] for name, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds.split(","):
            trace = os.path.join(tmp, "philly_%s.csv" % seed)
            with open(trace, "w") as f:
                subprocess.run([sys.executable, GEN, "--jobs", str(a.jobs), "--cluster-gpus", str(owned_gpus),
                                "--load", str(a.load), "--seed", seed], check=True, stdout=f)
            for name, extra in variants:
                jct_sum, n, cost, gpu_h, p95 = run(a.ty_sim, trace, a.nodes, a.pool, extra)[0]
                t = totals[name]
                t[0] += jct_sum
                t[1] += n
                t[2] += cost
                t[3] += gpu_h
                t[4] += p95 / len(a.seeds.split(","))
    print("trace: gen_trace.py --jobs %d --cluster-gpus %d --load %s, seeds %s; owned %s; pool %s" %
          (a.jobs, owned_gpus, a.load, a.seeds, a.nodes, a.pool))
    print("our policy: ty-sim %s" % (a.policy or "(the broker's defaults)"))
    print("%-20s %9s %10s %11s %12s %10s %10s  %s" % ("", "avg JCT s", "p95 wait s", "cloud GPU-h", "cloud cost",
                                                     "JCT/always", "cost/always", "target"))
    base_jct = totals["always-burst"][0] / max(1, totals["always-burst"][1])
    base_cost = totals["always-burst"][2]
    met_all = True
    for name, _ in variants:
        jct_sum, n, cost, gpu_h, p95 = totals[name]
        jct = jct_sum / max(1, n)
        jr, cr = jct / base_jct, (cost / base_cost if base_cost else 0)
        target = ""
        if name.startswith("our"):
            ok = jr <= 1.10 and cr <= 0.50
            target = "met" if ok else "NOT met"
            if name == "our policy":
                met_all = ok
        print("%-20s %9.0f %10.0f %11.1f %12.2f %10.3f %10.3f  %s" % (name, jct, p95, gpu_h, cost, jr, cr, target))
    print("target (issue 12, after Starburst ATC'24): JCT <= 1.10 x always-burst at cost <= 0.50 x always-burst: %s"
          % ("met" if met_all else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
