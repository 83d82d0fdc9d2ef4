import { describe, expect, it } from 'vitest';
import {
  BpeTokenizer, countTokens, DataError, decodeHeader, encodeCorpus, WordTokenizer, parseBabi, parseParallel, parseTrees, parseTsvPairs, Rng, TokenFile, Vocabulary,
} from '@loom/data';
import { tempDir, writeFile } from './helpers.js';

// Every reader, fed random or truncated bytes, must return or throw a DataError: any other exception
// (TypeError, RangeError from recursion) fails. Each case runs synchronously on small inputs, so a
// hang would show as the test timing out.

const dir = tempDir();
const rng = new Rng(2024);
const enc = new TextEncoder();

const SAMPLES: Record<string, string> = {
  babi: '1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n1 Sandra got the milk.\n2 What is Sandra carrying?\tmilk,apple\t1\n',
  trees: "(3 (2 It) (4 (2 's) (3 good)))\n(1 (2 (2 a) (2 b)) (0 bad))\n",
  tsv: 'Go.\tVa !\nRun!\tCours !\tCC-BY 2.0 (France)\n',
  vocab: '<unk>\t0\n<eos>\t5\nthe\t4\n\\n\t2\n',
  merges: '#loom-bpe v1\n116 104\n256 101\n32 257\n',
};
// Bytes that steer random inputs towards each format's delimiters.
const ALPHABET = enc.encode('0123456789 \t\n\r()\\#,.?abcé🙂');

/** Random bytes, a truncated or mutated sample, or random format characters. */
function variants(sample: string, count: number): Uint8Array[] {
  const bytes = enc.encode(sample);
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const mode = k % 4;
    if (mode === 0) out.push(Uint8Array.from({ length: rng.int(200) }, () => rng.int(256)));
    else if (mode === 1) out.push(bytes.slice(0, rng.int(bytes.length + 1)));
    else if (mode === 2) {
      const m = bytes.slice();
      for (let j = 0; j < 1 + rng.int(4); j++) m[rng.int(m.length)] = rng.uniform() < 0.5 ? rng.int(256) : ALPHABET[rng.int(ALPHABET.length)];
      out.push(m.slice(0, rng.uniform() < 0.3 ? rng.int(m.length) : m.length));
    } else out.push(Uint8Array.from({ length: rng.int(120) }, () => ALPHABET[rng.int(ALPHABET.length)]));
  }
  return out;
}

function survives(read: (bytes: Uint8Array) => unknown, bytes: Uint8Array): 'ok' | 'error' {
  try {
    read(bytes);
    return 'ok';
  } catch (e) {
    if (!(e instanceof DataError)) throw new Error(`not a DataError for input ${JSON.stringify(Array.from(bytes))}: ${String(e)}`);
    expect(e.message.length).toBeGreaterThan(10);
    return 'error';
  }
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

const READERS: [string, string, (b: Uint8Array) => unknown][] = [
  ['parseBabi', 'babi', (b) => parseBabi(b, 'qa.txt')],
  ['parseTrees', 'trees', (b) => parseTrees(b, { file: 'dev.txt' })],
  ['parseTsvPairs', 'tsv', (b) => parseTsvPairs(b, 'fra.txt')],
  ['parseParallel', 'tsv', (b) => parseParallel(b, SAMPLES.tsv)],
  ['Vocabulary.fromText', 'vocab', (b) => Vocabulary.fromText(text(b))],
  ['BpeTokenizer.fromText', 'merges', (b) => BpeTokenizer.fromText(text(b))],
];

describe('fuzzing: random and truncated bytes give a result or a DataError', () => {
  for (const [name, sample, read] of READERS) {
    it(name, () => {
      const outcomes = variants(SAMPLES[sample], 400).map((b) => survives(read, b));
      // The sample itself parses, and the fuzzing reaches both outcomes.
      expect(survives(read, enc.encode(SAMPLES[sample]))).toBe('ok');
      expect(outcomes).toContain('error');
    });
  }

  it('file readers: corpus counting and encoding, vocabulary and merges loaders, token files', () => {
    const vocab = Vocabulary.fromText(SAMPLES.vocab);
    const good = new Uint8Array(64 + 8);
    good.set(enc.encode('LOOMTOK1'));
    const view = new DataView(good.buffer);
    view.setUint32(8, 1, true);
    view.setUint32(12, 2, true);
    view.setBigUint64(16, 4n, true);
    view.setUint32(24, vocab.size, true);
    good.set(Buffer.from(vocab.hash, 'hex'), 32);
    expect(decodeHeader(good, good.length).count).toBe(4);
    for (let k = 0; k < 200; k++) {
      const m = good.slice(0, rng.uniform() < 0.3 ? rng.int(good.length + 1) : good.length);
      for (let j = 0; j < rng.int(3); j++) m[rng.int(m.length)] = rng.int(256);
      const f = writeFile(dir, `h${k}.tok`, m);
      survives(() => {
        const tf = TokenFile.open(f);
        try {
          tf.readAll();
        } finally {
          tf.close();
        }
      }, m);
      if (k < 50) {
        const corpus = variants(SAMPLES.babi, 1)[0];
        survives(() => countTokens(writeFile(dir, `c${k}.txt`, corpus), { chunkBytes: 7 }), corpus);
        survives(() => encodeCorpus(writeFile(dir, `e${k}.txt`, corpus), `${dir}/e${k}.tok`, new WordTokenizer(vocab), { chunkBytes: 5 }), corpus);
        survives(() => Vocabulary.load(writeFile(dir, `v${k}.txt`, m)), m);
        survives(() => BpeTokenizer.load(writeFile(dir, `m${k}.txt`, m)), m);
      }
    }
  });
});
