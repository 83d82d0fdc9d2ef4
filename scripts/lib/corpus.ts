/*
 * Corpus preparation: text files → vocabulary (or BPE merges) → token files for train / valid / test,
 * cached under <data.cache>/<hash>/ and reused by later runs.
 *
 * The cache key is the sha256 of the input files (absolute path, size and modification time of each, not
 * their content: hashing a many-GB corpus would cost as much as encoding it), the tokenizer options and
 * the split rule. A cached folder is reused only if its manifest matches and every token file opens with
 * the vocabulary's hash (TokenFile refuses any other); otherwise it is rebuilt. A folder is built under a
 * temporary name and renamed into place when complete, so an interrupted preparation is never reused.
 *
 * Everything streams (@loom/data reads 1 MiB chunks): memory is bounded by the vocabulary, not by the
 * corpus size, so data.train may be a folder or glob of any total size.
 *
 * Split rule when data.valid is '' (one text, e.g. Tiny Shakespeare): the training files are encoded as
 * one token stream of n tokens; the vocabulary is built from all of it; then
 *   train = tokens [0, n − v − t),  valid = [n − v − t, n − t),  test = [n − t, n)
 * with v = ⌊n · validFraction⌋ and t = ⌊n · testFraction⌋ (t = 0 when data.test names its own files).
 * When data.valid names files, the vocabulary is built from the training files only and words never seen
 * in training become <unk> (WikiText-2 and PTB are prepared so that none are).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BpeTokenizer, CharTokenizer, TokenFile, TokenFileWriter, Vocabulary, WordTokenizer, buildVocabulary, encodeCorpus,
  listTextFiles, progressPrinter, type ProgressCallback, type Tokenizer,
} from '@loom/data';
import { ConfigError, type DataConfig, type TokenizerKind } from './config.js';

/** Everything needed to rebuild the tokenizer: stored in the run folder and in every checkpoint. */
export interface TokenizerSpec {
  kind: TokenizerKind;
  /** The vocabulary file's text (char, word) or the merges file's text (bpe). */
  text: string;
  lowercase: boolean;
  eos: boolean;
}

export function makeTokenizer(spec: TokenizerSpec): Tokenizer {
  switch (spec.kind) {
    case 'char': return new CharTokenizer(Vocabulary.fromText(spec.text, '<char vocabulary>'));
    case 'word': return new WordTokenizer(Vocabulary.fromText(spec.text, '<word vocabulary>'), { lowercase: spec.lowercase, eos: spec.eos });
    case 'bpe': return BpeTokenizer.fromText(spec.text, '<bpe merges>');
  }
}

export interface Split {
  /** The token file. */
  path: string;
  tokens: number;
}

export interface PreparedCorpus {
  /** The cache folder. */
  dir: string;
  /** True when an earlier preparation was reused. */
  reused: boolean;
  spec: TokenizerSpec;
  tokenizer: Tokenizer;
  train: Split;
  valid: Split;
  test: Split | null;
  /** The text files each split came from (valid/test may name the training files when cut from them). */
  sources: { train: string[]; valid: string[]; test: string[] };
  /** How valid/test were obtained, in words. */
  rule: string;
}

interface Manifest {
  format: 'loom-corpus';
  version: 1;
  key: string;
  inputs: unknown;
  tokenizer: { kind: TokenizerKind; file: string; hash: string; size: number; lowercase: boolean; eos: boolean };
  splits: { train: { file: string; tokens: number }; valid: { file: string; tokens: number }; test: { file: string; tokens: number } | null };
  rule: string;
  createdAt: string;
}

const GLOB = /[*?[]/;

/**
 * The files a data path names, relative to `root`: a file, a folder (recursive, sorted, filtered by
 * `pattern`) or a glob whose folder part has no wildcard ('corpus/**\/*.txt').
 */
export function resolveTextFiles(key: string, spec: string, root: string, pattern: string): string[] {
  const full = root === '' || path.isAbsolute(spec) ? spec : path.join(root, spec);
  let files: string[];
  if (GLOB.test(full)) {
    const parts = full.split(/[/\\]/);
    const i = parts.findIndex((p) => GLOB.test(p));
    const base = parts.slice(0, i).join('/') || '.';
    const glob = parts.slice(i).join('/');
    if (!fs.existsSync(base)) throw new ConfigError(`${key}: the folder ${base} of the glob '${full}' does not exist`);
    files = listTextFiles(base, { pattern: glob });
    if (files.length === 0) throw new ConfigError(`${key}: no files match '${full}'`);
  } else {
    if (!fs.existsSync(full)) {
      const hint = root !== '' ? ` (data.root '${root}' + '${spec}')` : '';
      throw new ConfigError(`${key}: ${full} does not exist${hint}: expected a text file, a folder or a glob`);
    }
    files = listTextFiles(full, pattern === '' ? {} : { pattern });
    if (files.length === 0) throw new ConfigError(`${key}: the folder ${full} holds no files${pattern ? ` matching '${pattern}'` : ''}`);
  }
  for (const f of files) {
    if (fs.statSync(f).size === 0 && files.length === 1) throw new ConfigError(`${key}: ${f} is empty`);
  }
  return files;
}

function fileIdentity(files: string[]): { path: string; size: number; mtimeMs: number }[] {
  return files.map((f) => {
    const st = fs.statSync(f);
    return { path: path.resolve(f), size: st.size, mtimeMs: Math.round(st.mtimeMs) };
  });
}

export interface PrepareOptions {
  /** Progress of counting and encoding (default: a line on stderr). */
  onProgress?: ProgressCallback;
  /** Say what happens on this stream (default stderr); null for silence. */
  log?: ((line: string) => void) | null;
}

/** Prepares (or reuses) the corpus described by `data`. */
export function prepareCorpus(data: DataConfig, options: PrepareOptions = {}): PreparedCorpus {
  const log = options.log === undefined ? (s: string) => process.stderr.write(s + '\n') : options.log ?? (() => {});
  const onProgress = options.onProgress ?? progressPrinter('corpus');
  const trainFiles = resolveTextFiles('data.train', data.train, data.root, data.pattern);
  const validFiles = data.valid === '' ? [] : resolveTextFiles('data.valid', data.valid, data.root, data.pattern);
  const testFiles = data.test === '' ? [] : resolveTextFiles('data.test', data.test, data.root, data.pattern);
  const cutValid = validFiles.length === 0 ? data.validFraction : 0;
  const cutTest = validFiles.length === 0 && testFiles.length === 0 ? data.testFraction : 0;
  const rule =
    validFiles.length > 0
      ? `valid: ${describe(validFiles)}; test: ${testFiles.length > 0 ? describe(testFiles) : 'none'}`
      : `one token stream from the training files; train = first ${pct(1 - cutValid - cutTest)}, valid = next ${pct(cutValid)}` +
        (cutTest > 0 ? `, test = last ${pct(cutTest)}` : testFiles.length > 0 ? `; test: ${describe(testFiles)}` : '; no test set') + ' of the tokens';

  const tok = { kind: data.tokenizer, lowercase: data.lowercase, eos: data.eos, minCount: data.minCount, maxVocab: data.maxVocab, bpeVocab: data.bpeVocab };
  const inputs = { train: fileIdentity(trainFiles), valid: fileIdentity(validFiles), test: fileIdentity(testFiles), cutValid, cutTest, tokenizer: tok };
  const key = createHash('sha256').update(JSON.stringify({ format: 'loom-corpus', version: 1, inputs })).digest('hex');
  const dir = path.join(data.cache, key.slice(0, 16));
  const sources = {
    train: trainFiles,
    valid: validFiles.length > 0 ? validFiles : trainFiles,
    test: testFiles.length > 0 ? testFiles : cutTest > 0 ? trainFiles : [],
  };

  const cached = tryReuse(dir, key);
  if (cached) {
    log(`corpus: reusing ${dir} (${cached.spec.kind} tokenizer, vocabulary ${cached.tokenizer.vocabSize}; train ${cached.train.tokens.toLocaleString('en-US')} tokens, valid ${cached.valid.tokens.toLocaleString('en-US')}${cached.test ? `, test ${cached.test.tokens.toLocaleString('en-US')}` : ''})`);
    return { ...cached, sources, rule };
  }

  log(`corpus: preparing ${describe(trainFiles)} with the ${data.tokenizer} tokenizer into ${dir}`);
  fs.mkdirSync(data.cache, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    // 1. Vocabulary (or merges) from the training files.
    let tokenizer: Tokenizer;
    let vocabText: string;
    let vocabFile: string;
    if (data.tokenizer === 'bpe') {
      const bpe = BpeTokenizer.trainFiles(trainFiles, { vocabSize: data.bpeVocab, onProgress });
      tokenizer = bpe;
      vocabText = bpe.toText();
      vocabFile = 'merges.txt';
    } else {
      const vocab = buildVocabulary(trainFiles, {
        level: data.tokenizer, lowercase: data.lowercase, eos: data.eos, minCount: data.minCount,
        maxSize: data.maxVocab === 0 ? Infinity : data.maxVocab, onProgress,
      });
      tokenizer = data.tokenizer === 'char' ? new CharTokenizer(vocab) : new WordTokenizer(vocab, { lowercase: data.lowercase, eos: data.eos });
      vocabText = vocab.toText();
      vocabFile = 'vocab.txt';
    }
    fs.writeFileSync(path.join(tmp, vocabFile), vocabText);

    // 2. Token files.
    const splits: Manifest['splits'] = { train: { file: 'train.tok', tokens: 0 }, valid: { file: 'valid.tok', tokens: 0 }, test: null };
    if (validFiles.length > 0) {
      splits.train.tokens = encodeCorpus(trainFiles, path.join(tmp, 'train.tok'), tokenizer, { onProgress }).tokens;
      splits.valid.tokens = encodeCorpus(validFiles, path.join(tmp, 'valid.tok'), tokenizer, { onProgress }).tokens;
    } else {
      const all = path.join(tmp, 'all.tok');
      const n = encodeCorpus(trainFiles, all, tokenizer, { onProgress }).tokens;
      const v = Math.floor(n * cutValid);
      const t = Math.floor(n * cutTest);
      if (n - v - t < 2 || v < 2 || (cutTest > 0 && t < 2)) {
        throw new ConfigError(`data.train: ${n} tokens are too few to split into train ${n - v - t}, valid ${v}${cutTest > 0 ? `, test ${t}` : ''} tokens (each needs at least 2)`);
      }
      const src = TokenFile.open(all, { vocabulary: tokenizer });
      try {
        splits.train.tokens = copyRange(src, 0, n - v - t, path.join(tmp, 'train.tok'), tokenizer);
        splits.valid.tokens = copyRange(src, n - v - t, n - t, path.join(tmp, 'valid.tok'), tokenizer);
        if (t > 0) splits.test = { file: 'test.tok', tokens: copyRange(src, n - t, n, path.join(tmp, 'test.tok'), tokenizer) };
      } finally {
        src.close();
      }
      fs.rmSync(all);
    }
    if (testFiles.length > 0) splits.test = { file: 'test.tok', tokens: encodeCorpus(testFiles, path.join(tmp, 'test.tok'), tokenizer, { onProgress }).tokens };

    const manifest: Manifest = {
      format: 'loom-corpus', version: 1, key, inputs,
      tokenizer: { kind: data.tokenizer, file: vocabFile, hash: tokenizer.hash, size: tokenizer.vocabSize, lowercase: data.lowercase, eos: data.eos },
      splits, rule, createdAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    if (tryReuse(dir, key)) {
      fs.rmSync(tmp, { recursive: true, force: true }); // another process finished the same preparation first
    } else {
      fs.rmSync(dir, { recursive: true, force: true }); // a stale or damaged folder with the same key
      fs.renameSync(tmp, dir);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const made = tryReuse(dir, key);
  if (!made) throw new Error(`prepareCorpus: the folder ${dir} just written does not read back`);
  log(`corpus: vocabulary ${made.tokenizer.vocabSize}; train ${made.train.tokens.toLocaleString('en-US')} tokens, valid ${made.valid.tokens.toLocaleString('en-US')}${made.test ? `, test ${made.test.tokens.toLocaleString('en-US')}` : ''}`);
  return { ...made, reused: false, sources, rule };
}

/** Copies tokens [from, to) of a token file into a new one, in 1M-token pieces (bounded memory). */
function copyRange(src: TokenFile, from: number, to: number, out: string, tokenizer: Tokenizer): number {
  const w = new TokenFileWriter(out, tokenizer.vocabSize, tokenizer.hash);
  try {
    const buf = new Int32Array(1 << 20);
    for (let at = from; at < to; at += buf.length) w.write(src.read(at, Math.min(buf.length, to - at), buf));
  } catch (e) {
    w.abort();
    throw e;
  }
  return w.close();
}

/** The cached folder if its manifest matches the key and every token file opens with its vocabulary. */
function tryReuse(dir: string, key: string): Omit<PreparedCorpus, 'sources' | 'rule'> | null {
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestPath)) return null;
  try {
    const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Manifest;
    if (m.format !== 'loom-corpus' || m.version !== 1 || m.key !== key) return null;
    const spec: TokenizerSpec = { kind: m.tokenizer.kind, text: fs.readFileSync(path.join(dir, m.tokenizer.file), 'utf8'), lowercase: m.tokenizer.lowercase, eos: m.tokenizer.eos };
    const tokenizer = makeTokenizer(spec);
    if (tokenizer.hash !== m.tokenizer.hash) return null;
    const check = (s: { file: string; tokens: number }): Split => {
      const p = path.join(dir, s.file);
      const f = TokenFile.open(p, { vocabulary: tokenizer }); // refuses another vocabulary
      const n = f.length;
      f.close();
      if (n !== s.tokens) throw new Error(`${p}: ${n} tokens, manifest says ${s.tokens}`);
      return { path: p, tokens: n };
    };
    return { dir, reused: true, spec, tokenizer, train: check(m.splits.train), valid: check(m.splits.valid), test: m.splits.test ? check(m.splits.test) : null };
  } catch {
    return null; // damaged: rebuilt by the caller
  }
}

function describe(files: string[]): string {
  if (files.length === 1) return files[0];
  const bytes = files.reduce((s, f) => s + fs.statSync(f).size, 0);
  return `${files.length} files (${(bytes / 1e6).toFixed(1)} MB; ${files[0]}, …)`;
}

function pct(x: number): string {
  return `${+(x * 100).toFixed(2)}%`;
}
