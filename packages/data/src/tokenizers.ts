import { DataError } from './errors.js';
import { isSpace } from './text.js';
import { EOS, UNK, Vocabulary } from './vocabulary.js';

/**
 * Where encoders put ids. With `onFull` it flushes its buffer whenever it fills (streaming to a
 * token file in bounded memory); without, it grows (encoding a string in memory).
 */
export class TokenBuffer {
  data: Int32Array;
  length = 0;

  constructor(capacity = 1 << 16, private readonly onFull?: (ids: Int32Array) => void) {
    this.data = new Int32Array(Math.max(1, capacity));
  }

  push(id: number): void {
    if (this.length === this.data.length) this.makeRoom();
    this.data[this.length++] = id;
  }

  /** Sends buffered ids to `onFull` (streaming mode). */
  flush(): void {
    if (this.onFull && this.length > 0) this.onFull(this.data.subarray(0, this.length));
    this.length = 0;
  }

  toArray(): Int32Array {
    return this.data.slice(0, this.length);
  }

  private makeRoom(): void {
    if (this.onFull) return this.flush();
    const grown = new Int32Array(this.data.length * 2);
    grown.set(this.data);
    this.data = grown;
  }
}

/** Encodes a stream of text chunks; `endFile` marks the end of one file (a word tokenizer closes its last line). */
export interface StreamEncoder {
  write(text: string): void;
  endFile(): void;
}

/** What every tokenizer offers; `hash` identifies its vocabulary (or merges) in token files. */
export interface Tokenizer {
  readonly kind: 'word' | 'char' | 'bpe';
  readonly vocabSize: number;
  readonly hash: string;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
  /** Chunks written must end at a boundary as `forEachTextChunk` cuts them. */
  streamEncoder(out: TokenBuffer): StreamEncoder;
}

export interface WordTokenizerOptions {
  /** Lowercase every word before lookup (default false). */
  lowercase?: boolean;
  /** Append `<eos>` at each line end, as PTB and WikiText are prepared (default true). */
  eos?: boolean;
}

/**
 * Word-level tokenizer: words are split on whitespace as Python's `str.split()` does, and each line
 * (ended by '\n', or by the end of a file that lacks a final newline) gets `<eos>`, exactly as
 * PyTorch's word_language_model `data.py` reads a file. '\r' is whitespace, so CRLF files give the
 * same ids as LF files. Words not in the vocabulary become `<unk>`; without `<unk>` they are an error.
 *
 * Lossy by nature (whitespace is normalised): `decode` joins words with one space and ends each
 * `<eos>` with '\n'; `encode(decode(ids))` gives `ids` back.
 */
export class WordTokenizer implements Tokenizer {
  readonly kind = 'word';
  readonly lowercase: boolean;
  readonly eos: boolean;
  private readonly eosId: number;
  private readonly unkId: number;

  constructor(readonly vocabulary: Vocabulary, options: WordTokenizerOptions = {}) {
    this.lowercase = options.lowercase ?? false;
    this.eos = options.eos ?? true;
    this.eosId = vocabulary.eosId;
    this.unkId = vocabulary.unkId;
    if (this.eos && this.eosId < 0) throw new DataError(`WordTokenizer: options.eos is true but the vocabulary has no '${EOS}'`);
  }

  get vocabSize(): number {
    return this.vocabulary.size;
  }

  get hash(): string {
    return this.vocabulary.hash;
  }

  encode(text: string): Int32Array {
    const out = new TokenBuffer(Math.max(16, text.length >> 2));
    const enc = this.streamEncoder(out);
    enc.write(text);
    enc.endFile();
    return out.toArray();
  }

  decode(ids: ArrayLike<number>): string {
    const parts: string[] = [];
    let lineStart = true;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = this.vocabulary.token(id);
      if (id === this.eosId && this.eos) {
        parts.push('\n');
        lineStart = true;
      } else {
        if (!lineStart) parts.push(' ');
        parts.push(tok);
        lineStart = false;
      }
    }
    return parts.join('');
  }

  streamEncoder(out: TokenBuffer): StreamEncoder {
    const vocab = this.vocabulary;
    const { lowercase, eos, eosId, unkId } = this;
    // Whether the current file has text after its last '\n' (then its last line still gets <eos>).
    let openLine = false;
    const word = (w: string) => {
      const id = vocab.id(lowercase ? w.toLowerCase() : w);
      if (id >= 0) out.push(id);
      else if (unkId >= 0) out.push(unkId);
      else throw new DataError(`WordTokenizer.encode: word '${w}' is not in the vocabulary, which has no '${UNK}'`);
    };
    return {
      write(text: string) {
        const n = text.length;
        let start = -1;
        for (let i = 0; i < n; i++) {
          const c = text.charCodeAt(i);
          if (c <= 32 ? c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31) : c >= 0x85 && isSpace(c)) {
            if (start >= 0) {
              word(text.slice(start, i));
              start = -1;
            }
            if (c === 10) {
              if (eos) out.push(eosId);
              openLine = false;
            } else openLine = true;
          } else {
            if (start < 0) start = i;
            openLine = true;
          }
        }
        if (start >= 0) word(text.slice(start));
      },
      endFile() {
        if (openLine && eos) out.push(eosId);
        openLine = false;
      },
    };
  }
}

/**
 * Character-level tokenizer over Unicode code points (a surrogate pair is one character). Lossless for
 * text whose characters are all in the vocabulary: `decode(encode(text)) === text`. Others become
 * `<unk>` (or an error without it); `<unk>` decodes to U+FFFD and other specials to ''.
 */
export class CharTokenizer implements Tokenizer {
  readonly kind = 'char';
  private readonly bmp = new Int32Array(65536).fill(-1);
  private readonly astral = new Map<number, number>();
  private readonly unkId: number;
  private readonly decodeTable: string[];

  constructor(readonly vocabulary: Vocabulary) {
    this.unkId = vocabulary.unkId;
    this.decodeTable = vocabulary.tokens.map((t, id) => {
      const cp = t.codePointAt(0)!;
      if (t.length === (cp > 0xffff ? 2 : 1)) {
        if (cp <= 0xffff) this.bmp[cp] = id;
        else this.astral.set(cp, id);
        return t;
      }
      return id === this.unkId ? '\ufffd' : '';
    });
  }

  get vocabSize(): number {
    return this.vocabulary.size;
  }

  get hash(): string {
    return this.vocabulary.hash;
  }

  encode(text: string): Int32Array {
    const out = new TokenBuffer(Math.max(16, text.length));
    this.streamEncoder(out).write(text);
    return out.toArray();
  }

  decode(ids: ArrayLike<number>): string {
    const parts: string[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(Number.isInteger(id) && id >= 0 && id < this.decodeTable.length)) {
        throw new DataError(`CharTokenizer.decode: id ${id} out of range [0, ${this.decodeTable.length})`);
      }
      parts[i] = this.decodeTable[id];
    }
    return parts.join('');
  }

  streamEncoder(out: TokenBuffer): StreamEncoder {
    const { bmp, astral, unkId } = this;
    return {
      write(text: string) {
        const n = text.length;
        for (let i = 0; i < n; i++) {
          let c = text.charCodeAt(i);
          let id: number;
          if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
            const lo = text.charCodeAt(i + 1);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              c = (c - 0xd800) * 0x400 + (lo - 0xdc00) + 0x10000;
              i++;
            }
          }
          id = c <= 0xffff ? bmp[c] : astral.get(c) ?? -1;
          if (id < 0) {
            if (unkId < 0) throw new DataError(`CharTokenizer.encode: character U+${c.toString(16).toUpperCase().padStart(4, '0')} is not in the vocabulary, which has no '${UNK}'`);
            id = unkId;
          }
          out.push(id);
        }
      },
      endFile() {},
    };
  }
}
