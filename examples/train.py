#!/usr/bin/env python3
"""A small real training job: logistic regression with a hidden layer
(a 2-layer MLP) trained by mini-batch SGD on a synthetic two-moons data set,
in pure Python (no dependencies), reporting loss and accuracy per step
through TY_METRICS_FILE.

    python3 train.py --lr 0.1 --hidden 16 --steps 300 --seed 1

Hyperparameters come from flags or from the environment (TY_ARRAY_INDEX
picks a row of --grid), so one array job sweeps a grid.
"""
import argparse
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "client", "python"))
try:
    import trainyard
except ImportError:  # running outside the repository: report nothing
    trainyard = None


def two_moons(n, noise, rng):
    points = []
    for i in range(n):
        t = math.pi * rng.random()
        if i % 2 == 0:
            x, y, label = math.cos(t), math.sin(t), 0
        else:
            x, y, label = 1 - math.cos(t), 0.5 - math.sin(t), 1
        points.append(((x + rng.gauss(0, noise), y + rng.gauss(0, noise)), label))
    return points


def sigmoid(z):
    if z < -40:
        return 0.0
    if z > 40:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


class MLP:
    def __init__(self, hidden, rng):
        self.w1 = [[rng.gauss(0, 1.0) for _ in range(2)] for _ in range(hidden)]
        self.b1 = [0.0] * hidden
        self.w2 = [rng.gauss(0, 1.0 / math.sqrt(hidden)) for _ in range(hidden)]
        self.b2 = 0.0

    def forward(self, x):
        h = [math.tanh(w[0] * x[0] + w[1] * x[1] + b) for w, b in zip(self.w1, self.b1)]
        return h, sigmoid(sum(a * b for a, b in zip(self.w2, h)) + self.b2)

    def step(self, batch, lr):
        n = len(batch)
        g1 = [[0.0, 0.0] for _ in self.w1]
        gb1 = [0.0] * len(self.b1)
        g2 = [0.0] * len(self.w2)
        gb2 = 0.0
        loss = 0.0
        for x, y in batch:
            h, p = self.forward(x)
            p = min(max(p, 1e-9), 1 - 1e-9)
            loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
            d = p - y
            gb2 += d
            for j, hj in enumerate(h):
                g2[j] += d * hj
                dh = d * self.w2[j] * (1 - hj * hj)
                gb1[j] += dh
                g1[j][0] += dh * x[0]
                g1[j][1] += dh * x[1]
        for j in range(len(self.w1)):
            self.w1[j][0] -= lr * g1[j][0] / n
            self.w1[j][1] -= lr * g1[j][1] / n
            self.b1[j] -= lr * gb1[j] / n
            self.w2[j] -= lr * g2[j] / n
        self.b2 -= lr * gb2 / n
        return loss / n

    def accuracy(self, data):
        return sum(1 for x, y in data if (self.forward(x)[1] > 0.5) == (y == 1)) / len(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep per step (to watch it live)")
    ap.add_argument("--grid", default="", help="'lr:hidden,lr:hidden,...': TY_ARRAY_INDEX picks one")
    args = ap.parse_args()
    if args.grid and os.environ.get("TY_ARRAY_INDEX"):
        cells = args.grid.split(",")
        lr, hidden = cells[int(os.environ["TY_ARRAY_INDEX"]) % len(cells)].split(":")
        args.lr, args.hidden = float(lr), int(hidden)

    rng = random.Random(args.seed)
    train = two_moons(512, 0.15, rng)
    val = two_moons(256, 0.15, rng)
    model = MLP(args.hidden, rng)
    print(f"training: lr={args.lr} hidden={args.hidden} steps={args.steps} "
          f"job={os.environ.get('TY_JOB_ID', '-')} gpus={os.environ.get('CUDA_VISIBLE_DEVICES', '-')}", flush=True)
    for step in range(1, args.steps + 1):
        batch = rng.sample(train, args.batch)
        loss = model.step(batch, args.lr)
        values = {"loss": loss}
        if step % args.eval_every == 0 or step == args.steps:
            values["val_acc"] = model.accuracy(val)
        if trainyard:
            trainyard.log(step, **values)
        if step % 50 == 0 or step == args.steps:
            print(f"step {step}: loss {loss:.4f}" + (f" val_acc {values['val_acc']:.3f}" if "val_acc" in values else ""),
                  flush=True)
        if args.sleep:
            time.sleep(args.sleep)
    print(f"final val_acc {model.accuracy(val):.3f}", flush=True)


if __name__ == "__main__":
    main()
