#!/usr/bin/python3
"""PyTorch reference for the quality comparison of docs/training.md: the same word-level LSTM language
model, data, batching, optimizer, clipping, schedule and evaluation as `pnpm train wikitext2`
(configs/wikitext2.ts = Zaremba et al.'s small model), in one process.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 reference/word_lm.py \
        --data ../shared/data/wikitext-2 --epochs 1 --max-steps 1000 --threads 1 --json out.json

What is the same as Loom (scripts/lib/*, @loom/data, @loom/models):
  - tokens: whitespace words as Python's str.split(), '<eos>' after every line (PyTorch's
    word_language_model data.py); the vocabulary is built from the training file only (WikiText-2's valid
    and test files hold no other words; an unseen word would map to '<unk>').
  - batching: batchify (n // B tokens per lane, the tail dropped), windows of bptt, the last one shorter,
    targets shifted by one; the hidden state starts at zero each epoch and is carried (detached) across
    windows.
  - model: Embedding(V, E) ~ U(-0.1, 0.1) -> dropout -> nn.LSTM(E, H, L, dropout) with PyTorch's default
    init U(-1/sqrt(H), 1/sqrt(H)) -> dropout -> Linear(H, V), weight ~ U(-0.1, 0.1), bias 0.
  - training: mean cross-entropy, clip_grad_norm_(5), plain SGD at lr 1, the lr of epoch e (from 0)
    lr * factor ** max(e + 1 - constant_epochs, 0) (Zaremba: 4 and 0.5).
  - evaluation: 10 lanes, windows of bptt, state carried, loss per token over every predicted token.
What differs: the random streams (initial weights, dropout masks) and the id order of the vocabulary
(by frequency in Loom, by first appearance here), so runs agree in distribution, not bit for bit.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_words(path):
    with open(path, encoding='utf8') as f:
        for line in f:
            yield from line.split()
            yield '<eos>'


def build_vocab(path):
    index = {'<unk>': 0, '<eos>': 1}
    for w in read_words(path):
        if w not in index:
            index[w] = len(index)
    return index


def encode(path, index):
    unk = index['<unk>']
    return torch.tensor([index.get(w, unk) for w in read_words(path)], dtype=torch.long)


def batchify(data, B):
    n = data.size(0) // B
    return data[: n * B].view(B, n).t().contiguous()  # [n, B]: lane b is tokens [b n, (b + 1) n)


def windows(source, bptt):
    for i in range(0, source.size(0) - 1, bptt):
        T = min(bptt, source.size(0) - 1 - i)
        yield source[i : i + T], source[i + 1 : i + 1 + T]


class RNNModel(nn.Module):
    def __init__(self, V, E, H, L, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, L, dropout=dropout if L > 1 else 0.0)
        self.decoder = nn.Linear(H, V)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        self.L, self.H = L, H

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)  # [T, B, H]
        return self.decoder(self.drop(out)), hidden  # [T, B, V]

    def zero_state(self, B):
        z = torch.zeros(self.L, B, self.H, device=self.decoder.weight.device)
        return (z, z.clone())


def epoch_lr(lr, factor, constant_epochs, epoch):
    """Zaremba's schedule: lr for the first constant_epochs epochs, then times factor per epoch (epoch from 0)."""
    return lr * factor ** max(epoch + 1 - constant_epochs, 0)


def train_step(model, opt, x, y, hidden, clip):
    """One TBPTT step: the carried state detached, mean cross-entropy, clipping at global norm clip, the
    update. Returns the loss and the state to carry."""
    hidden = tuple(h.detach() for h in hidden)
    opt.zero_grad()
    logits, hidden = model(x, hidden)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss, hidden


def evaluate(model, source, bptt):
    model.eval()
    total, count = 0.0, 0
    hidden = model.zero_state(source.size(1))
    with torch.no_grad():
        for x, y in windows(source, bptt):
            logits, hidden = model(x, hidden)
            total += F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), reduction='sum').item()
            count += y.numel()
    return total / count


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', required=True, help='folder with train.txt, valid.txt, test.txt')
    p.add_argument('--embed', type=int, default=200)
    p.add_argument('--hidden', type=int, default=200)
    p.add_argument('--layers', type=int, default=2)
    p.add_argument('--dropout', type=float, default=0.0)
    p.add_argument('--lr', type=float, default=1.0)
    p.add_argument('--clip', type=float, default=5.0)
    p.add_argument('--constant-epochs', type=int, default=4)
    p.add_argument('--factor', type=float, default=0.5)
    p.add_argument('--epochs', type=int, default=13)
    p.add_argument('--max-steps', type=int, default=0, help='stop after this many steps in all (0: every epoch)')
    p.add_argument('--batch', type=int, default=20)
    p.add_argument('--bptt', type=int, default=20)
    p.add_argument('--eval-batch', type=int, default=10)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=1337)
    p.add_argument('--log-seconds', type=float, default=30)
    p.add_argument('--eval-tokens', type=int, default=0,
                   help='evaluate on the first N tokens of valid.txt and test.txt only (0: all; for speed runs)')
    p.add_argument('--json', help='write the figures here')
    p.add_argument('--device', default='cpu', help="cpu, or cuda for the quality reference on a GPU (same model; "
                   "in float32 cuDNN's LSTM differs from the CPU one only in rounding)")
    p.add_argument('--tf32', action='store_true', help="on an Ampere or later GPU, let cuDNN (the LSTM) and cuBLAS "
                   "multiply in TensorFloat-32, 10-bit mantissas (PyTorch's default for cuDNN); without it float32 "
                   "throughout, as on the CPU and in Loom. No effect on the CPU")
    a = p.parse_args()
    # PyTorch lets cuDNN, and so nn.LSTM, use TF32 by default: the three reference runs before this flag did.
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t_start = time.perf_counter()

    index = build_vocab(os.path.join(a.data, 'train.txt'))
    train = batchify(encode(os.path.join(a.data, 'train.txt'), index), a.batch)
    cut = (lambda ids: ids[: a.eval_tokens]) if a.eval_tokens > 0 else (lambda ids: ids)
    valid = batchify(cut(encode(os.path.join(a.data, 'valid.txt'), index)), a.eval_batch)
    test = batchify(cut(encode(os.path.join(a.data, 'test.txt'), index)), a.eval_batch)
    V = len(index)
    train, valid, test = train.to(a.device), valid.to(a.device), test.to(a.device)
    t_data = time.perf_counter() - t_start
    print(f'vocabulary {V}; train {train.numel()} tokens in {a.batch} lanes; data ready in {t_data:.1f} s; '
          f'torch {torch.__version__}, {torch.get_num_threads()} thread(s)', flush=True)

    model = RNNModel(V, a.embed, a.hidden, a.layers, a.dropout).to(a.device)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    per_epoch = math.ceil((train.size(0) - 1) / a.bptt)
    total = a.epochs * per_epoch if a.max_steps == 0 else min(a.max_steps, a.epochs * per_epoch)
    step, tokens, train_seconds, last_log = 0, 0, 0.0, time.perf_counter()
    first = None  # (seconds, tokens) at the end of step 1: speed after it excludes the first step's warm-up
    history = []
    for epoch in range(a.epochs):
        if step >= total:
            break
        lr = epoch_lr(a.lr, a.factor, a.constant_epochs, epoch)
        for g in opt.param_groups:
            g['lr'] = lr
        model.train()
        hidden = model.zero_state(a.batch)
        t0 = time.perf_counter()
        for x, y in windows(train, a.bptt):
            if step >= total:
                break
            loss, hidden = train_step(model, opt, x, y, hidden, a.clip)
            step += 1
            tokens += y.numel()
            now = time.perf_counter()
            if step == 1:
                first = (train_seconds + now - t0, tokens)
            if now - last_log >= a.log_seconds or step == total:
                last_log = now
                elapsed = train_seconds + now - t0
                print(f'step {step}/{total} epoch {epoch + 1} | loss {loss.item():.3f} ppl {math.exp(loss.item()):.1f} | '
                      f'lr {lr:g} | {tokens / elapsed:.0f} tok/s', flush=True)
        train_seconds += time.perf_counter() - t0
        v = evaluate(model, valid, a.bptt)
        history.append({'epoch': epoch + 1, 'step': step, 'valid_loss': v, 'valid_ppl': math.exp(v)})
        print(f'epoch {epoch + 1} step {step}: valid loss {v:.4f} ppl {math.exp(v):.2f}', flush=True)
    t = evaluate(model, test, a.bptt)
    wall = time.perf_counter() - t_start
    out = {
        'system': 'pytorch', 'torch': torch.__version__, 'device': a.device, 'threads': torch.get_num_threads(), 'steps': step,
        'tokens': tokens, 'train_seconds': train_seconds, 'train_tokens_per_second': tokens / train_seconds,
        'steady_tokens_per_second': (tokens - first[1]) / (train_seconds - first[0]) if first and step > 1 else None,
        'valid_loss': history[-1]['valid_loss'], 'valid_ppl': history[-1]['valid_ppl'],
        'test_loss': t, 'test_ppl': math.exp(t), 'wall_seconds': wall, 'history': history, 'args': vars(a),
    }
    print(f'test loss {t:.4f} ppl {math.exp(t):.2f}; {step} steps, training {train_seconds:.1f} s '
          f'({tokens / train_seconds:.0f} tok/s), wall {wall:.1f} s', flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()
