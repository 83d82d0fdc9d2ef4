#!/usr/bin/python3
"""Continues a Loom run in PyTorch from one of its checkpoints, and compares: the check that Loom's training
step and evaluation are PyTorch's, on the real run rather than on a toy.

    npx tsx scripts/export-checkpoint.ts --checkpoint=runs/wt2-13ep-.../checkpoints/ckpt-00005000.loom --out=/tmp/exp
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 reference/lm_continue.py \
        --export /tmp/exp --run runs/wt2-13ep-... --data ../shared/data/wikitext-2 --to-step 5222 --evaluate

It loads the checkpoint's parameters and carried hidden state into reference/word_lm.py's model, encodes the
training file with the run's own vocabulary (vocab.txt: Loom's ids, so the rows of the embedding and the
decoder need no mapping), and trains from the checkpoint's window to --to-step with the run's recipe (SGD at
the epoch's learning rate, clipping at 5), printing each step's loss beside the loss the run recorded for it
(metrics.jsonl). Both are float32; they agree to rounding at first and drift apart slowly, as any two float32
implementations do. With --evaluate, PyTorch's validation perplexity at --to-step is printed beside the run's
(the run evaluates at each epoch's end, so --to-step should be one: 5222 for WikiText-2's first epoch).
"""
import argparse
import json
import math
import os
import sys

import numpy
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from word_lm import RNNModel, batchify, epoch_lr, evaluate, read_words, train_step, windows  # noqa: E402


def load_f32(folder, entry):
    return torch.from_numpy(numpy.fromfile(os.path.join(folder, entry['file']), dtype='<f4').copy()).view(*entry['shape'])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--export', required=True, help='the folder scripts/export-checkpoint.ts wrote')
    p.add_argument('--run', required=True, help="the run folder (its vocab.txt, config.json and metrics.jsonl)")
    p.add_argument('--data', required=True, help='folder with train.txt and valid.txt')
    p.add_argument('--to-step', type=int, required=True, help='train until this step (within the checkpoint\'s epoch)')
    p.add_argument('--evaluate', action='store_true', help='then evaluate on valid.txt and compare with the run')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', help='write the per-step comparison here')
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    index_json = json.load(open(os.path.join(a.export, 'index.json')))
    config = json.load(open(os.path.join(a.run, 'config.json')))
    words = [line.split('\t')[0] for line in open(os.path.join(a.run, 'vocab.txt'), encoding='utf8').read().split('\n') if line]
    vocab = {w: i for i, w in enumerate(words)}
    unk = vocab['<unk>']
    encode = lambda path: torch.tensor([vocab.get(w, unk) for w in read_words(path)], dtype=torch.long)  # noqa: E731

    m, t, o, s = config['model'], config['train'], config['optim'], config['schedule']
    V, B, T = len(words), t['batchSize'], t['bptt']
    model = RNNModel(V, m['embedSize'], m['hiddenSize'], m['numLayers'], m['dropout'])
    state = {('encoder.weight' if k == 'embedding.weight' else k): load_f32(a.export, e) for k, e in index_json['params'].items()}
    model.load_state_dict(state)
    groups = index_json['hidden']
    h = torch.cat([load_f32(a.export, g['h']) for g in groups], dim=1)  # [L, B, H], lanes in order
    c = torch.cat([load_f32(a.export, g['c']) for g in groups], dim=1)
    hidden = (h, c)

    epoch, window, step = index_json['epoch'], index_json['window'], index_json['step']
    lr = epoch_lr(o['lr'], s['factor'], s['constantEpochs'], epoch)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    train = batchify(encode(os.path.join(a.data, config['data']['train'])), B)

    metrics = [json.loads(line) for line in open(os.path.join(a.run, 'metrics.jsonl')) if line.strip()]
    recorded = {r['step']: r['loss'] for r in metrics if r.get('type') == 'step'}
    valid_recorded = {r['step']: r['ppl'] for r in metrics if r.get('type') == 'eval' and r.get('split') == 'valid'}

    rows = []
    model.train()
    for i, (x, y) in enumerate(windows(train, T)):
        if i < window:
            continue
        if step >= a.to_step:
            break
        loss, hidden = train_step(model, opt, x, y, hidden, o['clip'])
        step += 1
        mine, theirs = loss.item(), recorded.get(step)
        rows.append({'step': step, 'pytorch': mine, 'loom': theirs, 'relative': None if theirs is None else theirs / mine - 1})
        if step % 10 == 0 or step == a.to_step or len(rows) <= 5:
            rel = '' if theirs is None else f'  relative {theirs / mine - 1:+.2e}'
            print(f'step {step}: PyTorch loss {mine:.6f}, Loom {theirs if theirs is not None else "-"}{rel}', flush=True)
    rels = [abs(r['relative']) for r in rows if r['relative'] is not None]
    if rels:
        print(f'{len(rels)} steps compared: |relative difference| mean {sum(rels) / len(rels):.2e}, max {max(rels):.2e}')
    out = {'from_step': index_json['step'], 'to_step': step, 'rows': rows}
    if a.evaluate:
        valid = batchify(encode(os.path.join(a.data, config['data']['valid'])), t['evalBatchSize'])
        v = evaluate(model, valid, T)
        theirs = valid_recorded.get(step)
        print(f'validation after step {step}: PyTorch ppl {math.exp(v):.2f}, Loom {theirs if theirs is not None else "-"}'
              + ('' if theirs is None else f' (relative {theirs / math.exp(v) - 1:+.2e})'))
        out['valid'] = {'pytorch_ppl': math.exp(v), 'loom_ppl': theirs}
    if a.json:
        json.dump(out, open(a.json, 'w'), indent=2)


if __name__ == '__main__':
    main()
