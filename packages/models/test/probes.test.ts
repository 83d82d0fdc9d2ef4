import { describe, expect, it } from 'vitest';
import { Adam, Generator, tensor } from '@loom/core';
import { RNNLanguageModel, analogy, cosineSimilarity, nearestNeighbours } from '../src/index.js';
import { ids } from './models-testkit.js';

describe('nearestNeighbours and analogy on a table with known geometry', () => {
  // Axes: royalty, maleness, femaleness, fruitiness. king = royal + male, and so on.
  const words = ['king', 'queen', 'man', 'woman', 'prince', 'apple', 'zero'];
  const vectors = [
    [1, 1, 0, 0], // king
    [1, 0, 1, 0], // queen
    [0, 1, 0, 0.1], // man
    [0, 0, 1, 0.1], // woman
    [0.9, 1.1, 0, 0], // prince
    [0, 0.1, 0.1, 1], // apple
    [0, 0, 0, 0], // zero
  ];
  const table = tensor(vectors.flat(), [words.length, 4]);
  const id = (w: string): number => words.indexOf(w);

  it('ranks by cosine, excludes the query, breaks ties by id and puts a zero vector at similarity 0', () => {
    const nn = nearestNeighbours(table, id('king'), 6);
    // Cosines with king: prince 0.995, man 0.704, queen 0.5, apple 0.07, woman 0, zero 0 (tie: lower id first).
    expect(nn.map((n) => words[n.id])).toEqual(['prince', 'man', 'queen', 'apple', 'woman', 'zero']);
    expect(nn[0].similarity).toBeCloseTo((0.9 + 1.1) / (Math.SQRT2 * Math.sqrt(0.81 + 1.21)), 6); // float32 table
    expect(nn.find((n) => words[n.id] === 'zero')!.similarity).toBe(0);
    expect(nn.some((n) => n.id === id('king'))).toBe(false);
    for (let i = 1; i < nn.length; i++) expect(nn[i].similarity).toBeLessThanOrEqual(nn[i - 1].similarity);
    expect(nearestNeighbours(table, id('apple'), 1)).toHaveLength(1);
    expect(cosineSimilarity(table, id('king'), id('queen'))).toBeCloseTo(0.5, 6);
  });
  it('solves king - man + woman = queen, never answering with an input', () => {
    const [best] = analogy(table, id('king'), id('man'), id('woman'), 1);
    expect(words[best.id]).toBe('queen');
    const answers = analogy(table, id('king'), id('man'), id('woman'), 10).map((n) => n.id);
    expect(answers).toHaveLength(words.length - 3);
    for (const w of ['king', 'man', 'woman']) expect(answers).not.toContain(id(w));
    expect(words[analogy(table, id('queen'), id('woman'), id('man'), 1)[0].id]).toMatch(/king|prince/);
  });
  it('names bad arguments', () => {
    expect(() => nearestNeighbours(tensor([1, 2, 3]), 0, 1)).toThrow(/'table' must be a 2-D embedding table \[V, D\], got \[3\]/);
    expect(() => nearestNeighbours(table, 7, 1)).toThrow(/'id' must be a row id in \[0, 7\), got 7/);
    expect(() => analogy(table, 0, 1, -1, 1)).toThrow(/analogy: 'c' must be a row id/);
    expect(() => nearestNeighbours(table, 0, 0)).toThrow(/'k' must be a positive integer/);
  });
});

describe('probes over a trained embedding table', () => {
  it('words used in the same contexts become nearest neighbours (a tied language model on a toy grammar)', () => {
    // Sentences "det noun verb ." with every choice uniform: the nouns are interchangeable, and so are the verbs.
    const words = ['.', 'the', 'a', 'cat', 'dog', 'cow', 'runs', 'sleeps', 'eats'];
    const classes: Record<string, string[]> = { det: ['the', 'a'], noun: ['cat', 'dog', 'cow'], verb: ['runs', 'sleeps', 'eats'] };
    const g = new Generator(12);
    const pick = (c: string): number => words.indexOf(classes[c][g.int(classes[c].length)]);
    const stream = (n: number): number[] => Array.from({ length: n }, () => [pick('det'), pick('noun'), pick('verb'), 0]).flat();
    const m = new RNNLanguageModel({ vocabSize: words.length, embedSize: 12, hiddenSize: 12, numLayers: 1, cell: 'gru', tieWeights: true, seed: 4 });
    const table = m.embedding.weight;
    const classOf = (i: number): string => Object.keys(classes).find((c) => classes[c].includes(words[i])) ?? 'end';
    const sameClassFirst = (): number =>
      [...classes.noun, ...classes.verb].filter((w) => classOf(nearestNeighbours(table, words.indexOf(w), 1)[0].id) === classOf(words.indexOf(w))).length;
    const before = sameClassFirst();
    const opt = new Adam(m, { lr: 0.02 });
    const T = 12, B = 8;
    for (let step = 0; step < 120; step++) {
      const s = stream((T * B) / 4 + 1); // B lanes of T tokens, laid out time-major
      const x = Array.from({ length: T * B }, (_, i) => s[(i % B) * T + Math.floor(i / B)]);
      const y = Array.from({ length: T * B }, (_, i) => s[(i % B) * T + Math.floor(i / B) + 1]);
      opt.zeroGrad();
      m.loss(ids(x, T, B), ids(y, T, B)).loss.backward();
      opt.step();
    }
    expect(before).toBeLessThan(6); // the untrained table: 2 of 6
    expect(sameClassFirst()).toBe(6);
    // Same-class pairs end up closer than cross-class pairs, on average.
    const mean = (pairs: [string, string][]): number => pairs.reduce((s, [a, b]) => s + cosineSimilarity(table, words.indexOf(a), words.indexOf(b)), 0) / pairs.length;
    const within = mean([['cat', 'dog'], ['cat', 'cow'], ['dog', 'cow'], ['runs', 'sleeps'], ['runs', 'eats'], ['sleeps', 'eats']]);
    const across = mean([['cat', 'runs'], ['dog', 'sleeps'], ['cow', 'eats'], ['cat', 'eats']]);
    expect(within - across).toBeGreaterThan(0.5);
  });
});
