// English → French translation on Tatoeba: corpus BLEU-4 of the encoder-decoder with and without
// (Bahdanau) attention on a held-out split, and attention heatmaps for a few test sentences.
//
//   pnpm eval:translation -- --epochs=8                     # writes docs/results/translation.{md,json} and translation-attention.svg
//   pnpm eval:translation -- --epochs=1 --maxpairs=2000 --out=/tmp/tr     # a quick look
//
// Data (as the PyTorch "seq2seq translation with attention" tutorial): Tatoeba's fra.txt, lower-cased,
// punctuation split off (tokens: letter runs with a trailing apostrophe kept, "j'ai" → "j'" "ai"; digit
// runs; single punctuation marks); pairs whose sides both have at most --maxwords words (punctuation not
// counted); with --prefixes, only English sentences starting "i am / i'm / he is / he's / she is /
// she's / you are / you're / we are / we're / they are / they're" (the tutorial's filter). The split is
// by English sentence (seeded shuffle of the distinct sources): a test or validation source never
// appears in training, and every French translation of it in the data is a reference (multi-reference
// BLEU). Vocabularies come from the training split (--mincount); rarer words become <unk>, which never
// matches a reference word. BLEU is computed on these tokens (tokenised BLEU).
//
// Training: Adam, batches of --batch pairs in a seeded random order, teacher forcing, gradients clipped
// to --clip; after each epoch greedy BLEU on the validation split; the epoch with the best validation
// BLEU is restored and scored on the test split (greedy; --beam=K adds beam search).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Adam, Generator, clipGradNorm, crossEntropy, noGrad, type Tensor } from '@loom/core';
import { readTsvPairs } from '@loom/data';
import {
  AttentionSeq2Seq, Seq2Seq, attentionHeatmapSvg, corpusBleu, padSequences,
  type BleuResult, type HeatmapPanel, type Seq2SeqConfig,
} from '@loom/models';
import { parseOptions } from './lib/cli.js';
import { ConfigError } from './lib/config.js';

const defaults = {
  data: '../shared/data/translation/tatoeba-eng-fra/fra.txt',
  maxwords: 10, // words per side at most (punctuation not counted)
  prefixes: true, // the tutorial's English-prefix filter
  maxpairs: 0, // keep only the first N filtered pairs (0: all); for quick looks
  test: 0.1, // fraction of the distinct English sentences held out for test
  valid: 0.05, // and for validation (epoch selection)
  splitseed: 1,
  mincount: 2, // vocabulary: words seen fewer times in training become <unk>
  models: 'plain,attention',
  cell: 'gru',
  embed: 256,
  hidden: 256,
  attention: 256, // A, the additive attention's scoring size
  layers: 1,
  dropout: 0.1,
  epochs: 8, // the committed results (docs/results/translation.md) used 8
  batch: 64,
  lr: 0.001,
  clip: 5,
  beam: 0, // > 0: also score beam search of this width on the test split
  maxlen: 20, // most tokens decoded per sentence
  heatmaps: 4, // test sentences drawn
  seed: 1, // model initialisation and batch order
  out: 'docs/results/translation', // writes <out>.md, <out>.json, <out>-attention.svg
};
type Config = typeof defaults;

function parseArgs(argv: string[]): Config {
  return parseOptions('eval-translation', defaults, argv, {
    min: 0,
    validate: (c, check) => {
      check.int(1, 'maxwords', 'embed', 'hidden', 'attention', 'layers', 'epochs', 'batch', 'maxlen', 'mincount');
      if (!(c.test > 0 && c.valid > 0 && c.test + c.valid < 1)) {
        throw new ConfigError(`eval-translation: --test and --valid must be positive with a sum below 1, got ${c.test} and ${c.valid}`);
      }
      check.oneOf('cell', ['gru', 'lstm', 'rnn_tanh']);
      if (!c.models.split(',').every((m) => m === 'plain' || m === 'attention')) check.fail('models', 'a list of plain and/or attention');
    },
  });
}

// ---- data -------------------------------------------------------------------------------------------

const TOKEN = /[\p{L}\p{M}]+'?|\p{N}+|[^\s\p{L}\p{M}\p{N}]/gu;
const PREFIXES = ["i am ", "i'm ", 'he is ', "he's ", 'she is ', "she's ", 'you are ', "you're ", 'we are ', "we're ", 'they are ', "they're "];

function normalise(s: string): string {
  return s.normalize('NFC').toLowerCase().replace(/[\u2019\u2018]/g, "'").replace(/[\u00a0\u202f]/g, ' ').trim();
}
function tokenise(s: string): string[] {
  return normalise(s).match(TOKEN) ?? [];
}
const wordCount = (tokens: readonly string[]): number => tokens.filter((t) => /[\p{L}\p{N}]/u.test(t)).length;

interface Example { src: string[]; refs: string[][] } // one English sentence, all its French translations

function loadData(c: Config): { train: [string[], string[]][]; valid: Example[]; test: Example[]; pairs: number; read: number } {
  const raw = readTsvPairs(c.data);
  const bySource = new Map<string, string[][]>();
  let pairs = 0;
  for (const p of raw) {
    const en = tokenise(p.source), fr = tokenise(p.target);
    if (wordCount(en) > c.maxwords || wordCount(fr) > c.maxwords || en.length === 0 || fr.length === 0) continue;
    if (c.prefixes && !PREFIXES.some((x) => `${normalise(p.source)} `.startsWith(x))) continue;
    const key = en.join(' ');
    if (!bySource.has(key)) bySource.set(key, []);
    bySource.get(key)!.push(fr);
    if (++pairs === c.maxpairs) break;
  }
  const sources = [...bySource.keys()];
  const g = new Generator(c.splitseed);
  for (let i = sources.length - 1; i > 0; i--) {
    const j = g.int(i + 1);
    [sources[i], sources[j]] = [sources[j], sources[i]];
  }
  const nTest = Math.round(sources.length * c.test), nValid = Math.round(sources.length * c.valid);
  const ex = (s: string): Example => ({ src: s.split(' '), refs: bySource.get(s)! });
  const test = sources.slice(0, nTest).map(ex);
  const valid = sources.slice(nTest, nTest + nValid).map(ex);
  const train: [string[], string[]][] = [];
  for (const s of sources.slice(nTest + nValid)) for (const fr of bySource.get(s)!) train.push([s.split(' '), fr]);
  return { train, valid, test, pairs, read: raw.length };
}

const PAD = 0, BOS = 1, EOS = 2, UNK = 3;
const SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>'];

class Vocab {
  readonly tokens: string[];
  private readonly index: Map<string, number>;
  constructor(sentences: readonly (readonly string[])[], minCount: number) {
    const counts = new Map<string, number>();
    for (const s of sentences) for (const t of s) counts.set(t, (counts.get(t) ?? 0) + 1);
    const kept = [...counts].filter(([, n]) => n >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([t]) => t);
    this.tokens = [...SPECIALS, ...kept];
    this.index = new Map(this.tokens.map((t, i) => [t, i]));
  }
  get size(): number { return this.tokens.length; }
  encode(s: readonly string[]): number[] { return s.map((t) => this.index.get(t) ?? UNK); }
  decode(ids: readonly number[]): string[] { return ids.map((i) => this.tokens[i]); }
}

// ---- training and evaluation ------------------------------------------------------------------------

type Model = Seq2Seq | AttentionSeq2Seq;

interface EpochLog { epoch: number; trainLoss: number; validLoss: number; validBleu: number; seconds: number }

function translate(model: Model, srcIds: number[][], maxLen: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < srcIds.length; i += 256) {
    const { ids, lengths } = padSequences(srcIds.slice(i, i + 256), PAD);
    out.push(...model.greedyDecode(ids, { srcLengths: lengths, maxLen }));
  }
  return out;
}

function bleuOf(model: Model, data: Example[], sv: Vocab, tv: Vocab, maxLen: number): { bleu: BleuResult; hyps: string[][] } {
  const hyps = translate(model, data.map((e) => sv.encode(e.src)), maxLen).map((ids) => tv.decode(ids));
  return { bleu: corpusBleu(hyps, data.map((e) => e.refs)), hyps };
}

/** Mean cross-entropy per target token (teacher forcing), over every (source, reference) pair. */
function meanLoss(model: Model, pairs: [number[], number[]][], batch: number): number {
  model.eval();
  let total = 0, count = 0;
  noGrad(() => {
    for (let i = 0; i < pairs.length; i += batch) {
      const chunk = pairs.slice(i, i + batch);
      const { ids, lengths } = padSequences(chunk.map((p) => p[0]), PAD);
      const tgt = model.targets(chunk.map((p) => p[1]));
      const tokens = chunk.reduce((n, p) => n + p[1].length + 1, 0);
      total += crossEntropy(model.forward(ids, tgt, { srcLengths: lengths }), tgt, { ignoreIndex: PAD, reduction: 'sum' }).item();
      count += tokens;
    }
  });
  model.train();
  return total / count;
}

function snapshot(model: Model): Float32Array[] {
  return model.parameters().map((p) => Float32Array.from(p.data));
}
function restore(model: Model, values: Float32Array[]): void {
  model.parameters().forEach((p, i) => (p.data as Float32Array).set(values[i]));
}

function trainModel(kind: 'plain' | 'attention', c: Config, train: [number[], number[]][], valid: Example[], validPairs: [number[], number[]][], sv: Vocab, tv: Vocab) {
  const config: Seq2SeqConfig & { attentionSize?: number } = {
    srcVocabSize: sv.size, tgtVocabSize: tv.size, embedSize: c.embed, hiddenSize: c.hidden, cell: c.cell as Seq2SeqConfig['cell'],
    numLayers: c.layers, dropout: c.dropout, bos: BOS, eos: EOS, pad: PAD, seed: c.seed,
  };
  const model: Model = kind === 'attention' ? new AttentionSeq2Seq({ ...config, attentionSize: c.attention }) : new Seq2Seq(config);
  const opt = new Adam(model, { lr: c.lr });
  const order = new Generator(c.seed + 1000);
  const log: EpochLog[] = [];
  let best = { bleu: -1, epoch: 0, values: snapshot(model) };
  const t0 = Date.now();
  console.error(`[${kind}] ${model.numParameters().toLocaleString('en')} parameters`);
  for (let epoch = 1; epoch <= c.epochs; epoch++) {
    const te = Date.now();
    const idx = Array.from({ length: train.length }, (_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = order.int(i + 1);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    let sum = 0, n = 0;
    for (let b = 0; b < idx.length; b += c.batch) {
      const chunk = idx.slice(b, b + c.batch).map((i) => train[i]);
      const { ids, lengths } = padSequences(chunk.map((p) => p[0]), PAD);
      const loss: Tensor = model.loss(ids, model.targets(chunk.map((p) => p[1])), { srcLengths: lengths });
      opt.zeroGrad();
      loss.backward();
      clipGradNorm(model, c.clip);
      opt.step();
      sum += loss.item();
      n++;
      if (n % 50 === 0) console.error(`[${kind}] epoch ${epoch} batch ${n}/${Math.ceil(idx.length / c.batch)} loss ${(sum / n).toFixed(3)} (${((Date.now() - te) / 1000).toFixed(0)} s)`);
    }
    const validLoss = meanLoss(model, validPairs, 256);
    const validBleu = bleuOf(model, valid, sv, tv, c.maxlen).bleu.bleu;
    const seconds = (Date.now() - te) / 1000;
    log.push({ epoch, trainLoss: sum / n, validLoss, validBleu, seconds });
    console.error(`[${kind}] epoch ${epoch}: train loss ${(sum / n).toFixed(3)}, valid loss ${validLoss.toFixed(3)} (ppl ${Math.exp(validLoss).toFixed(1)}), valid BLEU ${(100 * validBleu).toFixed(2)}, ${seconds.toFixed(0)} s`);
    if (validBleu > best.bleu) best = { bleu: validBleu, epoch, values: snapshot(model) };
  }
  restore(model, best.values);
  model.eval();
  return { model, log, bestEpoch: best.epoch, trainSeconds: (Date.now() - t0) / 1000 };
}

// ---- main -------------------------------------------------------------------------------------------

function main(): void {
  const argv = process.argv.slice(2);
  const c = parseArgs(argv);
  const command = ['pnpm eval:translation', ...(argv.filter((a) => a !== '--').length ? ['--', ...argv.filter((a) => a !== '--')] : [])].join(' ');
  console.error(`config: ${JSON.stringify(c)}`);
  const { train: trainText, valid, test, pairs, read } = loadData(c);
  const sv = new Vocab(trainText.map((p) => p[0]), c.mincount), tv = new Vocab(trainText.map((p) => p[1]), c.mincount);
  const train = trainText.map(([s, t]): [number[], number[]] => [sv.encode(s), tv.encode(t)]);
  const validPairs = valid.flatMap((e) => e.refs.map((r): [number[], number[]] => [sv.encode(e.src), tv.encode(r)]));
  const testPairs = test.flatMap((e) => e.refs.map((r): [number[], number[]] => [sv.encode(e.src), tv.encode(r)]));
  const dataInfo = {
    file: c.data, pairsRead: read, pairsKept: pairs, trainPairs: train.length,
    validSentences: valid.length, validPairs: validPairs.length, testSentences: test.length, testPairs: testPairs.length,
    srcVocab: sv.size, tgtVocab: tv.size,
  };
  console.error(`data: ${JSON.stringify(dataInfo)}`);

  const kinds = c.models.split(',') as ('plain' | 'attention')[];
  const results: Record<string, unknown> = {};
  const outputs: Record<string, string[][]> = {};
  let heatmapPanels: HeatmapPanel[] = [];
  for (const kind of kinds) {
    const r = trainModel(kind, c, train, valid, validPairs, sv, tv);
    const tg = Date.now();
    const greedy = bleuOf(r.model, test, sv, tv, c.maxlen);
    const greedySeconds = (Date.now() - tg) / 1000;
    outputs[kind] = greedy.hyps;
    const testLoss = meanLoss(r.model, testPairs, 256);
    r.model.eval();
    const exact = greedy.hyps.filter((h, i) => test[i].refs.some((ref) => ref.join(' ') === h.join(' '))).length / test.length;
    let beam: BleuResult | null = null;
    if (c.beam > 0) {
      const hyps = test.map((e) => tv.decode(r.model.beamSearch(sv.encode(e.src), { beamWidth: c.beam, maxLen: c.maxlen })[0].tokens));
      beam = corpusBleu(hyps, test.map((e) => e.refs));
    }
    results[kind] = {
      parameters: r.model.numParameters(), bestEpoch: r.bestEpoch, trainSeconds: r.trainSeconds, epochs: r.log,
      test: { greedy: greedy.bleu, beam, loss: testLoss, perplexity: Math.exp(testLoss), exactMatch: exact, decodeSeconds: greedySeconds },
    };
    console.error(`[${kind}] test BLEU ${(100 * greedy.bleu.bleu).toFixed(2)} (greedy)${beam ? `, ${(100 * beam.bleu).toFixed(2)} (beam ${c.beam})` : ''}, ppl ${Math.exp(testLoss).toFixed(2)}, exact ${(100 * exact).toFixed(1)} %`);
    if (kind === 'attention' && c.heatmaps > 0) {
      const model = r.model as AttentionSeq2Seq;
      // The first test sentences (in the seeded order) with at least 5 tokens: long enough to show an alignment.
      const picks = test.filter((e) => e.src.length >= 5).slice(0, c.heatmaps);
      const { ids, lengths } = padSequences(picks.map((e) => sv.encode(e.src)), PAD);
      const d = model.greedyDecodeWithAttention(ids, { srcLengths: lengths, maxLen: c.maxlen });
      heatmapPanels = picks.map((e, i) => {
        const out = tv.decode(d.tokens[i]);
        if (d.attention[i].length > out.length) out.push('<eos>');
        return { title: `${e.src.join(' ')} → ${tv.decode(d.tokens[i]).join(' ')}`, source: sv.decode(sv.encode(e.src)), output: out, weights: d.attention[i] };
      });
    }
  }

  const samples = test.slice(0, 12).map((e, i) => ({
    source: e.src.join(' '), references: e.refs.map((r) => r.join(' ')),
    ...Object.fromEntries(kinds.map((k) => [k, outputs[k][i].join(' ')])),
  }));
  const json = { command, config: c, data: dataInfo, models: results, samples };
  fs.mkdirSync(path.dirname(c.out), { recursive: true });
  fs.writeFileSync(`${c.out}.json`, `${JSON.stringify(json, null, 1)}\n`);
  const svgFile = `${c.out}-attention.svg`;
  if (heatmapPanels.length) fs.writeFileSync(svgFile, attentionHeatmapSvg(heatmapPanels));
  fs.writeFileSync(`${c.out}.md`, markdown(json, heatmapPanels.length ? path.basename(svgFile) : null));
  console.error(`wrote ${c.out}.md, ${c.out}.json${heatmapPanels.length ? `, ${svgFile}` : ''}`);
}

function markdown(j: { command: string; config: Config; data: Record<string, unknown>; models: Record<string, unknown>; samples: Record<string, unknown>[] }, svg: string | null): string {
  const c = j.config, d = j.data as Record<string, number | string>;
  const pct = (x: number): string => (100 * x).toFixed(2);
  const lines = [
    '# English → French translation (Tatoeba): encoder-decoder with and without attention',
    '',
    'Produced by:',
    '',
    '```',
    j.command,
    '```',
    '',
    `Data: \`${d.file}\`, ${d.pairsRead} pairs read, ${d.pairsKept} kept (both sides ≤ ${c.maxwords} words${c.prefixes ? ', English starting with the PyTorch tutorial\'s prefixes' : ''}); ` +
      `split by English sentence (seed ${c.splitseed}): ${d.trainPairs} training pairs, ${d.validSentences} validation sentences (${d.validPairs} pairs), ` +
      `${d.testSentences} test sentences (${d.testPairs} pairs; every translation of a test sentence is a reference). ` +
      `Vocabularies from the training split, min count ${c.mincount}: English ${d.srcVocab}, French ${d.tgtVocab} (4 specials included).`,
    '',
    `Models: ${c.cell.toUpperCase()}, embedding ${c.embed}, hidden ${c.hidden}, ${c.layers} layer(s), dropout ${c.dropout}; attention: bidirectional encoder, additive attention of size ${c.attention}. ` +
      `Adam lr ${c.lr}, batch ${c.batch}, clip ${c.clip}, ${c.epochs} epochs, teacher forcing; the epoch with the best validation BLEU is scored on test. Seed ${c.seed}.`,
    '',
    `| model | parameters | best epoch | test BLEU-4 (greedy) | p1 / p2 / p3 / p4 | BP | ${c.beam > 0 ? `BLEU (beam ${c.beam}) | ` : ''}test perplexity | exact match | training time |`,
    `|---|---:|---:|---:|---|---:|${c.beam > 0 ? '---:|' : ''}---:|---:|---:|`,
  ];
  for (const [kind, rAny] of Object.entries(j.models)) {
    const r = rAny as { parameters: number; bestEpoch: number; trainSeconds: number; test: { greedy: BleuResult; beam: BleuResult | null; perplexity: number; exactMatch: number } };
    const g = r.test.greedy;
    lines.push(`| ${kind === 'plain' ? 'no attention' : 'attention'} | ${r.parameters.toLocaleString('en')} | ${r.bestEpoch} | **${pct(g.bleu)}** | ${g.precisions.map((p) => pct(p)).join(' / ')} | ${g.brevityPenalty.toFixed(3)} | ` +
      `${c.beam > 0 ? `${pct(r.test.beam!.bleu)} | ` : ''}${r.test.perplexity.toFixed(2)} | ${(100 * r.test.exactMatch).toFixed(1)} % | ${(r.trainSeconds / 60).toFixed(1)} min |`);
  }
  lines.push('', 'BLEU: corpus BLEU-4 with brevity penalty, no smoothing, on the tokens above (`corpusBleu` in @loom/models), × 100. Exact match: the output equals one of the references.', '');
  lines.push('Per epoch (validation BLEU is greedy, on the validation sentences):', '', '| model | epoch | train loss | valid loss | valid BLEU | seconds |', '|---|---:|---:|---:|---:|---:|');
  for (const [kind, rAny] of Object.entries(j.models)) {
    for (const e of (rAny as { epochs: EpochLog[] }).epochs) lines.push(`| ${kind} | ${e.epoch} | ${e.trainLoss.toFixed(3)} | ${e.validLoss.toFixed(3)} | ${pct(e.validBleu)} | ${e.seconds.toFixed(0)} |`);
  }
  lines.push('', 'Test sentences (the first 12 in the split\'s order):', '', `| English | reference(s) | ${Object.keys(j.models).join(' | ')} |`, `|---|---|${Object.keys(j.models).map(() => '---').join('|')}|`);
  const cellText = (s: string): string => s.replace(/\|/g, '\\|');
  for (const s of j.samples) {
    lines.push(`| ${cellText(s.source as string)} | ${(s.references as string[]).map(cellText).join(' / ')} | ${Object.keys(j.models).map((k) => cellText(s[k] as string)).join(' | ')} |`);
  }
  if (svg) lines.push('', `Attention weights of the attention model (greedy decoding; rows: output words, columns: source words):`, '', `![attention heatmaps](${svg})`);
  lines.push('');
  return lines.join('\n');
}

main();
