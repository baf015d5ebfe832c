"""PyTorch CPU baseline for one SGD step of an MLP.

`cargo bench -p worker --bench sgd_step` runs this script beside our own engine,
so that our numbers can be compared with PyTorch's on the same machine. The
work is the same: one step of an MLP 784 -> w -> w -> 10 (ReLU, biases, f32),
mean cross-entropy loss, plain SGD (lr=0.01, no momentum). A step is
zero_grad + forward + loss + backward + optimizer.step().

Prints one JSON object per (threads, width) line to stdout and nothing else;
diagnostics go to stderr. With --serve it instead reads "threads width" lines
from stdin and answers each with one such line, so that the benchmark can
interleave PyTorch's steps with its own on a machine whose speed drifts.
"""
import argparse
import json
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from torch import nn  # noqa: E402

IN_FEATURES, CLASSES, WARMUP_STEPS, MIN_STEPS = 784, 10, 3, 3


def int_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def bench(width, batch, min_seconds):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(IN_FEATURES, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, CLASSES),
    )
    x = torch.randn(batch, IN_FEATURES, dtype=torch.float32)
    y = torch.randint(0, CLASSES, (batch,))
    loss_fn = nn.CrossEntropyLoss()  # mean over the batch
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(WARMUP_STEPS):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < MIN_STEPS or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), len(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int_list, default=[64, 256, 1024, 4096])
    p.add_argument("--threads", type=int_list, default=[1, 2])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--serve", action="store_true")
    args = p.parse_args()

    try:
        torch.set_num_interop_threads(1)
    except RuntimeError as e:  # only allowed once, before any parallel work
        print(f"set_num_interop_threads(1) skipped: {e}", file=sys.stderr)

    def answer(t, w):
        torch.set_num_threads(t)
        secs, best, n = bench(w, args.batch, args.min_seconds)
        print(json.dumps({
            "framework": "pytorch", "torch_version": torch.__version__,
            "width": w, "threads": t, "batch": args.batch,
            "step_seconds": secs, "best_step_seconds": best, "steps": n,
        }), flush=True)

    if args.serve:
        for line in sys.stdin:
            t, w = int_list(line.replace(" ", ","))
            answer(t, w)
        return
    for t in args.threads:
        for w in args.widths:
            answer(t, w)


if __name__ == "__main__":
    main()
