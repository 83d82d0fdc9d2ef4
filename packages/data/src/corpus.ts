import { DataError } from './errors.js';
import type { ProgressCallback } from './progress.js';
import { forEachTextChunk } from './text.js';
import { TokenFileWriter } from './token-file.js';
import { TokenBuffer, WordTokenizer, type Tokenizer } from './tokenizers.js';
import { ByteTable, countWordBytes, encodeWordBytes } from './word-bytes.js';
import { EOS, TokenCounts, UNK, Vocabulary, type VocabularyOptions } from './vocabulary.js';

export interface CountOptions {
  /** 'word' (whitespace-split words and `<eos>` per line) or 'char' (Unicode code points). Default 'word'. */
  level?: 'word' | 'char';
  /** Word level: lowercase words before counting (default false). */
  lowercase?: boolean;
  /** Word level: count one `<eos>` per line (default true). */
  eos?: boolean;
  onProgress?: ProgressCallback;
  /** Bytes per read (default 1 MiB). */
  chunkBytes?: number;
}

/**
 * Counts tokens in one streaming pass over the files, with the same splitting as the tokenizers.
 * Memory is bounded by the number of distinct tokens, not by the corpus size.
 */
export function countTokens(files: string | readonly string[], options: CountOptions = {}): TokenCounts {
  const list = typeof files === 'string' ? [files] : files;
  const level = options.level ?? 'word';
  const counts = new TokenCounts();
  if (level === 'char') {
    // One slot per code point (8.5 MiB): faster than a Map and still independent of corpus size.
    const cp = new Float64Array(0x110000);
    forEachTextChunk(
      list,
      (text) => {
        const n = text.length;
        for (let i = 0; i < n; i++) {
          const c = text.codePointAt(i)!;
          if (c > 0xffff) i++;
          cp[c]++;
        }
      },
      () => {},
      { onProgress: options.onProgress, phase: 'count', chunkBytes: options.chunkBytes },
    );
    for (let c = 0; c < cp.length; c++) if (cp[c] > 0) counts.add(String.fromCodePoint(c), cp[c]);
    return counts;
  }
  if (level !== 'word') throw new DataError(`countTokens: options.level must be 'word' or 'char', got '${String(level)}'`);
  const lowercase = options.lowercase ?? false;
  const eos = options.eos ?? true;
  const { table, lines } = countWordBytes(list, { lowercase, onProgress: options.onProgress, phase: 'count', chunkBytes: options.chunkBytes });
  for (let k = 0; k < table.size; k++) counts.add(table.key(k), table.values[k]);
  if (eos && lines > 0) counts.add(EOS, lines);
  return counts;
}

/** The string path of countTokens at word level: kept as the reference the byte path is tested against. */
export function countWordsReference(files: readonly string[], options: CountOptions = {}): TokenCounts {
  const counts = new TokenCounts();
  const lowercase = options.lowercase ?? false;
  const eos = options.eos ?? true;
  let eosCount = 0;
  let openLine = false;
  forEachTextChunk(
    files,
    (text) => {
      const n = text.length;
      let start = -1;
      for (let i = 0; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c <= 32 ? c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31) : c >= 0x85 && isSpaceHigh(c)) {
          if (start >= 0) {
            const w = text.slice(start, i);
            counts.add(lowercase ? w.toLowerCase() : w);
            start = -1;
          }
          if (c === 10) {
            eosCount++;
            openLine = false;
          } else openLine = true;
        } else {
          if (start < 0) start = i;
          openLine = true;
        }
      }
      if (start >= 0) {
        const w = text.slice(start);
        counts.add(lowercase ? w.toLowerCase() : w);
      }
    },
    () => {
      if (openLine) eosCount++;
      openLine = false;
    },
    { chunkBytes: options.chunkBytes },
  );
  if (eos && eosCount > 0) counts.add(EOS, eosCount);
  return counts;
}

function isSpaceHigh(c: number): boolean {
  return (
    c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}

/**
 * Counts the corpus and builds its vocabulary. Specials default to [`<unk>`, `<eos>`] for words and
 * [`<unk>`] for characters. An empty corpus is refused.
 */
export function buildVocabulary(files: string | readonly string[], options: CountOptions & VocabularyOptions = {}): Vocabulary {
  const counts = countTokens(files, options);
  if (counts.total === 0) throw new DataError(`buildVocabulary: empty corpus: no tokens in ${describeFiles(files)}`);
  const eos = options.eos ?? true;
  const specials = options.specials ?? ((options.level ?? 'word') === 'char' || !eos ? [UNK] : [UNK, EOS]);
  return Vocabulary.fromCounts(counts, { ...options, specials });
}

export interface EncodeCorpusOptions {
  onProgress?: ProgressCallback;
  chunkBytes?: number;
  /**
   * Encode words through WordTokenizer's string encoder instead of the byte-level fast path (the
   * reference the fast path is tested against). Default false.
   */
  stringPath?: boolean;
}

export interface EncodeCorpusResult {
  path: string;
  tokens: number;
  bytesPerToken: 2 | 4;
}

/**
 * Encodes text files (in the order given) into one token file, streaming: memory holds one read
 * chunk and one buffer of ids, whatever the corpus size. An empty result is refused and no file is
 * left behind.
 */
export function encodeCorpus(
  files: string | readonly string[],
  outPath: string,
  tokenizer: Tokenizer,
  options: EncodeCorpusOptions = {},
): EncodeCorpusResult {
  const list = typeof files === 'string' ? [files] : files;
  const writer = new TokenFileWriter(outPath, tokenizer.vocabSize, tokenizer.hash);
  try {
    const out = new TokenBuffer(1 << 18, (ids) => writer.write(ids));
    const pass = { onProgress: options.onProgress, phase: 'encode' as const, chunkBytes: options.chunkBytes };
    if (tokenizer instanceof WordTokenizer && !options.stringPath) {
      const v = tokenizer.vocabulary;
      const table = new ByteTable();
      const enc = new TextEncoder();
      v.tokens.forEach((t, id) => {
        const b = enc.encode(t);
        table.insert(b, 0, b.length, ByteTable.hash(b, 0, b.length), id);
      });
      encodeWordBytes(list, table, out, { eos: tokenizer.eos ? v.eosId : -1, unk: v.unkId }, { ...pass, lowercase: tokenizer.lowercase });
    } else {
      const enc = tokenizer.streamEncoder(out);
      forEachTextChunk(list, (text) => enc.write(text), () => enc.endFile(), pass);
    }
    out.flush();
    if (writer.count === 0) throw new DataError(`encodeCorpus: empty corpus: no tokens in ${describeFiles(files)}`);
  } catch (e) {
    writer.abort();
    throw e;
  }
  const tokens = writer.close();
  return { path: outPath, tokens, bytesPerToken: writer.bytesPerToken };
}

function describeFiles(files: string | readonly string[]): string {
  if (typeof files === 'string') return files;
  if (files.length === 0) return 'an empty file list';
  return files.length === 1 ? files[0] : `${files.length} files (${files[0]}, …)`;
}
