#!/usr/bin/env python3
"""The PyTorch baseline for `lathe bench train` on a GPU host: minibatch logistic regression as a
user would write it, on data already on the GPU (the same N x D float32 table and batch B).

Two variants, each timed over whole epochs with a device synchronize before the host clock is read:
  eager  - the textbook loop: randperm, index, nn.Linear, BCE-with-logits, backward, SGD step;
  graph  - the same step captured once in a CUDA graph and replayed per minibatch (a tuned user);
           the batch indices are copied into the graph's static index tensor before each replay.
Seconds per epoch are the median of the epochs after the first (which pays warm-up and capture),
like `lathe bench train`. Prints one JSON object on stdout; progress on stderr.
"""
import argparse
import json
import statistics
import sys
import time

# PyTorch is imported by import_torch() once the arguments are read, so that --help and a wrong
# argument work on a host without it.
torch = None
F = None


def import_torch():
    global torch, F
    try:
        import torch as torch_module
        import torch.nn.functional as functional
    except ImportError as e:
        sys.exit(f"torch_logreg.py: needs PyTorch with CUDA (pip install torch): {e}")
    torch, F = torch_module, functional


def make_data(rows, features, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(rows, features, device="cuda", generator=g)
    w = torch.randn(features, device="cuda", generator=g) / features ** 0.5
    p = torch.sigmoid(x @ w)
    y = torch.bernoulli(p, generator=g)
    return x, y


def run_eager(x, y, batch, epochs, lr):
    model = torch.nn.Linear(x.shape[1], 1, device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    times, loss = [], None
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(x.shape[0], device="cuda")
        for i in range(0, x.shape[0], batch):
            idx = order[i:i + batch]
            loss = F.binary_cross_entropy_with_logits(model(x[idx]).squeeze(1), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, float(loss)


def run_graph(x, y, batch, epochs, lr):
    rows = x.shape[0]
    full = rows - rows % batch  # the graph has one static batch shape; the tail runs eagerly
    model = torch.nn.Linear(x.shape[1], 1, device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    static_idx = torch.arange(batch, device="cuda")

    def step(idx):
        loss = F.binary_cross_entropy_with_logits(model(x[idx]).squeeze(1), y[idx])
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step(static_idx)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = step(static_idx)

    times = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(rows, device="cuda")
        for i in range(0, full, batch):
            static_idx.copy_(order[i:i + batch])
            graph.replay()
        if full < rows:
            step(order[full:])
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, float(static_loss)


def typical(times):
    return statistics.median(times[1:] if len(times) > 1 else times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=24)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    import_torch()
    if not torch.cuda.is_available():
        sys.exit("torch_logreg.py: no CUDA device")
    x, y = make_data(a.rows, a.features, a.seed)
    steps = (a.rows + a.batch - 1) // a.batch
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": a.rows,
           "features": a.features, "batch": a.batch, "epochs": a.epochs, "steps": steps}
    for name, run in (("eager", run_eager), ("graph", run_graph)):
        print(f"torch_logreg: {name}", file=sys.stderr, flush=True)
        times, loss = run(x, y, a.batch, a.epochs, a.lr)
        s = typical(times)
        out[name] = {"epoch_seconds": s, "rows_per_second": a.rows / s,
                     "step_microseconds": s / steps * 1e6, "final_batch_loss": loss, "epoch_times": times}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
