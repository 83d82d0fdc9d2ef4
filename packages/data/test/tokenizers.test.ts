import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BpeTokenizer, buildVocabulary, CharTokenizer, countTokens, countWordsReference, DataError, encodeCorpus, EOS, forEachTextChunk, progressPrinter, Rng,
  TokenCounts, TokenFile, UNK, Vocabulary, WordTokenizer,
} from '@loom/data';
import { tempDir, writeFile } from './helpers.js';

const dir = tempDir();

function readTokens(file: string): Int32Array {
  const tf = TokenFile.open(file);
  try {
    return tf.readAll();
  } finally {
    tf.close();
  }
}

// Two lines in WikiText's exact layout: a leading space, tokens, " \n"; an empty line is " \n".
const WIKI = ' = Robert <unk> = \n \n Robert <unk> is an English film , television and theatre actor . \n';

describe('word tokenizer', () => {
  it('splits on whitespace and ends each line with <eos>, as word_language_model does', () => {
    const v = buildVocabulary(writeFile(dir, 'wiki.txt', WIKI));
    const tok = new WordTokenizer(v);
    const ids = tok.encode(WIKI);
    const words = Array.from(ids, (i) => v.token(i));
    expect(words).toEqual(['=', 'Robert', '<unk>', '=', EOS, EOS, 'Robert', '<unk>', 'is', 'an', 'English', 'film', ',', 'television', 'and', 'theatre', 'actor', '.', EOS]);
    expect(tok.decode(ids)).toBe('= Robert <unk> =\n\nRobert <unk> is an English film , television and theatre actor .\n');
    expect(tok.encode(tok.decode(ids))).toEqual(ids);
  });

  it('gives the same ids for CRLF, a missing final newline and Unicode spaces', () => {
    const v = buildVocabulary(writeFile(dir, 'w2.txt', 'a b\nc\n'));
    const tok = new WordTokenizer(v);
    const want = tok.encode('a b\nc\n');
    expect(tok.encode('a b\r\nc\r\n')).toEqual(want);
    expect(tok.encode('a b\nc')).toEqual(want);
    expect(tok.encode('  a\u00a0\u3000b\t\nc  \n')).toEqual(want);
  });

  it('maps unknown words to <unk>, and refuses them without <unk>', () => {
    const v = new Vocabulary([UNK, EOS, 'the']);
    expect(Array.from(new WordTokenizer(v).encode('the cat\n'))).toEqual([2, 0, 1]);
    const noUnk = new Vocabulary([EOS, 'the']);
    expect(() => new WordTokenizer(noUnk).encode('the cat\n')).toThrow(/word 'cat' is not in the vocabulary/);
  });

  it('lowercases when asked', () => {
    const f = writeFile(dir, 'case.txt', 'The the THE\n');
    const v = buildVocabulary(f, { lowercase: true });
    expect(v.tokens).toEqual([UNK, EOS, 'the']);
    expect(v.counts).toEqual([0, 1, 3]);
    expect(Array.from(new WordTokenizer(v, { lowercase: true }).encode('ThE\n'))).toEqual([2, 1]);
  });

  it('refuses decoding an id out of range by name', () => {
    const tok = new WordTokenizer(new Vocabulary([UNK, EOS]));
    expect(() => tok.decode([0, 2])).toThrow(DataError);
    expect(() => tok.decode([0, 2])).toThrow(/id 2 out of range \[0, 2\)/);
  });
});

describe('character tokenizer', () => {
  const text = 'First Citizen:\r\nBefore we proceed — café 🙂 𝔘\n\n';
  it('round-trips exactly, astral code points included', () => {
    const v = buildVocabulary(writeFile(dir, 'chars.txt', text), { level: 'char' });
    const tok = new CharTokenizer(v);
    const ids = tok.encode(text);
    expect(ids.length).toBe([...text].length);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.encode(tok.decode(ids))).toEqual(ids);
    expect(v.tokens[0]).toBe(UNK);
    expect(v.id('🙂')).toBeGreaterThan(0);
  });
  it('maps unseen characters to <unk>, decoded as U+FFFD', () => {
    const tok = new CharTokenizer(new Vocabulary([UNK, 'a']));
    expect(Array.from(tok.encode('ab'))).toEqual([1, 0]);
    expect(tok.decode([1, 0])).toBe('a\ufffd');
  });
});

describe('byte-level BPE', () => {
  const rng = new Rng(7);
  const words = ['the', 'cat', 'sat', 'on', 'mat', 'café', 'naïve', '日本語', '🙂'];
  let corpus = '';
  for (let i = 0; i < 3000; i++) corpus += words[rng.int(words.length)] + (rng.uniform() < 0.1 ? '\n' : ' ');
  const bpe = BpeTokenizer.train(corpus, { vocabSize: 300 });

  it('learns merges up to the target size (or until no pair repeats) and compresses', () => {
    expect(bpe.vocabSize).toBe(300 - 7); // this small corpus has no repeated pair left after 37 merges
    expect(BpeTokenizer.train(corpus, { vocabSize: 280 }).vocabSize).toBe(280);
    expect(bpe.encode(corpus).length).toBeLessThan(new TextEncoder().encode(corpus).length / 2);
  });

  it('is lossless for any well-formed string', () => {
    const samples = ['', ' ', '  leading and trailing  ', 'x'.repeat(200), 'tabs\tand\r\nCRLF', 'the cat 日本語🙂 sat\n\n', '\u0000\u00ff\uffff', '🙂'.repeat(70)];
    for (let k = 0; k < 50; k++) {
      let s = '';
      const len = rng.int(40);
      for (let i = 0; i < len; i++) s += String.fromCodePoint(rng.uniform() < 0.8 ? 32 + rng.int(95) : rng.int(0x10ffff - 0xe000) + 0xe000);
      samples.push(s);
    }
    for (const s of samples) {
      const ids = bpe.encode(s);
      expect(bpe.decode(ids)).toBe(s);
      expect(bpe.encode(bpe.decode(ids))).toEqual(ids);
    }
  });

  it('saves and loads its merges, and trains deterministically', () => {
    const f = writeFile(dir, 'merges.txt', '');
    bpe.save(f);
    const loaded = BpeTokenizer.load(f);
    expect(loaded.hash).toBe(bpe.hash);
    expect(loaded.encode(corpus)).toEqual(bpe.encode(corpus));
    expect(BpeTokenizer.train(corpus, { vocabSize: 300 }).toText()).toBe(bpe.toText());
    expect(fs.readFileSync(f, 'utf8').split('\n')[0]).toBe('#loom-bpe v1');
  });

  it('trains from files in the same way as from a string', () => {
    const f = writeFile(dir, 'bpe-corpus.txt', corpus);
    expect(BpeTokenizer.trainFiles(f, { vocabSize: 300 }).toText()).toBe(bpe.toText());
  });

  it('refuses malformed merges files by line', () => {
    expect(() => BpeTokenizer.fromText('#loom-bpe v1\n97 98\n300 1\n', 'm.txt')).toThrow(/m\.txt:3: merge 300 1 creates id 257/);
    expect(() => BpeTokenizer.fromText('nope\n', 'm.txt')).toThrow(/m\.txt:1: expected the header line/);
    expect(() => BpeTokenizer.fromText('#loom-bpe v1\n97 98\n97 98\n', 'm.txt')).toThrow(/already on line 2/);
  });
});

describe('vocabulary', () => {
  it('orders by count then string, specials first, deterministic whatever the input order', () => {
    const a = new TokenCounts();
    for (const t of ['b', 'a', 'c', 'a', 'b', 'd']) a.add(t);
    const b = new TokenCounts();
    for (const t of ['d', 'b', 'b', 'c', 'a', 'a']) b.add(t);
    const va = Vocabulary.fromCounts(a);
    expect(va.tokens).toEqual([UNK, EOS, 'a', 'b', 'c', 'd']);
    expect(Vocabulary.fromCounts(b).hash).toBe(va.hash);
  });

  it('applies minCount and maxSize, never dropping specials', () => {
    const c = new TokenCounts();
    for (const [t, n] of [['x', 5], ['y', 3], ['z', 1]] as const) c.add(t, n);
    expect(Vocabulary.fromCounts(c, { minCount: 2 }).tokens).toEqual([UNK, EOS, 'x', 'y']);
    expect(Vocabulary.fromCounts(c, { maxSize: 3 }).tokens).toEqual([UNK, EOS, 'x']);
    expect(() => Vocabulary.fromCounts(c, { maxSize: 1 })).toThrow(/options.maxSize/);
  });

  it('saves and loads as text with escapes, keeping the hash; CRLF accepted', () => {
    const v = new Vocabulary([UNK, '\n', ' ', '\t', '\\', 'a\\sb', 'é'], [0, 4, 3, 2, 1, 1, 1]);
    const f = writeFile(dir, 'vocab.txt', '');
    v.save(f);
    expect(fs.readFileSync(f, 'utf8')).toBe('<unk>\t0\n\\n\t4\n\\s\t3\n\\t\t2\n\\\\\t1\na\\\\sb\t1\né\t1\n');
    const w = Vocabulary.load(f);
    expect(w.tokens).toEqual(v.tokens);
    expect(w.hash).toBe(v.hash);
    expect(Vocabulary.fromText(v.toText().replace(/\n/g, '\r\n')).hash).toBe(v.hash);
  });

  it('refuses malformed vocabulary files naming the line', () => {
    expect(() => Vocabulary.fromText('a\t1\nb 2\n', 'v.txt')).toThrow(/v\.txt:2: expected `token<TAB>count`/);
    expect(() => Vocabulary.fromText('a\t1\na\t2\n', 'v.txt')).toThrow(/v\.txt:2: token 'a' already defined on line 1/);
    expect(() => Vocabulary.fromText('a\tx\n', 'v.txt')).toThrow(/v\.txt:1:3: expected a non-negative integer count/);
    expect(() => Vocabulary.fromText('', 'v.txt')).toThrow(/empty vocabulary/);
  });

  it('refuses an empty corpus by name', () => {
    const f = writeFile(dir, 'empty.txt', '');
    expect(() => buildVocabulary(f)).toThrow(/empty corpus/);
    expect(() => buildVocabulary(writeFile(dir, 'blank.txt', '   \t  '), { eos: false })).toThrow(/empty corpus/);
  });
});

describe('streaming', () => {
  // Small reads force UTF-8 sequences and words across chunk boundaries.
  const text = 'héllo wörld 🙂🙂 日本語 text\r\nnext   line\n\nlast line without newline';

  it('joins UTF-8 split across reads and cuts only at whitespace boundaries', () => {
    const f = writeFile(dir, 'split.txt', text);
    for (const chunkBytes of [1, 2, 3, 5, 7, 64]) {
      const parts: string[] = [];
      forEachTextChunk([f], (t) => parts.push(t), () => {}, { chunkBytes });
      expect(parts.join('')).toBe(text);
      for (const p of parts.slice(0, -1)) expect(/\S$/u.test(p)).toBe(true);
    }
  });

  it('counts and encodes the same whatever the read size', () => {
    const f = writeFile(dir, 'split2.txt', text);
    const whole = countTokens(f);
    for (const chunkBytes of [1, 3, 8]) {
      expect([...countTokens(f, { chunkBytes }).entries()].sort()).toEqual([...whole.entries()].sort());
    }
    expect(whole.get(EOS)).toBe(4);
    const v = Vocabulary.fromCounts(whole);
    for (const tok of [new WordTokenizer(v), new CharTokenizer(buildVocabulary(f, { level: 'char' })), BpeTokenizer.train(text, { vocabSize: 280 })]) {
      const out = writeFile(dir, `enc-${tok.kind}.tok`, '');
      encodeCorpus(f, out, tok, { chunkBytes: 3 });
      const tf = TokenFile.open(out, { vocabulary: tok });
      expect(tf.readAll()).toEqual(tok.encode(text));
      tf.close();
    }
  });

  it('the byte-level word path gives exactly the string path\'s counts and ids', () => {
    const tricky = '\ufeffThe ÉCOLE\u00a0école\u3000x\u2028y\u0085z \u2009Σίσυφος ΣΊΣΥΦΟΣ\r\n\u001fA\u000bb\n\n  \t\nİstanbul 🙂x a\u200bb end';
    const f = writeFile(dir, 'tricky.txt', tricky);
    for (const lowercase of [false, true]) {
      const ref = countWordsReference([f], { lowercase });
      const sorted = (c: TokenCounts) => [...c.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1));
      for (const chunkBytes of [1, 2, 5, 1 << 20]) {
        expect(sorted(countTokens(f, { lowercase, chunkBytes }))).toEqual(sorted(ref));
      }
      const tok = new WordTokenizer(Vocabulary.fromCounts(ref, { maxSize: 8 }), { lowercase });
      const fast = writeFile(dir, 'fast.tok', '');
      const slow = writeFile(dir, 'slow.tok', '');
      for (const chunkBytes of [1, 3, 1 << 20]) {
        encodeCorpus(f, fast, tok, { chunkBytes });
        encodeCorpus(f, slow, tok, { chunkBytes, stringPath: true });
        expect(readTokens(fast)).toEqual(readTokens(slow));
      }
      expect(readTokens(fast)).toEqual(tok.encode(tricky.slice(1)));
    }
  });

  it('refuses invalid UTF-8 naming the file', () => {
    const f = writeFile(dir, 'bad.txt', Uint8Array.from([0x61, 0x20, 0xc3, 0x28, 0x0a]));
    expect(() => countTokens(f)).toThrow(/bad\.txt: invalid UTF-8/);
    const t = writeFile(dir, 'trunc.txt', Uint8Array.from([0x61, 0x20, 0xe6, 0x97]));
    expect(() => countTokens(t)).toThrow(/trunc\.txt: invalid UTF-8/);
  });

  it('reports progress up to the total', () => {
    const f = writeFile(dir, 'prog.txt', 'a b c\n'.repeat(1000));
    const events: number[] = [];
    countTokens(f, { chunkBytes: 1000, onProgress: (e) => events.push(e.bytesDone) });
    expect(events.length).toBeGreaterThan(5);
    expect(events[events.length - 1]).toBe(6000);
  });
});

describe('progressPrinter', () => {
  it('rewrites one stderr-style line, rate-limited, and ends it when the phase completes', () => {
    let written = '';
    const stream = { write: (s: string) => ((written += s), true) } as unknown as NodeJS.WritableStream;
    const p = progressPrinter('wt2', { intervalMs: 60_000, stream });
    p({ phase: 'count', file: 'a', bytesDone: 1e6, bytesTotal: 4e6 });
    p({ phase: 'count', file: 'a', bytesDone: 2e6, bytesTotal: 4e6 }); // within the interval: skipped
    p({ phase: 'count', file: 'a', bytesDone: 4e6, bytesTotal: 4e6 });
    const lines = written.split('\r').filter(Boolean);
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(/^wt2 count: 1\.0 \/ 4\.0 MB \(25\.0%/);
    expect(lines[1]).toMatch(/100\.0%.*\n$/);
  });
});
