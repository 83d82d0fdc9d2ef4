import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataError, LaneBatcher, TokenFile, TokenFileWriter, Vocabulary, type Window } from '@loom/data';
import { tempDir, writeFile } from './helpers.js';

const dir = tempDir();
const iota = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

/** Concatenates shard windows along B: row t of the result is row t of each shard in order. */
function concatLanes(parts: Window[]): Int32Array[] {
  const T = parts[0].T;
  const B = parts.reduce((a, p) => a + p.B, 0);
  const inputs = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  for (let t = 0; t < T; t++) {
    let o = 0;
    for (const p of parts) {
      expect(p.T).toBe(T);
      inputs.set(p.inputs.subarray(t * p.B, (t + 1) * p.B), t * B + o);
      targets.set(p.targets.subarray(t * p.B, (t + 1) * p.B), t * B + o);
      o += p.B;
    }
  }
  return [inputs, targets];
}

describe('LaneBatcher: PyTorch batchify and get_batch', () => {
  it('cuts lanes and windows as word_language_model does, dropping the n mod B tail', () => {
    // 26 tokens, B = 4: nbatch = 6, tokens 24 and 25 dropped. Lane b is [6b, 6b + 6).
    const lb = new LaneBatcher({ tokens: iota(26), batchSize: 4, bptt: 2 });
    expect(lb.laneLength).toBe(6);
    // Windows start at 0, 2, 4 with T = min(2, 6 - 1 - start): 2, 2, 1.
    expect(lb.numWindows()).toBe(3);
    const ws = [...lb.windows()];
    expect(ws.map((w) => w.T)).toEqual([2, 2, 1]);
    // [T, B] time-major: row t holds the B lanes' tokens at time t.
    expect(Array.from(ws[0].inputs)).toEqual([0, 6, 12, 18, 1, 7, 13, 19]);
    expect(Array.from(ws[0].targets)).toEqual([1, 7, 13, 19, 2, 8, 14, 20]);
    expect(Array.from(ws[2].inputs)).toEqual([4, 10, 16, 22]);
    expect(Array.from(ws[2].targets)).toEqual([5, 11, 17, 23]);
  });

  it('covers every lane token exactly once as an input (except each lane\'s last)', () => {
    const n = 1003;
    const B = 7;
    const lb = new LaneBatcher({ tokens: iota(n), batchSize: B, bptt: 10 });
    const seen = new Int32Array(n);
    for (const w of lb.windows()) for (const x of w.inputs) seen[x]++;
    const nbatch = Math.floor(n / B);
    for (let i = 0; i < n; i++) {
      const inLane = i < nbatch * B && i % nbatch !== nbatch - 1;
      expect(seen[i]).toBe(inLane ? 1 : 0);
    }
  });

  for (const variable of [false, true]) {
    it(`shards' union equals the single-process batch for N = 1, 2, 3, 4${variable ? ' (variable length)' : ''}`, () => {
      for (const n of [97, 240, 1001]) {
        const B = 12; // divisible by 1, 2, 3, 4
        const variableLength = variable ? { seed: 42 } : undefined;
        const whole = new LaneBatcher({ tokens: iota(n), batchSize: B, bptt: 6, variableLength });
        for (const N of [1, 2, 3, 4]) {
          const shards = Array.from({ length: N }, (_, index) => new LaneBatcher({ tokens: iota(n), batchSize: B, bptt: 6, shard: { index, count: N }, variableLength }));
          expect(shards.map((s) => s.lanes)).toEqual(Array(N).fill(B / N));
          for (const epoch of [0, 1]) {
            expect(shards.map((s) => s.numWindows(epoch))).toEqual(Array(N).fill(whole.numWindows(epoch)));
            for (let i = 0; i < whole.numWindows(epoch); i++) {
              const w = whole.window(i, epoch);
              const [inputs, targets] = concatLanes(shards.map((s) => s.window(i, epoch)));
              expect(inputs).toEqual(w.inputs);
              expect(targets).toEqual(w.targets);
            }
          }
        }
      }
    });
  }

  it('refuses a batch size the workers do not divide, naming both', () => {
    expect(() => new LaneBatcher({ tokens: iota(100), batchSize: 10, bptt: 5, shard: { index: 0, count: 3 } })).toThrow(
      /batchSize 10 is not divisible by 3 workers/,
    );
    expect(() => new LaneBatcher({ tokens: iota(100), batchSize: 2, bptt: 5, shard: { index: 0, count: 3 } })).toThrow(/3 workers but batchSize 2/);
  });

  it('with unevenShards, gives the first B mod N shards one extra lane, and the union still matches', () => {
    for (const [B, N] of [[10, 3], [7, 4], [5, 2], [6, 4]]) {
      const whole = new LaneBatcher({ tokens: iota(523), batchSize: B, bptt: 7 });
      const shards = Array.from({ length: N }, (_, index) => new LaneBatcher({ tokens: iota(523), batchSize: B, bptt: 7, shard: { index, count: N }, unevenShards: true }));
      const base = Math.floor(B / N);
      expect(shards.map((s) => s.lanes)).toEqual(Array.from({ length: N }, (_, k) => base + (k < B % N ? 1 : 0)));
      expect(shards.map((s) => s.laneStart)).toEqual(shards.map((_, k) => k * base + Math.min(k, B % N)));
      for (let i = 0; i < whole.numWindows(); i++) {
        const [inputs, targets] = concatLanes(shards.map((s) => s.window(i)));
        expect(inputs).toEqual(whole.window(i).inputs);
        expect(targets).toEqual(whole.window(i).targets);
      }
    }
  });

  it('variable-length windows follow AWD-LSTM, are seeded, differ by epoch and tile the lanes', () => {
    const lb = new LaneBatcher({ tokens: iota(20_000), batchSize: 4, bptt: 70, variableLength: { seed: 1 } });
    const again = new LaneBatcher({ tokens: iota(20_000), batchSize: 4, bptt: 70, variableLength: { seed: 1 } });
    const spans = (b: LaneBatcher, e: number) => Array.from({ length: b.numWindows(e) }, (_, i) => b.span(i, e));
    const s0 = spans(lb, 0);
    expect(spans(again, 0)).toEqual(s0);
    expect(spans(lb, 1)).not.toEqual(s0);
    let pos = 0;
    for (const s of s0) {
      expect(s.position).toBe(pos);
      expect(s.T).toBeGreaterThanOrEqual(Math.min(5, lb.laneLength - 1 - pos));
      pos += s.T;
    }
    expect(pos).toBe(lb.laneLength - 1);
    const mean = s0.slice(0, -1).reduce((a, s) => a + s.T, 0) / (s0.length - 1);
    expect(mean).toBeGreaterThan(60);
    expect(mean).toBeLessThan(72);
  });

  it('resumes at any window index and epoch with identical windows', () => {
    const lb = new LaneBatcher({ tokens: iota(5000), batchSize: 8, bptt: 35, variableLength: { seed: 3 } });
    const all = [...lb.windows(2)];
    const resumed = new LaneBatcher({ tokens: iota(5000), batchSize: 8, bptt: 35, variableLength: { seed: 3 } });
    const tail = [...resumed.windows(2, 5)];
    expect(tail.map((w) => w.windowIndex)).toEqual(all.slice(5).map((w) => w.windowIndex));
    expect(tail.map((w) => Array.from(w.inputs))).toEqual(all.slice(5).map((w) => Array.from(w.inputs)));
    expect(() => lb.window(all.length, 2)).toThrow(DataError);
  });

  it('refuses too few tokens and bad options by name', () => {
    expect(() => new LaneBatcher({ tokens: iota(0), batchSize: 1, bptt: 1 })).toThrow(/empty corpus/);
    expect(() => new LaneBatcher({ tokens: iota(7), batchSize: 4, bptt: 1 })).toThrow(/7 tokens give 1 per lane for batchSize 4/);
    expect(() => new LaneBatcher({ tokens: iota(70), batchSize: 0, bptt: 1 })).toThrow(/options.batchSize must be a positive integer/);
    expect(() => new LaneBatcher({ tokens: iota(70), batchSize: 2, bptt: 1, shard: { index: 2, count: 2 } })).toThrow(/options.shard.index/);
  });
});

describe('token files', () => {
  const vocab = new Vocabulary(['<unk>', '<eos>', 'a', 'b', 'c']);

  function writeTokens(name: string, ids: Int32Array, vocabSize = vocab.size, hash = vocab.hash): string {
    const p = `${dir}/${name}`;
    const w = new TokenFileWriter(p, vocabSize, hash);
    for (let i = 0; i < ids.length; i += 100) w.write(ids.subarray(i, i + 100));
    w.close();
    return p;
  }

  it('reads any window by offset, in uint16 or uint32 by vocabulary size', () => {
    const ids = Int32Array.from({ length: 1000 }, (_, i) => (i * 7) % 5);
    const f = TokenFile.open(writeTokens('small.tok', ids), { vocabulary: vocab });
    expect(f.header.bytesPerToken).toBe(2);
    expect(fs.statSync(f.path).size).toBe(64 + 2000);
    expect(f.read(123, 50)).toEqual(ids.subarray(123, 173));
    const out = new Int32Array(60);
    expect(f.read(950, 50, out)).toEqual(ids.subarray(950));
    expect(() => f.read(990, 20)).toThrow(/window \[990, 990\+20\) out of range \[0, 1000\)/);
    f.close();

    const big = Int32Array.from({ length: 300 }, (_, i) => i * 300);
    const g = TokenFile.open(writeTokens('big.tok', big, 100_000));
    expect(g.header.bytesPerToken).toBe(4);
    expect(g.readAll()).toEqual(big);
    g.close();
  });

  it('refuses the wrong vocabulary, a bad magic, a truncated file and ids out of range', () => {
    const p = writeTokens('v.tok', Int32Array.from([2, 3, 4, 1]));
    const other = new Vocabulary(['<unk>', '<eos>', 'a', 'b', 'd']);
    expect(() => TokenFile.open(p, { vocabulary: other })).toThrow(/vocabulary mismatch/);
    const bytes = fs.readFileSync(p);
    const bad = Buffer.from(bytes);
    bad[0] = 0x58;
    expect(() => TokenFile.open(writeFile(dir, 'magic.tok', bad))).toThrow(/not a token file: magic "XOOMTOK1"/);
    expect(() => TokenFile.open(writeFile(dir, 'trunc.tok', bytes.subarray(0, bytes.length - 1)))).toThrow(/truncated or incomplete/);
    const range = Buffer.from(bytes);
    range[64] = 9; // first id becomes 9 with a 5-token vocabulary
    const f = TokenFile.open(writeFile(dir, 'range.tok', range));
    expect(() => f.read(0, 1)).toThrow(/id 9 at token 0 out of range \[0, 5\)/);
    f.close();
    const w = new TokenFileWriter(`${dir}/w.tok`, 5, vocab.hash);
    expect(() => w.write(Int32Array.of(5))).toThrow(/id 5 out of range/);
    w.abort();
    expect(fs.existsSync(`${dir}/w.tok.partial`)).toBe(false);
  });

  it('feeds the lane batcher lazily with the same windows as memory', () => {
    const ids = Int32Array.from({ length: 4099 }, (_, i) => (i * 31) % 5);
    const f = TokenFile.open(writeTokens('lanes.tok', ids));
    const fromFile = new LaneBatcher({ tokens: f, batchSize: 6, bptt: 35, shard: { index: 1, count: 2 } });
    const fromMem = new LaneBatcher({ tokens: ids, batchSize: 6, bptt: 35, shard: { index: 1, count: 2 } });
    expect(fromFile.numWindows()).toBe(fromMem.numWindows());
    for (let i = 0; i < fromMem.numWindows(); i++) expect(fromFile.window(i).inputs).toEqual(fromMem.window(i).inputs);
    f.close();
  });
});
