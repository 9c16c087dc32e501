#!/usr/bin/env python3
"""The mnist-node convnet in PyTorch from Python, as a user would write it:
the reference that mnist-train's speed is compared with (bench/).

With --bench-steps N it times N training steps after --warmup steps (or,
with --eval, forward-only evaluation) and prints one JSON line, as
bench/mnist_bench does for mnist-train.

With --arch mobilenet-v2: Keras applications' MobileNetV2 (alpha 0.35,
include_top=False, 96x96x3, as tests/node/make_reference_model.js builds it
in TF.js) with a global-average-pooling, dropout 0.2 and Dense 10 head, its
base frozen (requires_grad False; its BatchNormalization layers still in
training mode, as TF.js's fit and mnist-train run them): a fine-tune, as
bench_main.cpp's --model ... --freeze-up-to out_relu --head-units 10.

--bench-steps loads only the images its steps take, so that large inputs
fit, and reports step_memory_mib: the peak RSS over the warm-up and timed
steps less the RSS before the first step (what training adds to the data
and the model), as bench_main.cpp does.

Same model, batch size, thread count and data as mnist-train; RMSprop with
TF.js's rho 0.9 and epsilon 1e-7 (torch.optim.RMSprop adds epsilon outside
the square root; the cost is the same). Prints one line per epoch and a JSON
summary line.
"""
import argparse
import ctypes
import gzip
import json
import os
import struct
import time

import resource

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    opener = gzip.open if not os.path.exists(path) and os.path.exists(path + ".gz") else open
    if opener is gzip.open:
        path += ".gz"
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class ConvNet(nn.Module):
    def __init__(self, height=28, width=28, channels=1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3)
        self.conv2 = nn.Conv2d(32, 32, 3)
        self.conv3 = nn.Conv2d(32, 64, 3)
        self.conv4 = nn.Conv2d(64, 64, 3)
        side = lambda n: ((n - 4) // 2 - 4) // 2  # noqa: E731 (two valid convs, a pool, twice)
        self.dense1 = nn.Linear(64 * side(height) * side(width), 512)
        self.dense2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        x = F.max_pool2d(F.relu(self.conv4(x)), 2)
        x = torch.flatten(x.permute(0, 2, 3, 1), 1)
        x = F.dropout(x, 0.25, self.training)
        x = F.dropout(F.relu(self.dense1(x)), 0.5, self.training)
        return self.dense2(x)


def make_divisible(v, divisor=8):
    """keras/src/applications/mobilenet_v2.py's _make_divisible."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class MobileNetV2(nn.Module):
    """Keras applications' MobileNetV2 at alpha 0.35, include_top=False, with
    the fine-tuning head of tests/node/make_reference_model.js: the same
    layers, shapes and padding (TF's "same" on even sides pads only the
    bottom and right for stride 2). BatchNormalization epsilon 1e-3, Keras
    momentum 0.999 (PyTorch's 0.001); no biases but the head's."""

    def __init__(self, channels=3, classes=10, alpha=0.35):
        super().__init__()

        def bn(c):
            return nn.BatchNorm2d(c, eps=1e-3, momentum=0.001)

        def block(cin, expansion, stride, filters):
            cout = make_divisible(int(filters * alpha))
            mid = cin * expansion
            layers = []
            if expansion != 1:
                layers += [nn.Conv2d(cin, mid, 1, bias=False), bn(mid), nn.ReLU6()]
            if stride == 2:
                layers += [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(mid, mid, 3, 2, groups=mid, bias=False)]
            else:
                layers += [nn.Conv2d(mid, mid, 3, 1, 1, groups=mid, bias=False)]
            layers += [bn(mid), nn.ReLU6(), nn.Conv2d(mid, cout, 1, bias=False), bn(cout)]
            return nn.Sequential(*layers), cin == cout and stride == 1, cout

        first = make_divisible(32 * alpha)
        self.stem = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(channels, first, 3, 2, bias=False),
                                  bn(first), nn.ReLU6())
        blocks, self.residual, cin = [], [], first
        for i, (filters, stride, expansion) in enumerate(
                [[16, 1, 1], [24, 2, 6], [24, 1, 6], [32, 2, 6], [32, 1, 6], [32, 1, 6], [64, 2, 6],
                 [64, 1, 6], [64, 1, 6], [64, 1, 6], [96, 1, 6], [96, 1, 6], [96, 1, 6], [160, 2, 6],
                 [160, 1, 6], [160, 1, 6], [320, 1, 6]]):
            b, add, cin = block(cin, expansion if i else 1, stride, filters)
            blocks.append(b)
            self.residual.append(add)
        self.blocks = nn.ModuleList(blocks)
        self.top = nn.Sequential(nn.Conv2d(cin, 1280, 1, bias=False), bn(1280), nn.ReLU6())
        self.head = nn.Linear(1280, classes)

    def base_parameters(self):
        return [p for m in (self.stem, self.blocks, self.top) for p in m.parameters()]

    def forward(self, x):
        x = self.stem(x)
        for b, add in zip(self.blocks, self.residual):
            x = x + b(x) if add else b(x)
        x = self.top(x).mean((2, 3))
        return self.head(F.dropout(x, 0.2, self.training))


def rss_mib(field):
    """/proc/self/status's VmRSS or VmHWM in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def reshape_images(x, height, width, channels):
    """MNIST [N,1,28,28] as [N,C,H,W]: resized bilinearly (half-pixel
    centres) and channel c scaled by 1 - 0.2c, as bench/bench_main.cpp does."""
    if (height, width) != (28, 28):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    if channels == 3:
        x = torch.cat([x, x * 0.8, x * 0.6], 1)
    return x.contiguous()


def seconds_since_process_start():
    with open("/proc/self/stat") as f:
        start_ticks = float(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def bench(a, model, opt, x, y, xt, yt, fmt):
    out = {"impl": "pytorch-python", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "input": [int(v) for v in a.input.split(",")],
           "layout": "channels_last" if a.channels_last else "nchw", "batch_size": a.batch_size}
    if a.eval:
        model.eval()
        with torch.no_grad():
            def run():
                for i in range(0, len(xt), 256):
                    model(xt[i:i + 256].contiguous(memory_format=fmt)).argmax(1)
            run()
            rates = []
            for i in range(3):
                profile = None
                if i == 0 and a.trace:  # the first timed pass
                    profile = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                    profile.__enter__()
                t0 = time.perf_counter()
                run()
                rates.append(len(xt) / (time.perf_counter() - t0))
                if profile is not None:
                    profile.__exit__(None, None, None)
                    profile.export_chrome_trace(a.trace)
        out.update(mode="eval", eval_images_per_second=float(np.median(rates)))
    else:
        model.train()
        order = torch.randperm(len(x))
        times = []
        first_batch_at = None
        # What loading freed goes back to the OS first, as mnist-train's
        # tune_allocator does, so that the RSS before the steps is the data and
        # the model.
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        rss_before = rss_mib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:  # VmHWM := VmRSS
            f.write("5")
        profile = None
        for step in range(a.warmup + a.bench_steps):
            if step == a.warmup and a.trace:
                profile = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                profile.__enter__()
            t0 = time.perf_counter()
            idx = order[(step * a.batch_size) % (len(x) - a.batch_size):][:a.batch_size]
            out_ = model(x.index_select(0, idx).contiguous(memory_format=fmt))
            loss = F.cross_entropy(out_, y.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if first_batch_at is None:
                first_batch_at = seconds_since_process_start()
            if step >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        if profile is not None:
            profile.__exit__(None, None, None)
            profile.export_chrome_trace(a.trace)
        # Throughput from the mean step (what an epoch takes: with OpenBLAS's
        # threads fighting libtorch's, some steps take twice as long).
        ms = float(np.mean(times))
        out.update(mode="train", ms_per_step=ms, median_step_ms=float(np.median(times)),
                   images_per_second=a.batch_size * 1000 / ms,
                   startup_to_first_batch_s=first_batch_at,
                   step_memory_mib=rss_mib("VmHWM") - rss_before)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR", "data/mnist"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bench-steps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--eval", action="store_true", help="with --bench-steps: time evaluation")
    ap.add_argument("--trace", help="with --bench-steps: torch.profiler's chrome://tracing file of the "
                    "timed steps (bench/trace_summary.py sums it)")
    ap.add_argument("--input", default="28,28,1",
                    help="H,W,C: mnist-node's architecture for MNIST resized and tinted to that")
    ap.add_argument("--arch", default="mnist-node", choices=["mnist-node", "mobilenet-v2"],
                    help="mobilenet-v2: a fine-tune of MobileNetV2 (frozen base) at 96x96x3")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format

    if a.arch == "mobilenet-v2":
        a.input = "96,96,3"
    # --bench-steps: the training images the steps take (85% of them train;
    # for --eval one, and one test image for training); else all of them.
    limit = None
    if a.bench_steps:
        limit = 1 if a.eval else (a.warmup + a.bench_steps) * a.batch_size * 100 // 85 + 100
    test_limit = 1 if a.bench_steps and not a.eval else None
    x = torch.from_numpy(read_idx(os.path.join(a.data_dir, "train-images-idx3-ubyte"))[:limit].copy())
    y = torch.from_numpy(read_idx(os.path.join(a.data_dir, "train-labels-idx1-ubyte"))[:limit].astype(np.int64))
    xt = torch.from_numpy(read_idx(os.path.join(a.data_dir, "t10k-images-idx3-ubyte"))[:test_limit].copy())
    yt = torch.from_numpy(read_idx(os.path.join(a.data_dir, "t10k-labels-idx1-ubyte"))[:test_limit].astype(np.int64))
    height, width, channels = (int(v) for v in a.input.split(","))
    x = reshape_images((x.float() / 255).unsqueeze(1), height, width, channels).to(dev)
    xt = reshape_images((xt.float() / 255).unsqueeze(1), height, width, channels).to(dev)
    y, yt = y.to(dev), yt.to(dev)
    n = int(len(x) * 0.85)
    xtr, ytr = x[:n], y[:n]

    if a.arch == "mobilenet-v2":
        model = MobileNetV2(channels).to(dev).to(memory_format=fmt)
        for p in model.base_parameters():
            p.requires_grad_(False)
    else:
        model = ConvNet(height, width, channels).to(dev).to(memory_format=fmt)
    opt = torch.optim.RMSprop([p for p in model.parameters() if p.requires_grad], lr=0.001, alpha=0.9,
                              eps=1e-7)
    if a.bench_steps > 0:
        return bench(a, model, opt, xtr, ytr, xt, yt, fmt)
    epochs = []
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, device=dev)
        loss_sum = torch.zeros((), device=dev)
        for i in range(0, n, a.batch_size):
            idx = order[i:i + a.batch_size]
            xb = x.index_select(0, idx).contiguous(memory_format=fmt)
            out = model(xb)
            loss = F.cross_entropy(out, ytr.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
        train_loss = loss_sum.item() / n
        secs = time.perf_counter() - t0
        epochs.append(secs)
        print(f"torch epoch {epoch}/{a.epochs}: {secs:.3f} s, {n / secs:.0f} img/s, loss {train_loss:.4f}", flush=True)
    model.eval()
    with torch.no_grad():
        correct = sum((model(xt[i:i + 256].contiguous(memory_format=fmt)).argmax(1) == yt[i:i + 256]).sum().item()
                      for i in range(0, len(xt), 256))
    acc = correct / len(xt)
    print(json.dumps({"device": a.device, "torch": torch.__version__, "epochs": epochs,
                      "median_epoch_s": float(np.median(epochs)), "test_acc": acc}), flush=True)


if __name__ == "__main__":
    main()
