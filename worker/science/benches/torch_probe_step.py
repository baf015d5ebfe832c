"""PyTorch CPU baseline for the stagnation probe's steps and a Hessian-vector product.

`cargo bench -p science --bench probe_step` runs this script beside our own engine, on the same
machine, interleaved round by round. The work is the same as ours at the default sweep's shape:
an MLP 20 -> w -> 4 (ReLU, biases, f32), mean cross-entropy over a batch of 32 from 1024
examples, plain SGD (lr=0.01, no momentum).

- train step: zero_grad + forward + loss + backward + optimizer.step();
- probe step: the same with Gaussian gradient noise (sigma=0.01 per coordinate, drawn by
  torch.randn) added to every gradient, then the tracking our probe does after each step:
  the displacement from the start point in float64, its length, its projection on 3 orthonormal
  vectors, and per layer the Frobenius and (2,1) norms of the weight displacement and two warm-
  started power iterations for its operator norm;
- hvp: one Hessian-vector product of the loss over all 1024 examples, by double backward.

Answers each "threads width" line on stdin with one JSON line on stdout (best seconds of each).
"""
import argparse
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
from torch import nn  # noqa: E402

INPUT, CLASSES, EXAMPLES, BATCH, TOP, SIGMA, LR = 20, 4, 1024, 32, 3, 0.01, 0.01


def best_seconds(run, min_seconds):
    run()
    run()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(width, min_seconds):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(INPUT, width), nn.ReLU(), nn.Linear(width, CLASSES))
    params = list(model.parameters())
    inputs = torch.randn(EXAMPLES, INPUT)
    labels = torch.randint(0, CLASSES, (EXAMPLES,))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(params, lr=LR, momentum=0)
    cursor = [0]

    def batch():
        start = cursor[0]
        cursor[0] = (start + BATCH) % (EXAMPLES - BATCH)
        return inputs[start:start + BATCH], labels[start:start + BATCH]

    def train_step(noisy=False):
        x, y = batch()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        if noisy:
            with torch.no_grad():
                for p in params:
                    p.grad.add_(torch.randn_like(p), alpha=SIGMA)
        opt.step()

    with torch.no_grad():
        minimum = torch.cat([p.detach().reshape(-1) for p in params]).double()
        top = torch.linalg.qr(torch.randn(minimum.numel(), TOP, dtype=torch.float64))[0].T
        weights0 = [m.weight.detach().double().clone() for m in model if isinstance(m, nn.Linear)]
        rights = [torch.nn.functional.normalize(torch.randn(w.shape[1], dtype=torch.float64), dim=0)
                  for w in weights0]

    def track():
        with torch.no_grad():
            flat = torch.cat([p.reshape(-1) for p in params]).double()
            d = flat - minimum
            measured = [d.norm(), (top @ d).square().sum()]
            layers = [m for m in model if isinstance(m, nn.Linear)]
            for index, (layer, w0) in enumerate(zip(layers, weights0)):
                dw = layer.weight.double() - w0
                measured.append(dw.norm())
                measured.append(dw.norm(dim=1).sum())
                r = rights[index]
                for _ in range(2):
                    r = dw.T @ (dw @ r)
                    r = r / r.norm()
                rights[index] = r
                measured.append((dw @ r).norm())
            return measured

    def probe_step():
        train_step(noisy=True)
        track()

    vector = [torch.randn_like(p) for p in params]

    def hvp():
        loss = loss_fn(model(inputs), labels)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        inner = sum((g * v).sum() for g, v in zip(grads, vector))
        return torch.autograd.grad(inner, params)

    return {
        "train_step_seconds": best_seconds(train_step, min_seconds),
        "probe_step_seconds": best_seconds(probe_step, min_seconds),
        "hvp_seconds": best_seconds(hvp, min_seconds),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--serve", action="store_true", help="(the only mode; kept for symmetry)")
    args = p.parse_args()
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError as e:
        print(f"set_num_interop_threads(1) skipped: {e}", file=sys.stderr)
    for line in sys.stdin:
        threads, width = (int(v) for v in line.split())
        torch.set_num_threads(threads)
        record = {"framework": "pytorch", "torch_version": torch.__version__,
                  "width": width, "threads": threads}
        record.update(measure(width, args.min_seconds))
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
