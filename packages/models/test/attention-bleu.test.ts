// Corpus BLEU against a hand-derived value and against an independent Python implementation
// (fixtures/attention/bleu_reference.py, whose printed output is pinned below); the heatmap SVG.
import { describe, expect, it } from 'vitest';
import { attentionHeatmapSvg, corpusBleu } from '../src/index.js';

const words = (s: string): string[] => s.split(' ');

describe('corpusBleu', () => {
  it('one sentence, by hand', () => {
    // Hypothesis "a b c d e", reference "a b c d f g": clipped matches 4/5, 3/4, 2/3, 1/2, so the
    // geometric mean is (4/5 · 3/4 · 2/3 · 1/2)^(1/4) = 0.2^(1/4); c = 5 < r = 6, BP = exp(1 - 6/5).
    const r = corpusBleu([words('a b c d e')], [words('a b c d f g')]);
    expect(r.matches).toEqual([4, 3, 2, 1]);
    expect(r.totals).toEqual([5, 4, 3, 2]);
    expect(r.brevityPenalty).toBeCloseTo(Math.exp(-0.2), 12);
    expect(r.bleu).toBeCloseTo(0.2 ** 0.25 * Math.exp(-0.2), 12); // 0.54752…
  });

  it('clips repeated words (Papineni\'s "the the the …" example): unigram precision 2/7', () => {
    const r = corpusBleu([words('the the the the the the the')], [[words('the cat is on the mat'), words('there is a cat on the mat')]]);
    expect(r.matches[0]).toBe(2);
    expect(r.totals[0]).toBe(7);
    expect(r.bleu).toBe(0); // no bigram matches
  });

  it('a corpus with several references per sentence matches the Python reference', () => {
    // bleu_reference.py printed:
    //   bleu 0.3050767823197758
    //   precisions ['8/11', '1/2', '2/7', '1/10']
    //   bp 0.9555630362682843 c 22 r 23
    const corpus: [string, string[]][] = [
      ['the cat sat on the mat .', ['the cat is on the mat .', 'there is a cat on the mat .']],
      ['the the the the the the the', ['the cat is on the mat .']],
      ['je suis très fatigué .', ['je suis très fatiguée .', 'je suis vraiment fatigué .']],
      ['il est là', ['il est ici .', 'il est là .']],
    ];
    const r = corpusBleu(corpus.map(([h]) => words(h)), corpus.map(([, refs]) => refs.map(words)));
    expect(r.precisions.map((p, i) => p * r.totals[i])).toEqual(r.matches);
    expect(r.precisions[0]).toBeCloseTo(8 / 11, 14);
    expect(r.precisions[1]).toBeCloseTo(1 / 2, 14);
    expect(r.precisions[2]).toBeCloseTo(2 / 7, 14);
    expect(r.precisions[3]).toBeCloseTo(1 / 10, 14);
    expect(r.hypothesisLength).toBe(22);
    expect(r.referenceLength).toBe(23);
    expect(r.brevityPenalty).toBeCloseTo(0.9555630362682843, 14);
    expect(r.bleu).toBeCloseTo(0.3050767823197758, 14);
  });

  it('is 1 for a perfect corpus, and counts over the corpus rather than averaging sentences', () => {
    const refs = [words('a b c d e f'), words('g h i j k')];
    expect(corpusBleu(refs, refs).bleu).toBeCloseTo(1, 14);
    // The second sentence is too short for any 4-gram: a sentence-level average would be undefined.
    const r = corpusBleu([words('a b c d e f'), words('g h')], [words('a b c d e f'), words('g h')]);
    expect(r.totals).toEqual([8, 6, 4, 3]);
    expect(r.bleu).toBeCloseTo(1, 14);
    expect(() => corpusBleu([words('a')], [])).toThrow(/'hypotheses' \(1\) and 'references' \(0\) must have one entry per sentence/);
  });
});

describe('attentionHeatmapSvg', () => {
  it('draws one shaded cell per weight with escaped labels', () => {
    const svg = attentionHeatmapSvg([
      { title: 'he is <tall> & "thin" → il est grand et mince .', source: ['he', 'is', 'tall', '.'], output: ['il', 'est', 'grand', '.', '<eos>'], weights: [
        [0.9, 0.1, 0, 0], [0.1, 0.8, 0.1, 0], [0, 0, 1, 0], [0, 0, 0.2, 0.8], [0.25, 0.25, 0.25, 0.25],
      ] },
      { source: ['a'], output: ['b'], weights: [[1]] },
    ]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<rect x=/g)!.length).toBe(5 * 4 + 1);
    expect(svg).toContain('he is &lt;tall&gt; &amp; &quot;thin&quot; → il est grand et mince .');
    expect(svg).toContain('&lt;eos&gt;');
    expect(svg).toContain('fill="#08306b"'); // weight 1: the darkest shade
    expect(svg).toContain('fill="#ffffff"'); // weight 0: white
    // Wide enough for the longest title (7.5 px per bold character, 20 px of margins).
    const width = Number(/width="(\d+)"/.exec(svg)![1]);
    expect(width).toBeGreaterThanOrEqual(20 + 7.5 * 'he is <tall> & "thin" → il est grand et mince .'.length);
    expect(() => attentionHeatmapSvg([{ source: ['a', 'b'], output: ['c'], weights: [[1]] }])).toThrow(/panels\[0\]\.weights\[0\] has 1 values, expected 2/);
  });
});
