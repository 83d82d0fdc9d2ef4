// Data pipeline benchmark: counts and encodes a generated text file and prints MB/s and peak RSS.
//
//   pnpm bench:data                       # 1 GB generated corpus
//   pnpm bench:data -- --size=200MB       # quicker
//   pnpm bench:data -- --size=1GB --json=bench-data.json --data=../shared/data
//
// Targets (issue 3): at least 30 MB/s for counting and for encoding, peak RSS under 300 MB whatever
// the corpus size. The corpus is generated into a temp folder from a Zipf-distributed word list
// and deleted afterwards.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildVocabulary, encodeCorpus, progressPrinter, Rng, TokenFile, WordTokenizer } from '@loom/data';
import { parseOptions } from './lib/cli.js';

const defaults = {
  size: '1GB', // corpus size: a number with B, KB, MB or GB (powers of 1000)
  words: 50_000, // distinct words in the generated word list
  json: '', // write the measurements here as a JSON array
  data: '', // optional: the shared data folder, to add WikiText-2 as a workload
  tmp: os.tmpdir(), // where the corpus and token file are written
  progress: true, // progress lines on stderr
};
type Config = typeof defaults;

function parseArgs(argv: string[]): Config {
  return parseOptions('bench-data', defaults, argv, { validate: (_, check) => check.int(1, 'words') });
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(s);
  if (!m) throw new Error(`bench-data: --size must look like 100MB or 1GB, got '${s}'`);
  const unit = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[(m[2] ?? 'B').toUpperCase() as 'B']!;
  return Math.round(Number(m[1]) * unit);
}

/** Writes `bytes` of text: lines of 5-40 words drawn from a Zipf(1) distribution over pseudo-words. */
function generateCorpus(file: string, bytes: number, nWords: number): void {
  const rng = new Rng(1234);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const words: Buffer[] = [];
  const seen = new Set<string>();
  while (words.length < nWords) {
    const len = 1 + rng.int(4) + rng.int(6);
    let w = '';
    for (let i = 0; i < len; i++) w += letters[Math.min(25, Math.floor(-Math.log(1 - rng.uniform()) * 6))];
    if (!seen.has(w)) {
      seen.add(w);
      words.push(Buffer.from(w + ' '));
    }
  }
  // A 2^20-entry quantile table turns a Zipf draw into one array lookup.
  const table = new Int32Array(1 << 20);
  let h = 0;
  for (let k = 1; k <= nWords; k++) h += 1 / k;
  let cum = 0;
  let k = 0;
  for (let j = 0; j < table.length; j++) {
    const q = (j + 0.5) / table.length;
    while (k < nWords - 1 && cum + 1 / (k + 1) / h < q) cum += 1 / (++k) / h;
    table[j] = k;
  }
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.allocUnsafe(1 << 22);
  let written = 0;
  let o = 0;
  let lineLeft = 5 + rng.int(36);
  while (written + o < bytes) {
    const w = words[table[rng.nextUint32() >>> 12]];
    if (o + w.length + 1 > buf.length) {
      fs.writeSync(fd, buf, 0, o);
      written += o;
      o = 0;
    }
    w.copy(buf, o);
    o += w.length;
    if (--lineLeft === 0) {
      buf[o - 1] = 10; // the line ends with '\n' instead of the word's trailing space
      lineLeft = 5 + rng.int(36);
    }
  }
  fs.writeSync(fd, buf, 0, o);
  fs.closeSync(fd);
}

interface Measurement {
  workload: string;
  mode: 'count' | 'encode';
  mb: number;
  seconds: number;
  mbPerSec: number;
  peakRssMb: number;
}

const peakRssMb = () => process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB

function measure(workload: string, files: string[], tmp: string, cfg: Config): Measurement[] {
  const bytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
  const onProgress = cfg.progress ? progressPrinter(workload) : undefined;
  const out: Measurement[] = [];
  let t = performance.now();
  const vocab = buildVocabulary(files, { onProgress });
  let s = (performance.now() - t) / 1000;
  out.push({ workload, mode: 'count', mb: bytes / 1e6, seconds: s, mbPerSec: bytes / 1e6 / s, peakRssMb: peakRssMb() });
  const tokFile = path.join(tmp, 'corpus.tok');
  t = performance.now();
  const r = encodeCorpus(files, tokFile, new WordTokenizer(vocab), { onProgress });
  s = (performance.now() - t) / 1000;
  out.push({ workload, mode: 'encode', mb: bytes / 1e6, seconds: s, mbPerSec: bytes / 1e6 / s, peakRssMb: peakRssMb() });
  const tf = TokenFile.open(tokFile, { vocabulary: vocab });
  console.log(`${workload}: ${vocab.size} words, ${r.tokens} tokens, ${r.bytesPerToken}-byte ids, token file ${(fs.statSync(tokFile).size / 1e6).toFixed(1)} MB`);
  tf.close();
  fs.rmSync(tokFile);
  return out;
}

function main(): void {
  const cfg = parseArgs(process.argv.slice(2));
  const bytes = parseSize(cfg.size);
  console.log('bench-data config:', JSON.stringify(cfg));
  const tmp = fs.mkdtempSync(path.join(cfg.tmp, 'loom-bench-data-'));
  const results: Measurement[] = [];
  try {
    if (cfg.data) {
      const wt = path.join(cfg.data, 'wikitext-2', 'train.txt');
      if (!fs.existsSync(wt)) throw new Error(`bench-data: --data: ${wt} not found`);
      results.push(...measure('wikitext-2 train', [wt], tmp, cfg));
    }
    const corpus = path.join(tmp, 'corpus.txt');
    let t = performance.now();
    generateCorpus(corpus, bytes, cfg.words);
    console.log(`generated ${(bytes / 1e6).toFixed(0)} MB in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    results.push(...measure(`generated ${cfg.size}`, [corpus], tmp, cfg));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log('\n| workload | mode | MB | s | MB/s | peak RSS MB |\n|---|---|---:|---:|---:|---:|');
  for (const m of results) {
    console.log(`| ${m.workload} | ${m.mode} | ${m.mb.toFixed(1)} | ${m.seconds.toFixed(2)} | ${m.mbPerSec.toFixed(1)} | ${m.peakRssMb.toFixed(0)} |`);
  }
  console.log('(peak RSS is the process peak so far, measured after each step)');
  if (cfg.json) fs.writeFileSync(cfg.json, JSON.stringify(results.map(({ workload, mode, mbPerSec, peakRssMb }) => ({ workload, mode, mbPerSec, peakRssMb })), null, 2) + '\n');
}

main();
