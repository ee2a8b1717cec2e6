#!/usr/bin/env python3
"""Synthetic deep-learning cluster traces for ty-sim (Python standard library only).

Writes CSV rows `job_id,submit_time_s,num_gpus,duration_s,user,gpu_type`.
The shape follows what published analyses of production GPU clusters report
(the parameters below are ours, picked to match that shape, not fitted):

- Most jobs use one GPU; a minority use a whole node or several nodes.
  Microsoft Philly: Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU
  Clusters for DNN Training Workloads", USENIX ATC 2019. Alibaba PAI: Weng
  et al., "MLaaS in the Wild: Workload Analysis and Scheduling in
  Large-Scale Heterogeneous GPU Clusters", NSDI 2022.
- Durations are heavy-tailed: many jobs of minutes, a long tail of jobs of
  hours to days (both papers; also Hu et al., "Characterization and
  Prediction of Deep Learning Workloads in Large-Scale GPU Datacenters",
  SC 2021, SenseTime Helios). Here: log-normal, median ~15 min, sigma 1.6,
  bigger jobs somewhat longer, clipped to [30 s, 3 days].
- Arrivals are bursty: a diurnal cycle, and users submitting batches of
  similar jobs at once (hyper-parameter sweeps, retries). Here: batches
  arrive as a Poisson process whose rate follows the time of day; a batch
  holds a geometric number of jobs (mean 3) submitted seconds apart.
- A few users submit most jobs (skewed, Zipf-like weights over users).

The offered load (GPU-seconds asked / GPU-seconds the cluster has over the
arrival span) is set with --load, for a cluster of --cluster-gpus.

Example (the committed traces):
  python3 bench/traces/gen_trace.py --jobs 2000 --cluster-gpus 128 --load 0.9 \\
      --types any:0.6,V100:0.4 --seed 1 > bench/traces/dl_small_2k.csv
"""
import argparse
import math
import random
import sys

SIZES = [(1, 0.70), (2, 0.10), (4, 0.10), (8, 0.07), (16, 0.02), (32, 0.01)]


def weighted(rng, pairs):
    x = rng.random() * sum(w for _, w in pairs)
    for v, w in pairs:
        x -= w
        if x <= 0:
            return v
    return pairs[-1][0]


def parse_types(text):
    out = []
    for part in text.split(","):
        name, _, w = part.partition(":")
        out.append(("" if name in ("any", "*") else name, float(w or 1)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--users", type=int, default=12)
    p.add_argument("--cluster-gpus", type=int, default=128)
    p.add_argument("--max-gpus", type=int, default=32, help="largest job (GPUs)")
    p.add_argument("--load", type=float, default=0.9)
    p.add_argument("--types", default="any:1", help="gpu_type weights, e.g. any:0.5,V100:0.3,A100:0.2")
    p.add_argument("--burst", type=float, default=3.0, help="mean jobs per batch")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    types = parse_types(a.types)
    sizes = [(g, w) for g, w in SIZES if g <= a.max_gpus]
    users = ["u%02d" % i for i in range(a.users)]
    user_w = [(u, 1.0 / (i + 1) ** 1.1) for i, u in enumerate(users)]

    # Batches of similar jobs: same user, size and type; durations vary.
    jobs = []
    batch = 0
    while len(jobs) < a.jobs:
        batch += 1
        user = weighted(rng, user_w)
        gpus = weighted(rng, sizes)
        gtype = weighted(rng, types)
        n = 1
        while rng.random() > 1.0 / a.burst:
            n += 1
        base = math.exp(rng.gauss(math.log(900), 1.6)) * (1 + 0.3 * math.log2(gpus))
        for _ in range(min(n, a.jobs - len(jobs))):
            d = min(max(base * math.exp(rng.gauss(0, 0.3)), 30), 3 * 86400)
            jobs.append([user, gpus, int(round(d)), gtype, len(jobs), batch])
    work = sum(j[1] * j[2] for j in jobs)
    span = work / (a.load * a.cluster_gpus)

    # Batch arrival times: Poisson, thinned by a diurnal rate (peak in the
    # afternoon, a trough at night), then scaled onto [0, span].
    batch_starts = []
    t = 0.0
    i = 0
    while i < len(jobs):
        # Jobs of one batch were generated together: find its end.
        j = i + 1
        while j < len(jobs) and jobs[j][5] == jobs[i][5]:
            j += 1
        while True:
            t += rng.expovariate(1.0)
            rate = 1 + 0.6 * math.sin(2 * math.pi * (t / 24.0 - 0.25))
            if rng.random() * 1.6 <= rate:
                break
        batch_starts.append((t, i, j))
        i = j
    scale = span / max(batch_starts[-1][0], 1e-9)
    rows = []
    for t, i, j in batch_starts:
        at = t * scale
        for k in range(i, j):
            rows.append((int(round(at)), jobs[k]))
            at += rng.uniform(1, 20)
    rows.sort(key=lambda r: (r[0], r[1][4]))
    out = sys.stdout
    out.write("job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n")
    for n, (at, (user, gpus, d, gtype, _, _)) in enumerate(rows):
        out.write("j%05d,%d,%d,%d,%s,%s\n" % (n + 1, at, gpus, d, user, gtype))


if __name__ == "__main__":
    main()
