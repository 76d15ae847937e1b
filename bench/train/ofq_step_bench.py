#!/usr/bin/env python3
"""Training-step time of the OFQ MLP in PyTorch Python, the twin of
bench/train/ofq_step_bench.cc (which runs this script and reports the ratio).

The model mirrors worker/train/quant/quant_mlp.cc exactly (methods.md §1.1,
§1.2): MLP 784-H-H-10 with ReLU; "fp32" is the plain network; "w2" is the
§7.1 configuration: fc0 and head with 8-bit LSQ weights (one scale per
output row) and 8-bit LSQ inputs, the hidden fc1.. with 2-bit StatsQ weights
and 4-bit unsigned LSQ inputs; every activation quantizer per tensor, between
the learnable shifts move_b4 / move_aft. AdamW (lr 1e-3, weight decay 0.05
on >= 2-D weights only, none on scales and shifts). One step = forward,
cross-entropy, backward, optimizer step, loss.item() (as the C++ loop).
Input batches are pre-generated (data loading is not timed, in either).

Neither side runs the oscillation tracker. BLAS threads and glibc malloc
thresholds are set by the C++ driver through the environment
(OPENBLAS_NUM_THREADS, GLIBC_TUNABLES), the same as on its own side.

Prints one JSON object. Needs Debian's python3-torch (LibTorch 1.13, the
same version pendulum-train links).
  python3 ofq_step_bench.py [--threads N] [--batch B] [--steps S] [--hidden H]
                            [--warmup W] [--configs fp32,w2a4_statsq]
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F


def round_pass(x):
    return (x.round() - x).detach() + x


def grad_scale(x, g):
    y = x * g
    return (x - y).detach() + y


def clip_floor_ste(x, eps=1e-5):
    return x - x.detach() + torch.clamp(x.detach(), min=eps)


class Lsq(torch.nn.Module):
    """LSQ (lsq.py); per-row for weights, per-tensor for inputs. The scale is
    created by the first forward from the data (methods.md trap 9)."""

    def __init__(self, bits, all_positive=False, per_row=False):
        super().__init__()
        self.per_row = per_row
        self.all_positive = all_positive
        if all_positive:
            self.qn, self.qp = 0, 2 ** bits - 1
        else:
            self.qn, self.qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        self.s = None

    def init_from(self, x):
        a = x.detach().abs()
        m = a.mean(dim=1) if self.per_row else a.mean().reshape(1)
        factor = 4.0 if self.all_positive else 2.0
        self.s = torch.nn.Parameter(m * factor / math.sqrt(self.qp))

    def forward(self, x):
        if self.s is None:
            self.init_from(x)
        if self.per_row:
            n = x.numel() / x.size(0)
            alpha = self.s.reshape(-1, *([1] * (x.dim() - 1)))
        else:
            n = x.numel()
            alpha = self.s
        s = grad_scale(clip_floor_ste(alpha), 1.0 / math.sqrt(self.qp * n))
        v = (x / s).clamp(self.qn, self.qp)
        return round_pass(v) * s


def statsq(w, bits):
    """StatsQ (statsq.py): mid-rise levels, identity STE, no scale gradient."""
    s = (w.abs().mean(dim=1, keepdim=True) * 2).detach()
    n = float(2 ** (bits - 1))
    c = (w.detach() / s).clamp(-1.0, 1.0 - 1e-6)
    k = (c * n - 0.5).round()
    q = s * ((k + 0.5) / n)
    return q - w.detach() + w


class QuantLinear(torch.nn.Module):
    def __init__(self, fin, fout, weight_quant="none", weight_bits=32, act_bits=0, act_all_positive=False):
        super().__init__()
        lin = torch.nn.Linear(fin, fout)  # kaiming_uniform(a=sqrt 5), as the C++ module
        self.weight = lin.weight
        self.bias = lin.bias
        self.weight_quant = weight_quant
        self.weight_bits = weight_bits
        self.wq = Lsq(weight_bits, per_row=True) if weight_quant == "lsq" else None
        self.act = None
        if act_bits > 0:
            self.act = Lsq(act_bits, all_positive=act_all_positive)
            self.move_b4 = torch.nn.Parameter(torch.zeros(fin))
            self.move_aft = torch.nn.Parameter(torch.zeros(fin))

    def forward(self, x):
        if self.weight_quant == "statsq":
            w = statsq(self.weight, self.weight_bits)
        elif self.weight_quant == "lsq":
            w = self.wq(self.weight)
        else:
            w = self.weight
        if self.act is not None:
            x = self.act(x + self.move_b4) + self.move_aft
        return F.linear(x, w, self.bias)


class QuantMlp(torch.nn.Module):
    def __init__(self, hidden, quantize, weight_quant="statsq", weight_bits=2, act_bits=4, head_bits=8):
        super().__init__()
        layers = []
        fin = 784
        for i, h in enumerate(hidden):
            if not quantize:
                layers.append(QuantLinear(fin, h))
            elif i == 0:
                layers.append(QuantLinear(fin, h, "lsq", head_bits, head_bits, False))
            else:
                layers.append(QuantLinear(fin, h, weight_quant, weight_bits, act_bits, True))
            fin = h
        self.hidden = torch.nn.ModuleList(layers)
        if quantize:
            self.head = QuantLinear(fin, 10, "lsq", head_bits, head_bits, True)
        else:
            self.head = QuantLinear(fin, 10)

    def forward(self, x):
        h = x.reshape(x.size(0), -1)
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.head(h)


def make_optimizer(model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.dim() >= 2 and not name.endswith(".s") and "move_" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                              {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)


def time_steps(model, batches, labels, steps, warmup):
    model.train()
    with torch.no_grad():
        model(batches[0])  # creates the LSQ scales before the optimizer (trap 9)
    opt = make_optimizer(model)
    wall, cpu = [], []
    ru0 = None
    for i in range(steps + warmup):
        if i == warmup:
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
        x, y = batches[i % len(batches)], labels[i % len(labels)]
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        t1, c1 = time.perf_counter(), time.process_time()
        if i >= warmup:
            wall.append((t1 - t0) * 1e3)
            cpu.append((c1 - c0) * 1e3)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"median_ms": statistics.median(wall), "mean_ms": statistics.fmean(wall),
            "cpu_ms_per_step": statistics.fmean(cpu),
            "minor_faults_per_step": (ru1.ru_minflt - ru0.ru_minflt) / steps,
            "sys_ms_per_step": (ru1.ru_stime - ru0.ru_stime) * 1e3 / steps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--configs", default="fp32,w2a4_statsq")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    batches = [torch.randn(a.batch, 1, 28, 28) for _ in range(8)]
    labels = [torch.randint(0, 10, (a.batch,)) for _ in range(8)]
    out = {"impl": "python", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "batch": a.batch, "steps": a.steps, "hidden": [a.hidden, a.hidden]}
    for name in a.configs.split(","):
        if name not in ("fp32", "w2a4_statsq"):
            raise SystemExit(f"--configs: unknown configuration {name!r} (allowed: fp32, w2a4_statsq)")
        model = QuantMlp([a.hidden, a.hidden], quantize=name != "fp32")
        out[name] = time_steps(model, batches, labels, a.steps, a.warmup)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
