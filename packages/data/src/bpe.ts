import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { DataError } from './errors.js';
import type { ProgressCallback } from './progress.js';
import { decodeUtf8, forEachTextChunk, isSpace } from './text.js';
import { TokenBuffer, type StreamEncoder, type Tokenizer } from './tokenizers.js';

/**
 * Byte-level BPE. The base alphabet is the 256 byte values (ids 0-255), so every string encodes and
 * `decode(encode(text)) === text` for any well-formed string. Merge k creates id 256 + k.
 *
 * Pre-tokenisation (merges never cross a piece): text is cut where whitespace meets non-whitespace,
 * and a single space before a word joins that word (" the"), as in GPT-2 but without its regex.
 * So "Hello  world\n" is "Hello", " ", " world", "\n". Pieces longer than 64 UTF-16 units are cut
 * into 64-unit pieces (never inside a surrogate pair) to bound encoding cost.
 *
 * Merges file: a first line `#loom-bpe v1`, then one merge per line, `a b` (the two ids merged).
 */
export const BPE_HEADER = '#loom-bpe v1';
const MAX_PIECE = 64;
// Pair keys a * 2^21 + b stay exact in a double for ids below 2^21.
const KEY = 2097152;
export const BPE_MAX_VOCAB = KEY;

/** Calls `piece(start, end)` for each pre-token piece of `text`. */
export function forEachPiece(text: string, piece: (start: number, end: number) => void): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const start = i;
    if (!isSpace(text.charCodeAt(i))) {
      while (i < n && !isSpace(text.charCodeAt(i))) i++;
    } else if (text.charCodeAt(i) === 32 && i + 1 < n && !isSpace(text.charCodeAt(i + 1))) {
      i++;
      while (i < n && !isSpace(text.charCodeAt(i))) i++;
    } else {
      // A whitespace run, leaving out a final space that belongs to the next word.
      while (i < n && isSpace(text.charCodeAt(i)) && !(text.charCodeAt(i) === 32 && i + 1 < n && !isSpace(text.charCodeAt(i + 1)))) i++;
    }
    let s = start;
    while (i - s > MAX_PIECE) {
      let e = s + MAX_PIECE;
      const c = text.charCodeAt(e - 1);
      if (c >= 0xd800 && c <= 0xdbff) e--;
      piece(s, e);
      s = e;
    }
    piece(s, i);
  }
}

export interface BpeTrainOptions {
  /** Target vocabulary size: 256 bytes + merges. */
  vocabSize: number;
  /** Pairs seen fewer times are not merged (default 2). */
  minFrequency?: number;
  onProgress?: ProgressCallback;
}

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe';
  readonly merges: readonly (readonly [number, number])[];
  readonly hash: string;
  /** The bytes each id stands for. */
  private readonly bytes: Uint8Array[];
  private readonly ranks = new Map<number, number>();
  private readonly cache = new Map<string, Int32Array>();
  private readonly encoder = new TextEncoder();
  private scratch = new Uint8Array(4 * MAX_PIECE);

  constructor(merges: readonly (readonly [number, number])[]) {
    if (256 + merges.length > BPE_MAX_VOCAB) throw new DataError(`BpeTokenizer: ${merges.length} merges, at most ${BPE_MAX_VOCAB - 256}`);
    this.merges = merges;
    this.bytes = [];
    for (let b = 0; b < 256; b++) this.bytes.push(Uint8Array.of(b));
    merges.forEach(([a, b], k) => {
      const id = 256 + k;
      if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b >= 0 && a < id && b < id)) {
        throw new DataError(`BpeTokenizer: merge ${k} (${a} ${b}) must join ids below ${id}`);
      }
      const key = a * KEY + b;
      if (this.ranks.has(key)) throw new DataError(`BpeTokenizer: merge ${k} (${a} ${b}) repeats merge ${this.ranks.get(key)}`);
      this.ranks.set(key, k);
      const x = this.bytes[a];
      const y = this.bytes[b];
      const joined = new Uint8Array(x.length + y.length);
      joined.set(x);
      joined.set(y, x.length);
      this.bytes.push(joined);
    });
    this.hash = createHash('sha256').update(this.toText()).digest('hex');
  }

  get vocabSize(): number {
    return 256 + this.merges.length;
  }

  /** Trains merges on a string. */
  static train(text: string, options: BpeTrainOptions): BpeTokenizer {
    const counts = new Map<string, number>();
    forEachPiece(text, (s, e) => {
      const p = text.slice(s, e);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    });
    return new BpeTokenizer(trainMerges(counts, options));
  }

  /** Trains merges on files, counting pieces in one streaming pass (memory: distinct pieces). */
  static trainFiles(files: string | readonly string[], options: BpeTrainOptions): BpeTokenizer {
    const counts = new Map<string, number>();
    forEachTextChunk(
      typeof files === 'string' ? [files] : files,
      (text) =>
        forEachPiece(text, (s, e) => {
          const p = text.slice(s, e);
          counts.set(p, (counts.get(p) ?? 0) + 1);
        }),
      () => {},
      { onProgress: options.onProgress, phase: 'bpe-count' },
    );
    return new BpeTokenizer(trainMerges(counts, options));
  }

  toText(): string {
    let s = BPE_HEADER + '\n';
    for (const [a, b] of this.merges) s += `${a} ${b}\n`;
    return s;
  }

  save(file: string): void {
    fs.writeFileSync(file, this.toText());
  }

  static load(file: string): BpeTokenizer {
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new DataError(`BpeTokenizer.load: cannot read file: ${(e as Error).message}`, { file });
    }
    return BpeTokenizer.fromText(decodeUtf8(bytes, file), file);
  }

  static fromText(text: string, file = '<merges>'): BpeTokenizer {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const first = (lines[0] ?? '').replace(/\r$/, '');
    if (first !== BPE_HEADER) throw new DataError(`expected the header line '${BPE_HEADER}', got '${first.slice(0, 40)}'`, { file, line: 1 });
    const merges: [number, number][] = [];
    const seen = new Map<number, number>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i].replace(/\r$/, '');
      const m = /^(\d{1,7}) (\d{1,7})$/.exec(line);
      const id = 256 + merges.length;
      if (!m) throw new DataError(`expected a merge 'a b' (two ids), got '${line.slice(0, 40)}'`, { file, line: i + 1 });
      const a = Number(m[1]);
      const b = Number(m[2]);
      if (a >= id || b >= id) throw new DataError(`merge ${a} ${b} creates id ${id}: expected ids below ${id}`, { file, line: i + 1 });
      const key = a * KEY + b;
      if (seen.has(key)) throw new DataError(`merge ${a} ${b} already on line ${seen.get(key)}`, { file, line: i + 1 });
      if (id >= BPE_MAX_VOCAB) throw new DataError(`more than ${BPE_MAX_VOCAB - 256} merges`, { file, line: i + 1 });
      seen.set(key, i + 1);
      merges.push([a, b]);
    }
    return new BpeTokenizer(merges);
  }

  encode(text: string): Int32Array {
    const out = new TokenBuffer(Math.max(16, text.length >> 1));
    this.streamEncoder(out).write(text);
    return out.toArray();
  }

  decode(ids: ArrayLike<number>): string {
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(Number.isInteger(id) && id >= 0 && id < this.bytes.length)) throw new DataError(`BpeTokenizer.decode: id ${id} out of range [0, ${this.bytes.length})`);
      total += this.bytes[id].length;
    }
    const buf = new Uint8Array(total);
    let o = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.bytes[ids[i]];
      buf.set(b, o);
      o += b.length;
    }
    // Not fatal: ids cut mid-character decode to U+FFFD rather than failing.
    return new TextDecoder().decode(buf);
  }

  streamEncoder(out: TokenBuffer): StreamEncoder {
    return {
      write: (text: string) =>
        forEachPiece(text, (s, e) => {
          const ids = this.encodePiece(text.slice(s, e));
          for (let i = 0; i < ids.length; i++) out.push(ids[i]);
        }),
      endFile() {},
    };
  }

  private encodePiece(piece: string): Int32Array {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const { written } = this.encoder.encodeInto(piece, this.scratch);
    const sym: number[] = Array.from(this.scratch.subarray(0, written!));
    const ranks = this.ranks;
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < sym.length; i++) {
        const r = ranks.get(sym[i] * KEY + sym[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = this.merges[bestRank];
      const id = 256 + bestRank;
      let w = 0;
      for (let i = 0; i < sym.length; i++) {
        if (i + 1 < sym.length && sym[i] === a && sym[i + 1] === b) {
          sym[w++] = id;
          i++;
        } else sym[w++] = sym[i];
      }
      sym.length = w;
    }
    const ids = Int32Array.from(sym);
    if (this.cache.size >= 100_000) this.cache.clear();
    this.cache.set(piece, ids);
    return ids;
  }
}

/**
 * Standard BPE training: repeatedly merge the most frequent adjacent pair (ties: smaller first id,
 * then smaller second id), updating only the words that contain it. A lazy max-heap finds the best pair.
 */
function trainMerges(pieceCounts: Map<string, number>, options: BpeTrainOptions): [number, number][] {
  const { vocabSize, minFrequency = 2 } = options;
  if (!(Number.isInteger(vocabSize) && vocabSize >= 256 && vocabSize <= BPE_MAX_VOCAB)) {
    throw new DataError(`BpeTokenizer.train: options.vocabSize must be an integer in [256, ${BPE_MAX_VOCAB}], got ${vocabSize}`);
  }
  if (pieceCounts.size === 0) throw new DataError('BpeTokenizer.train: empty corpus: no text to train on');
  const enc = new TextEncoder();
  const words: number[][] = [];
  const freq: number[] = [];
  // Sorted so that training does not depend on the order pieces were first seen.
  const entries = [...pieceCounts.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  for (const [p, c] of entries) {
    words.push(Array.from(enc.encode(p)));
    freq.push(c);
  }
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const addPair = (key: number, w: number, c: number) => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + c);
    let s = where.get(key);
    if (!s) where.set(key, (s = new Set()));
    s.add(w);
  };
  words.forEach((sym, w) => {
    for (let i = 0; i + 1 < sym.length; i++) addPair(sym[i] * KEY + sym[i + 1], w, freq[w]);
  });
  for (const [key, c] of pairCount) heap.push(c, key);

  const merges: [number, number][] = [];
  while (256 + merges.length < vocabSize) {
    let key = -1;
    let count = 0;
    while (heap.size > 0) {
      const [c, k] = heap.pop();
      if (pairCount.get(k) === c) {
        key = k;
        count = c;
        break;
      }
    }
    if (key < 0 || count < minFrequency) break;
    const a = Math.floor(key / KEY);
    const b = key - a * KEY;
    const id = 256 + merges.length;
    merges.push([a, b]);
    const changed = new Map<number, number>();
    const bump = (k: number, d: number) => changed.set(k, (changed.get(k) ?? 0) + d);
    for (const w of [...where.get(key)!]) {
      const sym = words[w];
      const c = freq[w];
      let hit = false;
      for (let i = 0; i + 1 < sym.length; i++) if (sym[i] === a && sym[i + 1] === b) hit = true;
      if (!hit) continue;
      for (let i = 0; i + 1 < sym.length; i++) bump(sym[i] * KEY + sym[i + 1], -c);
      let o = 0;
      for (let i = 0; i < sym.length; i++) {
        if (i + 1 < sym.length && sym[i] === a && sym[i + 1] === b) {
          sym[o++] = id;
          i++;
        } else sym[o++] = sym[i];
      }
      sym.length = o;
      for (let i = 0; i + 1 < sym.length; i++) {
        const k = sym[i] * KEY + sym[i + 1];
        bump(k, c);
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(w);
      }
    }
    for (const [k, d] of changed) {
      if (d === 0) continue;
      const c = (pairCount.get(k) ?? 0) + d;
      if (c > 0) {
        pairCount.set(k, c);
        heap.push(c, k);
      } else {
        pairCount.delete(k);
        where.delete(k);
      }
    }
  }
  return merges;
}

/** A binary max-heap of (count, key): higher count first, then smaller key (smaller a, then b). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const c = this.counts.pop()!;
    const k = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = c;
      this.keys[0] = k;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.counts.length && this.before(l, m)) m = l;
        if (r < this.counts.length && this.before(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}
