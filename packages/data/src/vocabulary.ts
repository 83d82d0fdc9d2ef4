import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { DataError } from './errors.js';
import { decodeUtf8 } from './text.js';

/**
 * The special tokens. `<unk>` stands for any out-of-vocabulary token, `<eos>` ends each line of a
 * word-level corpus (as PTB and WikiText are prepared), `<pad>` and `<bos>` are for sequence models
 * that need them. They are ordinary vocabulary entries recognised by name.
 */
export const UNK = '<unk>';
export const EOS = '<eos>';
export const PAD = '<pad>';
export const BOS = '<bos>';

/**
 * Token counts from one streaming pass. Memory grows with the number of distinct tokens only: one
 * Map entry per distinct token and a count beside it.
 */
export class TokenCounts {
  private readonly index = new Map<string, number>();
  private readonly tokens: string[] = [];
  private counts = new Float64Array(1024);
  /** Tokens counted, repeats included. */
  total = 0;

  add(token: string, n = 1): void {
    const i = this.index.get(token);
    if (i !== undefined) {
      this.counts[i] += n;
    } else {
      const j = this.tokens.length;
      if (j === this.counts.length) {
        const grown = new Float64Array(j * 2);
        grown.set(this.counts);
        this.counts = grown;
      }
      this.index.set(token, j);
      this.tokens.push(token);
      this.counts[j] = n;
    }
    this.total += n;
  }

  get(token: string): number {
    const i = this.index.get(token);
    return i === undefined ? 0 : this.counts[i];
  }

  /** Number of distinct tokens. */
  get distinct(): number {
    return this.tokens.length;
  }

  *entries(): IterableIterator<[string, number]> {
    for (let i = 0; i < this.tokens.length; i++) yield [this.tokens[i], this.counts[i]];
  }
}

export interface VocabularyOptions {
  /** Tokens seen fewer times are left out (they become `<unk>`). Default 1. Specials are always kept. */
  minCount?: number;
  /** At most this many entries, specials included. Default: no limit. */
  maxSize?: number;
  /** Special tokens, given ids 0, 1, ... in this order. Default [`<unk>`, `<eos>`]. */
  specials?: readonly string[];
}

/**
 * A vocabulary: id order is the specials first (in the order given), then the other tokens by count,
 * descending, ties in JavaScript string order (UTF-16 code units), so it is the same on every run.
 * Saved as plain text, one `token<TAB>count` line per id (see `toText`). `hash` is the sha256 of that
 * text and is written into token files, which refuse to open with another vocabulary.
 */
export class Vocabulary {
  readonly tokens: readonly string[];
  readonly counts: readonly number[];
  readonly hash: string;
  private readonly index: Map<string, number>;

  constructor(tokens: readonly string[], counts?: readonly number[]) {
    if (tokens.length === 0) throw new DataError('Vocabulary: empty vocabulary: expected at least one token');
    if (counts !== undefined && counts.length !== tokens.length) {
      throw new DataError(`Vocabulary: ${tokens.length} tokens but ${counts.length} counts`);
    }
    this.tokens = tokens;
    this.counts = counts ?? tokens.map(() => 0);
    this.index = new Map();
    tokens.forEach((t, i) => {
      if (t.length === 0) throw new DataError(`Vocabulary: token ${i} is empty: expected a non-empty string`);
      if (this.index.has(t)) throw new DataError(`Vocabulary: token '${t}' appears twice (ids ${this.index.get(t)} and ${i})`);
      this.index.set(t, i);
    });
    this.hash = createHash('sha256').update(this.toText()).digest('hex');
  }

  static fromCounts(counts: TokenCounts, options: VocabularyOptions = {}): Vocabulary {
    const { minCount = 1, maxSize = Infinity } = options;
    const specials = options.specials ?? [UNK, EOS];
    if (!(Number.isInteger(minCount) && minCount >= 0)) throw new DataError(`Vocabulary.fromCounts: options.minCount must be a non-negative integer, got ${minCount}`);
    if (!(maxSize === Infinity || (Number.isInteger(maxSize) && maxSize >= specials.length && maxSize > 0))) {
      throw new DataError(`Vocabulary.fromCounts: options.maxSize must be an integer >= the ${specials.length} specials and > 0, got ${maxSize}`);
    }
    if (counts.total === 0) throw new DataError('Vocabulary.fromCounts: empty corpus: no tokens were counted');
    const specialSet = new Set(specials);
    const rest: [string, number][] = [];
    for (const [t, c] of counts.entries()) if (!specialSet.has(t) && c >= minCount) rest.push([t, c]);
    rest.sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const kept = rest.slice(0, Math.max(0, maxSize - specials.length));
    return new Vocabulary(
      [...specials, ...kept.map((e) => e[0])],
      [...specials.map((s) => counts.get(s)), ...kept.map((e) => e[1])],
    );
  }

  get size(): number {
    return this.tokens.length;
  }

  /** The id of a token, or -1. */
  id(token: string): number {
    return this.index.get(token) ?? -1;
  }

  /** The token of an id; an id out of range is a DataError. */
  token(id: number): string {
    if (!(Number.isInteger(id) && id >= 0 && id < this.tokens.length)) {
      throw new DataError(`Vocabulary.token: id ${id} out of range [0, ${this.tokens.length})`);
    }
    return this.tokens[id];
  }

  get unkId(): number {
    return this.id(UNK);
  }

  get eosId(): number {
    return this.id(EOS);
  }

  /**
   * The file format: one line per id, `token<TAB>count<LF>`. In the token, backslash, tab, LF, CR and
   * space are written `\\`, `\t`, `\n`, `\r`, `\s` (character vocabularies hold those characters).
   */
  toText(): string {
    let s = '';
    for (let i = 0; i < this.tokens.length; i++) s += `${escapeToken(this.tokens[i])}\t${this.counts[i]}\n`;
    return s;
  }

  save(file: string): void {
    fs.writeFileSync(file, this.toText());
  }

  static load(file: string): Vocabulary {
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new DataError(`Vocabulary.load: cannot read file: ${(e as Error).message}`, { file });
    }
    return Vocabulary.fromText(decodeUtf8(bytes, file), file);
  }

  /** Parses the `toText` format; CRLF line ends and a missing final newline are accepted. */
  static fromText(text: string, file = '<vocabulary>'): Vocabulary {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    if (lines.length === 0) throw new DataError('empty vocabulary: expected one `token<TAB>count` line per id', { file });
    const tokens: string[] = [];
    const counts: number[] = [];
    const seen = new Map<string, number>();
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i];
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const tab = line.indexOf('\t');
      const where = { file, line: i + 1 };
      if (tab <= 0 || line.indexOf('\t', tab + 1) >= 0) throw new DataError('expected `token<TAB>count`', where);
      const countText = line.slice(tab + 1);
      if (!/^\d{1,15}$/.test(countText)) throw new DataError(`expected a non-negative integer count, got '${countText}'`, { ...where, column: tab + 2 });
      const token = unescapeToken(line.slice(0, tab), where);
      const prev = seen.get(token);
      if (prev !== undefined) throw new DataError(`token '${token}' already defined on line ${prev}`, where);
      seen.set(token, i + 1);
      tokens.push(token);
      counts.push(Number(countText));
    }
    return new Vocabulary(tokens, counts);
  }
}

function escapeToken(t: string): string {
  if (!/[\\\t\n\r ]/.test(t)) return t;
  return t.replace(/[\\\t\n\r ]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\s'));
}

function unescapeToken(t: string, where: { file: string; line: number }): string {
  if (t.indexOf('\\') < 0) return t;
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = t[++i];
    if (e === '\\') out += '\\';
    else if (e === 't') out += '\t';
    else if (e === 'n') out += '\n';
    else if (e === 'r') out += '\r';
    else if (e === 's') out += ' ';
    else throw new DataError(`unknown escape '\\${e ?? ''}': expected \\\\, \\t, \\n, \\r or \\s`, { ...where, column: i });
  }
  return out;
}
