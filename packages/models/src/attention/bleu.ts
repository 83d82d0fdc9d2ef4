/*
 * Corpus BLEU (Papineni et al. 2002), the metric translation results are reported in:
 *
 *   p_n = Σ_sentences Σ_ngrams min(count in hypothesis, max count in any reference) / Σ_sentences #n-grams in hypothesis
 *   BP  = 1 if c > r, else exp(1 - r / c)     c: total hypothesis length; r: Σ of the reference length
 *                                              closest to each hypothesis's length (the shorter on a tie)
 *   BLEU = BP · exp(Σ_{n=1..N} log(p_n) / N)  (0 when some p_n is 0; no smoothing)
 *
 * Counts are summed over the corpus before dividing (corpus BLEU, not a mean of sentence scores), as
 * sacrebleu and NLTK's corpus_bleu do. Tokens are compared as given: tokenisation is the caller's.
 */
import { LoomError } from '@loom/core';

export interface BleuResult {
  /** In [0, 1]; tables usually show 100 · bleu. */
  bleu: number;
  /** p_1 … p_N. */
  precisions: number[];
  /** Clipped matches and hypothesis n-grams per order, summed over the corpus. */
  matches: number[];
  totals: number[];
  brevityPenalty: number;
  /** c and r above. */
  hypothesisLength: number;
  referenceLength: number;
}

type Tokens = readonly (string | number)[];

/**
 * hypotheses[i] is scored against references[i]: one reference (a token list) or several (a list of them).
 * maxOrder N defaults to 4 (BLEU-4).
 */
export function corpusBleu(hypotheses: readonly Tokens[], references: readonly (Tokens | readonly Tokens[])[], maxOrder = 4): BleuResult {
  if (hypotheses.length !== references.length) {
    throw new LoomError(`corpusBleu: 'hypotheses' (${hypotheses.length}) and 'references' (${references.length}) must have one entry per sentence`);
  }
  if (!Number.isInteger(maxOrder) || maxOrder < 1) throw new LoomError(`corpusBleu: maxOrder must be a positive integer, got ${maxOrder}`);
  const matches = new Array<number>(maxOrder).fill(0);
  const totals = new Array<number>(maxOrder).fill(0);
  let c = 0, r = 0;
  hypotheses.forEach((hyp, i) => {
    const refsIn = references[i];
    const refs: Tokens[] = refsIn.length > 0 && Array.isArray(refsIn[0]) ? (refsIn as readonly Tokens[]).slice() : [refsIn as Tokens];
    if (refs.length === 0) throw new LoomError(`corpusBleu: references[${i}] holds no reference`);
    c += hyp.length;
    // The closest reference length; the shorter one on a tie.
    let best = refs[0].length;
    for (const ref of refs) {
      const d = Math.abs(ref.length - hyp.length), bd = Math.abs(best - hyp.length);
      if (d < bd || (d === bd && ref.length < best)) best = ref.length;
    }
    r += best;
    for (let n = 1; n <= maxOrder; n++) {
      const h = ngramCounts(hyp, n);
      const maxRef = new Map<string, number>();
      for (const ref of refs) for (const [g, k] of ngramCounts(ref, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, k));
      for (const [g, k] of h) matches[n - 1] += Math.min(k, maxRef.get(g) ?? 0);
      totals[n - 1] += Math.max(hyp.length - n + 1, 0);
    }
  });
  const precisions = matches.map((m, i) => (totals[i] > 0 ? m / totals[i] : 0));
  const brevityPenalty = c === 0 ? 0 : c > r ? 1 : Math.exp(1 - r / c);
  const bleu = precisions.some((p) => p === 0) ? 0 : brevityPenalty * Math.exp(precisions.reduce((s, p) => s + Math.log(p), 0) / maxOrder);
  return { bleu, precisions, matches, totals, brevityPenalty, hypothesisLength: c, referenceLength: r };
}

function ngramCounts(tokens: Tokens, n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0000');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}
