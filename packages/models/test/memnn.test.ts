// MemN2N: float64 gradient checks of every variant, the forward pass against a scalar re-implementation
// of the paper's equations, batching (truncation, time rows, noise, padding), the vocabulary, the
// training loop, and a learning check on generated single-supporting-fact stories.
import { describe, expect, it } from 'vitest';
import { Generator, LoomError, ShapeError, noGrad } from '@loom/core';
import {
  MemN2N, buildBabiVocabulary, encodeBabi, epochBatches, evaluateMemN2N, makeBatch, positionEncoding, sentenceSize,
  tokenizeBabi, trainMemN2N, type MemN2NConfig, type MemN2NExample,
} from '../src/index.js';
import { gradcheckModule } from './models-testkit.js';

// ---- a scalar reference: the paper's equations, one example at a time, from the model's weights ----
function referenceLogits(model: MemN2N, ex: MemN2NExample): number[] {
  const { embedSize: d, hops: K, memorySize, tying, encoding, sentenceSize: Jcfg, temporal, vocabSize: V } = model.config;
  const E = model.embeddings.map((p) => Array.from(p.toArray()));
  const T = model.temporal.map((p) => Array.from(p.toArray()));
  const H = model.hidden ? Array.from(model.hidden.toArray()) : null;
  const l = encoding === 'position' ? positionEncoding(Jcfg, d) : null;
  const enc = (table: number[], words: readonly number[]): number[] => {
    const v = new Array<number>(d).fill(0);
    words.forEach((w, j) => {
      if (w === 0) return; // nil
      for (let k = 0; k < d; k++) v[k] += table[w * d + k] * (l ? l[j * d + k] : 1);
    });
    return v;
  };
  const story = ex.story.slice(Math.max(0, ex.story.length - memorySize));
  const n = story.length;
  const [qB, A, C, W] = tying === 'adjacent'
    ? [0, (k: number) => k, (k: number) => k + 1, K]
    : [2, () => 0, () => 1, 3];
  let u = enc(E[qB], ex.query);
  for (let k = 0; k < K; k++) {
    const ai = A(k), ci = C(k);
    const mem = story.map((s, i) => {
      const m = enc(E[ai], s), c = enc(E[ci], s);
      if (temporal) for (let x = 0; x < d; x++) { m[x] += T[ai][(n - 1 - i) * d + x]; c[x] += T[ci][(n - 1 - i) * d + x]; }
      return { m, c };
    });
    const scores = mem.map(({ m }) => m.reduce((s, v, x) => s + v * u[x], 0));
    let p = scores;
    if (!model.linearStart) {
      // 'attend': the memorySize − n empty slots are zero memories with score 0 inside the softmax.
      const free = model.config.emptyMemories === 'attend' ? memorySize - n : 0;
      const mx = Math.max(...scores, free > 0 ? 0 : -Infinity);
      const e = scores.map((s) => Math.exp(s - mx));
      const z = e.reduce((a, b) => a + b, 0) + free * Math.exp(-mx);
      p = e.map((x) => x / z);
    }
    const o = new Array<number>(d).fill(0);
    mem.forEach(({ c }, i) => { for (let x = 0; x < d; x++) o[x] += p[i] * c[x]; });
    const base = H ? Array.from({ length: d }, (_, r) => u.reduce((s, v, x) => s + H[r * d + x] * v, 0)) : u;
    u = base.map((v, x) => v + o[x]);
  }
  return Array.from({ length: V }, (_, v) => (v === 0 ? 0 : u.reduce((s, x, k) => s + E[W][v * d + k] * x, 0)));
}

function randomExamples(g: Generator, count: number, V: number, opts: { maxStory?: number; maxWords?: number; minStory?: number } = {}): MemN2NExample[] {
  const maxStory = opts.maxStory ?? 5, maxWords = opts.maxWords ?? 4, minStory = opts.minStory ?? 1;
  const sentence = (): number[] => Array.from({ length: 1 + g.int(maxWords) }, () => 1 + g.int(V - 1));
  return Array.from({ length: count }, () => ({
    story: Array.from({ length: minStory + g.int(maxStory - minStory + 1) }, sentence),
    query: sentence(),
    answer: 1 + g.int(V - 1),
  }));
}

const VARIANTS: [string, Partial<MemN2NConfig>][] = [
  ['adjacent, position encoding, temporal', { tying: 'adjacent', encoding: 'position', temporal: true }],
  ['adjacent, bag of words, no temporal', { tying: 'adjacent', encoding: 'bow', temporal: false }],
  ['layer-wise, position encoding, temporal', { tying: 'layerwise', encoding: 'position', temporal: true }],
  ['layer-wise, bag of words, 1 hop', { tying: 'layerwise', encoding: 'bow', temporal: true, hops: 1 }],
  ['adjacent, position encoding, empty memories ignored', { emptyMemories: 'ignore' }],
];

describe('MemN2N forward', () => {
  for (const [name, variant] of VARIANTS) {
    for (const linear of [false, true]) {
      it(`matches the scalar equations (${name}${linear ? ', linear start' : ''})`, () => {
        const g = new Generator(3);
        const model = new MemN2N({ vocabSize: 9, embedSize: 5, hops: 2, memorySize: 4, sentenceSize: 4, seed: 7, dtype: 'float64', ...variant });
        model.linearStart = linear;
        // Stories longer than the memory (truncated to the last 4) and of mixed lengths (padded).
        const examples = randomExamples(g, 6, 9, { maxStory: 7 });
        const logits = noGrad(() => model.forward(makeBatch(examples, { memorySize: 4 }))).toArray();
        examples.forEach((ex, b) => {
          const want = referenceLogits(model, ex);
          want.forEach((w, v) => expect(logits[b * 9 + v]).toBeCloseTo(w, 10));
        });
      });
    }
  }

  for (const emptyMemories of ['attend', 'ignore'] as const) it(`gives padding memories no attention and ignores what padding slots hold (empty memories: ${emptyMemories})`, () => {
    const g = new Generator(5);
    const model = new MemN2N({ vocabSize: 12, embedSize: 6, hops: 3, memorySize: 10, sentenceSize: 5, seed: 1, emptyMemories });
    const short = randomExamples(g, 1, 12, { minStory: 2, maxStory: 2 })[0];
    const long = randomExamples(g, 1, 12, { minStory: 8, maxStory: 8, maxWords: 5 })[0];
    const alone = makeBatch([short], { memorySize: 10 });
    const batch = makeBatch([short, long], { memorySize: 10 });
    expect(batch.M).toBe(8);
    const { logits, attention } = noGrad(() => model.run(batch));
    const one = noGrad(() => model.forward(alone)).toArray();
    const V = 12;
    one.forEach((x, v) => expect(logits.toArray()[v]).toBeCloseTo(x, 5));
    for (const p of attention) {
      const a = Array.from(p.toArray());
      for (let m = 2; m < 8; m++) expect(a[m]).toBe(0); // entry 0's padding slots
      // 'attend': 8 empty slots of score 0 take their share; the long story's 2 empty slots too.
      const shown = a.slice(0, 2).reduce((s, x) => s + x, 0), shownLong = a.slice(8, 16).reduce((s, x) => s + x, 0);
      if (emptyMemories === 'ignore') {
        expect(shown).toBeCloseTo(1, 6);
        expect(shownLong).toBeCloseTo(1, 6);
      } else {
        expect(shown).toBeLessThan(1);
        expect(shownLong).toBeLessThan(1);
      }
    }
    // Words written into padding slots change nothing.
    const stories = batch.stories.data as Int32Array;
    for (let i = 2 * batch.J; i < 8 * batch.J; i++) stories[i] = 1 + (i % (V - 1));
    const again = noGrad(() => model.forward(batch)).toArray();
    one.forEach((x, v) => expect(again[v]).toBeCloseTo(x, 5));
  });

  it('answers an empty story from the question alone', () => {
    const model = new MemN2N({ vocabSize: 6, embedSize: 4, memorySize: 5, sentenceSize: 3, dtype: 'float64' });
    const logits = noGrad(() => model.forward(makeBatch([{ story: [], query: [1, 2], answer: 3 }]))).toArray();
    expect(logits.every(Number.isFinite)).toBe(true);
  });

  it('keeps the nil word at zero: nil padding inside a sentence changes nothing', () => {
    const model = new MemN2N({ vocabSize: 8, embedSize: 4, memorySize: 5, sentenceSize: 6, encoding: 'bow', dtype: 'float64' });
    const a = { story: [[1, 2], [3]], query: [4], answer: 5 };
    const b = { story: [[1, 2, 0, 0], [3, 0]], query: [4, 0, 0], answer: 5 };
    const la = noGrad(() => model.forward(makeBatch([a]))).toArray();
    const lb = noGrad(() => model.forward(makeBatch([b]))).toArray();
    la.forEach((x, i) => expect(lb[i]).toBeCloseTo(x, 12));
  });

  it('ties weights as the paper says', () => {
    const adj = new MemN2N({ vocabSize: 10, embedSize: 4, hops: 3, memorySize: 6, sentenceSize: 3 });
    expect(adj.namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`)).toEqual([
      'embeddings.0 10x4', 'embeddings.1 10x4', 'embeddings.2 10x4', 'embeddings.3 10x4',
      'temporal.0 6x4', 'temporal.1 6x4', 'temporal.2 6x4', 'temporal.3 6x4',
    ]);
    const lw = new MemN2N({ vocabSize: 10, embedSize: 4, hops: 3, memorySize: 6, sentenceSize: 3, tying: 'layerwise', temporal: false });
    expect(lw.namedParameters().map(([n]) => n)).toEqual(['embeddings.0', 'embeddings.1', 'embeddings.2', 'embeddings.3', 'hidden']);
  });

  it('position encoding follows the official code', () => {
    // J = 2, d = 2: 1 + 4 (k − 1.5)(j − 1.5) / 4.
    expect(Array.from(positionEncoding(2, 2))).toEqual([1.25, 0.75, 0.75, 1.25]);
    const l = positionEncoding(6, 20);
    expect(l[0]).toBeCloseTo(1 + (4 * -9.5 * -2.5) / 120, 12);
  });

  it('names the config key or batch field at fault', () => {
    expect(() => new MemN2N({ vocabSize: 10, sentenceSize: 0 })).toThrow(/config\.sentenceSize must be a positive integer/);
    expect(() => new MemN2N({ vocabSize: 10, sentenceSize: 3, tying: 'x' as 'adjacent' })).toThrow(/config\.tying/);
    expect(() => new MemN2N({ vocabSize: 1, sentenceSize: 3 })).toThrow(/config\.vocabSize/);
    expect(() => new MemN2N({ vocabSize: 4, sentenceSize: 3, emptyMemories: 'none' as 'ignore' })).toThrow(/config\.emptyMemories must be 'attend' or 'ignore'/);
    const model = new MemN2N({ vocabSize: 5, sentenceSize: 2, memorySize: 3 });
    expect(() => model.forward(makeBatch([{ story: [[1, 2, 3]], query: [1], answer: 1 }]))).toThrow(ShapeError);
    expect(() => model.forward(makeBatch([{ story: [[7]], query: [1], answer: 1 }]))).toThrow(/batch\.stories holds id 7/);
    expect(() => model.forward(makeBatch([{ story: [[1]], query: [1], answer: 1 }], { memorySize: 3 }))).not.toThrow();
    expect(() => new MemN2N({ vocabSize: 5, sentenceSize: 2, memorySize: 2 }).forward(makeBatch([{ story: [[1], [1], [1]], query: [1], answer: 1 }], { memorySize: 3 })))
      .toThrow(/3 memory slots, more than config\.memorySize = 2/);
  });
});

describe('MemN2N gradients (float64)', () => {
  for (const [name, variant] of VARIANTS) {
    for (const linear of [false, true]) {
      it(`${name}${linear ? ', linear start' : ''}`, () => {
        const g = new Generator(11);
        const model = new MemN2N({ vocabSize: 8, embedSize: 4, hops: 2, memorySize: 5, sentenceSize: 4, seed: 2, dtype: 'float64', ...variant });
        model.linearStart = linear;
        const batch = makeBatch(randomExamples(g, 3, 8, { maxStory: 6 }), { memorySize: 5 });
        const checked = gradcheckModule(model, () => model.loss(batch, 'mean'), { rtol: 1e-5, atol: 1e-8 });
        expect(checked).toBe(model.numParameters());
      });
    }
  }

  it('the nil row gets no gradient', () => {
    const model = new MemN2N({ vocabSize: 8, embedSize: 4, memorySize: 5, sentenceSize: 4, dtype: 'float64' });
    model.loss(makeBatch(randomExamples(new Generator(1), 4, 8), { memorySize: 5 })).backward();
    for (const p of model.embeddings) expect(Array.from(p.grad!.toArray().slice(0, 4))).toEqual([0, 0, 0, 0]);
  });
});

describe('makeBatch', () => {
  const ex = (n: number, answer = 1): MemN2NExample => ({ story: Array.from({ length: n }, (_, i) => [1 + i, 1]), query: [2, 3, 4], answer });

  it('keeps the most recent statements, numbers time from the latest, and pads', () => {
    const b = makeBatch([ex(7), ex(2)], { memorySize: 4 });
    expect([b.B, b.M, b.J, b.Q]).toEqual([2, 4, 2, 3]);
    expect(Array.from(b.stories.toArray().slice(0, 8))).toEqual([4, 1, 5, 1, 6, 1, 7, 1]); // statements 4..7
    expect(Array.from(b.times.toArray())).toEqual([3, 2, 1, 0, 1, 0, 0, 0]);
    expect(Array.from(b.padding.toArray())).toEqual([0, 0, 0, 0, 0, 0, 1, 1]);
    expect(Array.from(b.answers.toArray())).toEqual([1, 1]);
  });

  it('random noise: n of the rows 0..n+k−1, k ≤ ceil(n/10), in order, capped at the table', () => {
    const g = new Generator(4);
    let sawGap = false;
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + g.int(30);
      const b = makeBatch([ex(n)], { memorySize: 25, timeNoise: 0.1, generator: g });
      const t = b.times.toArray();
      const m = Math.min(n, 25);
      for (let i = 1; i < m; i++) {
        expect(t[i]).toBeLessThanOrEqual(t[i - 1]);
        if (t[i] !== 24) expect(t[i]).toBeLessThan(t[i - 1]);
      }
      expect(t[m - 1]).toBeGreaterThanOrEqual(0);
      expect(t[0]).toBeLessThanOrEqual(Math.min(24, m + Math.ceil(m * 0.1) - 1));
      if (t[0] > m - 1) sawGap = true;
    }
    expect(sawGap).toBe(true);
    expect(() => makeBatch([ex(2)], { timeNoise: 0.1 })).toThrow(/opts\.generator is required/);
    expect(() => makeBatch([])).toThrow(LoomError);
  });
});

describe('epochBatches', () => {
  it('covers every example once per epoch, in batches within one group, differently each epoch', () => {
    const groups = Array.from({ length: 50 }, (_, i) => i % 3);
    const next = epochBatches(50, 8, groups, new Generator(1));
    const first = next(), second = next();
    for (const epoch of [first, second]) {
      expect(epoch.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      for (const b of epoch) {
        expect(b.length).toBeLessThanOrEqual(8);
        expect(new Set(b.map((i) => groups[i])).size).toBe(1);
      }
    }
    expect(second).not.toEqual(first);
    const plain = epochBatches(20, 8, null, new Generator(1))();
    expect(plain.map((b) => b.length)).toEqual([8, 8, 4]);
  });
});

describe('bAbI vocabulary', () => {
  const examples = [
    { story: ['Mary moved to the bathroom.', 'John went to the hallway.'], question: 'Where is Mary? ', answers: ['bathroom'] },
    { story: ['Mary picked up the apple.'], question: 'What is Mary carrying?', answers: ['apple', 'football'] },
  ];

  it('lower-cases, drops the final punctuation, keeps a list answer as one class, reserves 0 for nil', () => {
    expect(tokenizeBabi('Where is Mary? ')).toEqual(['where', 'is', 'mary']);
    const vocab = buildBabiVocabulary(examples);
    expect(vocab.get('<nil>')).toBe(0);
    expect(vocab.has('apple,football')).toBe(true);
    expect([...vocab.keys()].slice(1)).toEqual([...vocab.keys()].slice(1).sort());
    const enc = encodeBabi(examples, vocab);
    expect(enc[1].answer).toBe(vocab.get('apple,football'));
    expect(enc[0].story[0]).toEqual(['mary', 'moved', 'to', 'the', 'bathroom'].map((w) => vocab.get(w)));
    expect(sentenceSize(enc)).toBe(5);
    expect(() => encodeBabi([{ story: ['Bill left.'], question: 'Where?', answers: ['x'] }], vocab)).toThrow(/'bill'/);
  });
});

// ---- learning: generated single-supporting-fact stories (bAbI task 1 style) ----
const PEOPLE = ['mary', 'john', 'sandra', 'daniel'];
const PLACES = ['kitchen', 'garden', 'office', 'hallway', 'bathroom', 'bedroom'];
const VERBS = ['went to the', 'moved to the', 'journeyed to the', 'travelled to the'];

function generateStories(g: Generator, count: number): { story: string[]; question: string; answers: string[] }[] {
  return Array.from({ length: count }, () => {
    const n = 2 + g.int(7);
    const where = new Map<string, string>();
    const story: string[] = [];
    for (let i = 0; i < n; i++) {
      const who = PEOPLE[g.int(PEOPLE.length)], place = PLACES[g.int(PLACES.length)];
      where.set(who, place);
      story.push(`${who} ${VERBS[g.int(VERBS.length)]} ${place}.`);
    }
    const asked = [...where.keys()][g.int(where.size)];
    return { story, question: `Where is ${asked}?`, answers: [where.get(asked)!] };
  });
}

describe('MemN2N learns', () => {
  it('solves generated single-supporting-fact stories', () => {
    const g = new Generator(2015);
    const train = generateStories(g, 600), valid = generateStories(g, 100), test = generateStories(g, 300);
    const vocab = buildBabiVocabulary(train, valid, test);
    const [tr, va, te] = [train, valid, test].map((s) => encodeBabi(s, vocab));
    const model = new MemN2N({ vocabSize: vocab.size, embedSize: 20, hops: 3, sentenceSize: sentenceSize(tr, va, te), seed: 3 });
    const before = evaluateMemN2N(model, te).error;
    const result = trainMemN2N(model, tr, va, { epochs: 15, lrDecayEvery: 8, lsMaxEpochs: 5, seed: 3 });
    const after = evaluateMemN2N(model, te);
    expect(before).toBeGreaterThan(0.5);
    expect(after.error).toBeLessThan(0.05);
    expect(model.linearStart).toBe(false);
    expect(result.history[0].phase).toBe('linear');
    expect(result.history.filter((h) => h.phase === 'softmax')).toHaveLength(15);
    // The kept weights are the selected epoch's: the validation error matches its record.
    expect(evaluateMemN2N(model, va).error).toBe(result.validError);
    expect(result.history.find((h) => h.phase === 'softmax' && h.epoch === result.selectedEpoch)!.validError).toBe(result.validError);
  });

  it('validates its training config', () => {
    const model = new MemN2N({ vocabSize: 5, sentenceSize: 2 });
    const data = [{ story: [[1]], query: [1], answer: 1 }];
    expect(() => trainMemN2N(model, data, [], { batchSize: 0 })).toThrow(/config\.batchSize must be a positive integer/);
    expect(() => trainMemN2N(model, data, [], { lr: -1 })).toThrow(/config\.lr must be a positive number/);
    expect(() => trainMemN2N(model, [], [])).toThrow(/'train' is empty/);
    expect(() => trainMemN2N(model, data, [], { groups: [0, 1] })).toThrow(/config\.groups must hold one group per training example \(1\), got 2/);
  });
});
