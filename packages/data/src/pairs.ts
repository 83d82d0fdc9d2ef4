import { DataError } from './errors.js';
import { decodeUtf8, readTextFile, splitLines } from './text.js';

/** A sentence pair for sequence-to-sequence training. */
export interface SentencePair {
  source: string;
  target: string;
  /** Tatoeba's third column (licence attribution) where present. */
  attribution?: string;
}

/**
 * Parses tab-separated pairs, one per line: `source<TAB>target` or `source<TAB>target<TAB>attribution`
 * (the Tatoeba / manythings.org format, e.g. `Go.<TAB>Va !`). Empty lines are skipped; CRLF is
 * accepted; both sentences must be non-empty.
 */
export function parseTsvPairs(content: string | Uint8Array, file = '<pairs>'): SentencePair[] {
  const text = typeof content === 'string' ? content : decodeUtf8(content, file);
  const lines = splitLines(text);
  const out: SentencePair[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const f = line.split('\t');
    const where = { file, line: i + 1 };
    if (f.length !== 2 && f.length !== 3) {
      throw new DataError(`expected 'source<TAB>target' or 'source<TAB>target<TAB>attribution', got ${f.length} tab-separated field${f.length === 1 ? '' : 's'}`, where);
    }
    const source = f[0].trim();
    const target = f[1].trim();
    if (source === '') throw new DataError('expected a source sentence before the tab', { ...where, column: 1 });
    if (target === '') throw new DataError('expected a target sentence after the tab', { ...where, column: f[0].length + 2 });
    out.push(f.length === 3 ? { source, target, attribution: f[2] } : { source, target });
  }
  return out;
}

export function readTsvPairs(file: string): SentencePair[] {
  return parseTsvPairs(readTextFile(file), file);
}

/**
 * Pairs line i of one text with line i of the other (Multi30k's `train.en` / `train.fr`). Line ends
 * may be LF or CRLF; different line counts are an error naming both files. Lines are kept as they
 * are (an empty line pairs with its counterpart).
 */
export function parseParallel(
  source: string | Uint8Array,
  target: string | Uint8Array,
  files: { source?: string; target?: string } = {},
): SentencePair[] {
  const sf = files.source ?? '<source>';
  const tf = files.target ?? '<target>';
  const s = splitLines(typeof source === 'string' ? source : decodeUtf8(source, sf));
  const t = splitLines(typeof target === 'string' ? target : decodeUtf8(target, tf));
  if (s.length !== t.length) {
    throw new DataError(`line counts differ: ${s.length} lines in ${sf} but ${t.length} in ${tf}: expected line-aligned files`, { file: sf });
  }
  return s.map((line, i) => ({ source: line, target: t[i] }));
}

export function readParallel(sourceFile: string, targetFile: string): SentencePair[] {
  return parseParallel(readTextFile(sourceFile), readTextFile(targetFile), { source: sourceFile, target: targetFile });
}
