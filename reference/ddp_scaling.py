#!/usr/bin/python3
"""PyTorch's side of `pnpm bench:scaling`: the same language-model step (W1, W2 of ../shared/BENCHMARKS.md)
in one process with one thread, and in DistributedDataParallel (Gloo) over 2 processes x 1 thread with the
same per-rank batch (weak scaling), so the efficiencies can be read beside Loom's from the same machine
and the same minutes.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 reference/ddp_scaling.py \
        --workloads W1,W2 --steps 10 --json ddp.json

The step: Embedding -> 2-layer nn.LSTM -> Linear to the vocabulary, F.cross_entropy, backward,
clip_grad_norm_(5), SGD(lr=1), hidden state carried and detached; uniform random token ids. Tokens/s come
from the median step time after warm-up steps; efficiency = DDP tokens/s / (2 x one process's).
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

WORKLOADS = {
    'W1': dict(hidden=200, embed=200, vocab=10_000, bptt=20),
    'W2': dict(hidden=650, embed=650, vocab=10_000, bptt=35),
}


class LM(nn.Module):
    def __init__(self, V, E, H):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, 2)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.encoder(x), hidden)
        return self.decoder(out), hidden


def step_times(w, batch, steps, warmup, ddp):
    torch.manual_seed(1)
    model = LM(w['vocab'], w['embed'], w['hidden'])
    if ddp:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    H, T, V = w['hidden'], w['bptt'], w['vocab']
    hidden = (torch.zeros(2, batch, H), torch.zeros(2, batch, H))
    times = []
    for s in range(warmup + steps):
        x = torch.randint(0, V, (T, batch))
        y = torch.randint(0, V, (T, batch))
        t0 = time.perf_counter()
        hidden = tuple(h.detach() for h in hidden)
        opt.zero_grad()
        logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits.view(-1, V), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def rank_main(rank, world, w, batch, steps, warmup, port, out):
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    times = step_times(w, batch, steps, warmup, True)
    dist.barrier()
    if rank == 0:
        out.put(times)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--workloads', default='W1,W2')
    p.add_argument('--batch', type=int, default=20, help='lanes per process (per rank)')
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--json', help='write the rows here')
    a = p.parse_args()
    rows = []
    for name in a.workloads.split(','):
        w = WORKLOADS[name]
        tokens = w['bptt'] * a.batch
        torch.set_num_threads(1)
        one = statistics.median(step_times(w, a.batch, a.steps, a.warmup, False))
        ctx = mp.get_context('spawn')
        q = ctx.SimpleQueue()
        mp.start_processes(rank_main, args=(2, w, a.batch, a.steps, a.warmup, 29500 + len(rows), q), nprocs=2, join=True, start_method='spawn')
        two = statistics.median(q.get())
        one_tps, two_tps = tokens / one, 2 * tokens / two
        for workers, tps, ms in ((1, one_tps, one), (2, two_tps, two)):
            rows.append({'workload': name, 'backend': 'pytorch-' + torch.__version__, 'workers': workers, 'mode': 'weak',
                         'perWorkerBatch': a.batch, 'tokensPerSec': tps, 'msStep': 1000 * ms,
                         'efficiency': tps / (workers * one_tps)})
        print(f'{name}: 1 process {one_tps:.0f} tokens/s ({1000 * one:.0f} ms/step); DDP 2 x 1 thread {two_tps:.0f} tokens/s '
              f'({1000 * two:.0f} ms/step); efficiency {two_tps / (2 * one_tps):.2f}', flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
