/*
 * bAbI text → word ids for MemN2N, as the official code reads it (parseBabiTask.m): words lower-cased, a
 * trailing '.' or '?' dropped; each answer (a list answer such as 'football,apple' joined back with ',')
 * is one word of the vocabulary, hence one class. Takes plain objects shaped like @loom/data's
 * BabiExample, so this package does not depend on @loom/data.
 */
import { LoomError } from '@loom/core';
import type { MemN2NExample } from './batch.js';

/** What MemN2N needs of a bAbI question (BabiExample from @loom/data has these fields). */
export interface StoryQuestion {
  story: readonly string[];
  question: string;
  answers: readonly string[];
}

export const NIL_WORD = '<nil>';

export function tokenizeBabi(text: string): string[] {
  return text.toLowerCase().split(/\s+/).map((w) => w.replace(/[.?]$/, '')).filter((w) => w !== '');
}

/** The answer's class label: the answers joined with ','. */
export function answerLabel(answers: readonly string[]): string {
  return answers.map((a) => a.toLowerCase()).join(',');
}

/**
 * Words of the stories, questions and answer labels, sorted; id 0 is the nil word (padding). The paper
 * builds it from the training and test stories together (they share one closed vocabulary).
 */
export function buildBabiVocabulary(...sets: readonly (readonly StoryQuestion[])[]): Map<string, number> {
  const words = new Set<string>();
  for (const set of sets) {
    for (const ex of set) {
      for (const s of ex.story) for (const w of tokenizeBabi(s)) words.add(w);
      for (const w of tokenizeBabi(ex.question)) words.add(w);
      words.add(answerLabel(ex.answers));
    }
  }
  words.delete(NIL_WORD);
  const vocab = new Map<string, number>([[NIL_WORD, 0]]);
  for (const w of [...words].sort()) vocab.set(w, vocab.size);
  return vocab;
}

/** Examples as word ids; an unknown word is an error naming it. */
export function encodeBabi(examples: readonly StoryQuestion[], vocab: ReadonlyMap<string, number>): MemN2NExample[] {
  const id = (w: string, i: number): number => {
    const v = vocab.get(w);
    if (v === undefined) throw new LoomError(`encodeBabi: example ${i} has the word '${w}', which is not in the vocabulary`);
    return v;
  };
  return examples.map((ex, i) => ({
    story: ex.story.map((s) => tokenizeBabi(s).map((w) => id(w, i))),
    query: tokenizeBabi(ex.question).map((w) => id(w, i)),
    answer: id(answerLabel(ex.answers), i),
  }));
}

/** The most words in any sentence or question (config.sentenceSize for position encoding). */
export function sentenceSize(...sets: readonly (readonly MemN2NExample[])[]): number {
  let J = 1;
  for (const set of sets) {
    for (const ex of set) {
      J = Math.max(J, ex.query.length);
      for (const s of ex.story) J = Math.max(J, s.length);
    }
  }
  return J;
}
