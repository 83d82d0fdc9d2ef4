/*
 * The training configuration: one typed object with its commented defaults beside the type (nanoGPT's
 * block of defaults, made strict). A run's config is built in three layers, each checked against the
 * schema below:
 *
 *   DEFAULTS  ←  a config file (configs/<name>.ts, or any .ts / .json file)  ←  --key=value overrides
 *
 * Unknown keys and values of the wrong type are errors that name the key (and, for unknown keys, the
 * close matches), so a misspelt `--lerning_rate=3` never silently trains with the default. The resolved
 * config is printed once, saved as config.json in the run folder and stored in every checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

export type TokenizerKind = 'char' | 'word' | 'bpe';
export type CellKind = 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';
export type OptimKind = 'sgd' | 'adam' | 'adamw';
export type ScheduleKind = 'constant' | 'epochDecay' | 'step' | 'exponential' | 'warmupCosine' | 'plateau';

export interface DataConfig {
  /** Folder the other data paths are relative to; '' = the current directory. */
  root: string;
  /** Training text: a file, a folder (walked recursively, sorted) or a glob ('books/**\/*.txt'). */
  train: string;
  /** Validation text (file, folder or glob); '' = cut from the end of the training tokens (validFraction). */
  valid: string;
  /** Test text; '' = cut from the training tokens (testFraction) when valid is also '', else no test set. */
  test: string;
  /** Inside folders, only files matching this glob; '' = every file (names starting with '.' are skipped). */
  pattern: string;
  /** When valid is '': this fraction of the training tokens, taken after the first 1 − valid − test. */
  validFraction: number;
  /** When valid and test are '': this fraction of the training tokens, taken last. */
  testFraction: number;
  /** 'char' (Unicode code points), 'word' (whitespace words, <eos> per line, as PTB) or 'bpe' (bytes + merges). */
  tokenizer: TokenizerKind;
  /** word: lowercase words first. */
  lowercase: boolean;
  /** word: an <eos> token at every line end (PTB and WikiText are prepared this way). */
  eos: boolean;
  /** char/word: tokens seen fewer times become <unk>. */
  minCount: number;
  /** char/word: at most this many entries, specials included; 0 = no limit. */
  maxVocab: number;
  /** bpe: vocabulary size = 256 bytes + merges. */
  bpeVocab: number;
  /** Where prepared corpora are cached, one folder per hash of the inputs and tokenizer options. */
  cache: string;
}

export interface ModelConfig {
  /** Recurrent cell. */
  cell: CellKind;
  /** E, the embedding size. */
  embedSize: number;
  /** H, the hidden size of every layer. */
  hiddenSize: number;
  numLayers: number;
  /** Zaremba-style dropout on the embeddings, between layers and before the projection. */
  dropout: number;
  /** Share the embedding with the projection (needs embedSize = hiddenSize). */
  tieWeights: boolean;
}

export interface OptimConfig {
  kind: OptimKind;
  /** Initial learning rate (a schedule may change it). */
  lr: number;
  /** sgd: momentum. */
  momentum: number;
  /** L2 penalty (sgd, adam) or decoupled decay (adamw). */
  weightDecay: number;
  /** adam/adamw: β1, β2. */
  beta1: number;
  beta2: number;
  /** Clip the global gradient norm to this; 0 = no clipping. */
  clip: number;
}

export interface ScheduleConfig {
  /**
   * constant; epochDecay (Zaremba: lr·factor^max(epoch+1−constantEpochs, 0)); step (lr·gamma^⌊epoch/stepSize⌋);
   * exponential (lr·gamma^epoch); warmupCosine (per step, to minLr at the last step); plateau (lr·factor when
   * the validation loss has not improved for more than `patience` epochs).
   */
  kind: ScheduleKind;
  /** epochDecay: epochs at the initial lr. */
  constantEpochs: number;
  /** epochDecay and plateau: the multiplier. */
  factor: number;
  /** step: epochs between drops. */
  stepSize: number;
  /** step and exponential: the multiplier. */
  gamma: number;
  /** warmupCosine: linear warmup steps. */
  warmupSteps: number;
  /** warmupCosine and plateau: the floor. */
  minLr: number;
  /** plateau: epochs without improvement tolerated. */
  patience: number;
}

export interface LoopConfig {
  /** Passes over the training tokens. */
  epochs: number;
  /** Stop after this many optimizer steps in all; 0 = no limit (run every epoch). */
  maxSteps: number;
  /** B, the global batch: lanes of the token stream, split evenly among the workers. */
  batchSize: number;
  /** T, the truncated-BPTT window length. */
  bptt: number;
  /** Data-parallel workers; 0 = the core count (lowered to the largest divisor of batchSize, said when it starts). */
  workers: number;
  /** Seeds the model's initialisation and dropout. */
  seed: number;
  /** Lanes used for validation and test (PyTorch's word_language_model uses 10). */
  evalBatchSize: number;
  /** Also evaluate on validation data every this many steps; 0 = only at the end of each epoch. */
  evalEvery: number;
  /** Checkpoint every this many steps (as well as at each epoch end and at the stop); 0 = epoch ends only. */
  checkpointEvery: number;
  /** Checkpoints kept in the run folder (the newest). */
  keepCheckpoints: number;
  /** Plain progress lines (when stdout is not a terminal) every this many seconds. */
  logSeconds: number;
}

export interface SampleConfig {
  /** Text the sample starts from ('' = the first token of the vocabulary after the specials). */
  prompt: string;
  /** Tokens generated after the prompt; 0 = no sample at the end of training. */
  length: number;
  /** Softmax temperature (> 0). */
  temperature: number;
  /** Sample among the k most likely tokens; 0 = all. */
  topK: number;
  seed: number;
}

export interface TrainConfig {
  /** Names the run: the run folder is <out>/<name>-<UTC timestamp>. */
  name: string;
  /** Folder for run folders. */
  out: string;
  data: DataConfig;
  model: ModelConfig;
  optim: OptimConfig;
  schedule: ScheduleConfig;
  train: LoopConfig;
  sample: SampleConfig;
}

/** A config file's content: any subset of the keys, section by section. */
export type PartialConfig = { [S in keyof TrainConfig]?: TrainConfig[S] extends object ? Partial<TrainConfig[S]> : TrainConfig[S] };

/** The defaults: a small character model. Config files override what they need. */
export const DEFAULTS: TrainConfig = {
  name: 'run',
  out: 'runs',
  data: {
    root: '',
    train: '',
    valid: '',
    test: '',
    pattern: '',
    validFraction: 0.05,
    testFraction: 0.05,
    tokenizer: 'char',
    lowercase: false,
    eos: true,
    minCount: 1,
    maxVocab: 0,
    bpeVocab: 4096,
    cache: '.cache/corpora',
  },
  model: { cell: 'lstm', embedSize: 64, hiddenSize: 128, numLayers: 2, dropout: 0, tieWeights: false },
  optim: { kind: 'adam', lr: 2e-3, momentum: 0, weightDecay: 0, beta1: 0.9, beta2: 0.999, clip: 5 },
  schedule: { kind: 'constant', constantEpochs: 4, factor: 0.5, stepSize: 1, gamma: 0.5, warmupSteps: 0, minLr: 0, patience: 0 },
  train: {
    epochs: 1,
    maxSteps: 0,
    batchSize: 32,
    bptt: 64,
    workers: 0,
    seed: 1337,
    evalBatchSize: 10,
    evalEvery: 0,
    checkpointEvery: 0,
    keepCheckpoints: 3,
    logSeconds: 10,
  },
  sample: { prompt: '', length: 300, temperature: 0.8, topK: 0, seed: 0 },
};

// ---------------------------------------------------------------------------------------------------
// The schema: one field description per leaf. Its type is mapped from TrainConfig, so a key added to the
// config without a schema entry (or the other way round) is a type error.

type Field =
  | { type: 'string' }
  | { type: 'boolean' }
  | { type: 'int'; min: number }
  | { type: 'number'; min: number; max?: number; exclusiveMin?: boolean }
  | { type: 'enum'; values: readonly string[] };

type Schema<T> = { [K in keyof T]: T[K] extends object ? Schema<T[K]> : Field };

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const int = (min: number): Field => ({ type: 'int', min });
const num = (min: number, max?: number, exclusiveMin = false): Field => ({ type: 'number', min, max, exclusiveMin });
const oneOf = (...values: string[]): Field => ({ type: 'enum', values });

export const SCHEMA: Schema<TrainConfig> = {
  name: str,
  out: str,
  data: {
    root: str, train: str, valid: str, test: str, pattern: str,
    validFraction: num(0, 1), testFraction: num(0, 1),
    tokenizer: oneOf('char', 'word', 'bpe'),
    lowercase: bool, eos: bool, minCount: int(1), maxVocab: int(0), bpeVocab: int(257), cache: str,
  },
  model: {
    cell: oneOf('lstm', 'gru', 'rnn_tanh', 'rnn_relu'),
    embedSize: int(1), hiddenSize: int(1), numLayers: int(1), dropout: num(0, 1), tieWeights: bool,
  },
  optim: {
    kind: oneOf('sgd', 'adam', 'adamw'),
    lr: num(0, undefined, true), momentum: num(0, 1), weightDecay: num(0), beta1: num(0, 1), beta2: num(0, 1), clip: num(0),
  },
  schedule: {
    kind: oneOf('constant', 'epochDecay', 'step', 'exponential', 'warmupCosine', 'plateau'),
    constantEpochs: int(0), factor: num(0, 1, true), stepSize: int(1), gamma: num(0, 1, true),
    warmupSteps: int(0), minLr: num(0), patience: int(0),
  },
  train: {
    epochs: int(1), maxSteps: int(0), batchSize: int(1), bptt: int(1), workers: int(0), seed: int(0),
    evalBatchSize: int(1), evalEvery: int(0), checkpointEvery: int(0), keepCheckpoints: int(1), logSeconds: num(0),
  },
  sample: { prompt: str, length: int(0), temperature: num(0, undefined, true), topK: int(0), seed: int(0) },
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Every leaf key, dotted ('optim.lr'), with its schema field. */
export function leafKeys(schema: object = SCHEMA, prefix = ''): { key: string; field: Field }[] {
  const out: { key: string; field: Field }[] = [];
  for (const [k, v] of Object.entries(schema)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isField(v as Record<string, unknown>)) out.push({ key, field: v as Field });
    else out.push(...leafKeys(v as object, key));
  }
  return out;
}

const LEAVES = leafKeys();

function describe(field: Field): string {
  switch (field.type) {
    case 'string': return 'a string';
    case 'boolean': return 'a boolean (true or false)';
    case 'int': return field.min === 0 ? 'a non-negative integer' : field.min === 1 ? 'a positive integer' : `an integer >= ${field.min}`;
    case 'number': {
      const lo = `${field.exclusiveMin ? '>' : '>='} ${field.min}`;
      return field.max === undefined ? `a number ${lo}` : `a number ${lo} and <= ${field.max}`;
    }
    case 'enum': return `one of ${field.values.map((v) => `'${v}'`).join(', ')}`;
  }
}

/** Checks one value against its field; returns an error message (naming the key) or null. */
function checkValue(key: string, field: Field, value: unknown, where: string): string | null {
  const bad = () => `${where}${key} must be ${describe(field)}, got ${JSON.stringify(value) ?? String(value)}`;
  switch (field.type) {
    case 'string': return typeof value === 'string' ? null : bad();
    case 'boolean': return typeof value === 'boolean' ? null : bad();
    case 'int': return typeof value === 'number' && Number.isSafeInteger(value) && value >= field.min ? null : bad();
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad();
      if (field.exclusiveMin ? value <= field.min : value < field.min) return bad();
      return field.max !== undefined && value > field.max ? bad() : null;
    }
    case 'enum': return typeof value === 'string' && field.values.includes(value) ? null : bad();
  }
}

/** Levenshtein distance (small strings only). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

/** Other frameworks' names for our keys (PyTorch's word_language_model, nanoGPT), normalised (lowercase, no - or _). */
const ALIASES: Record<string, string> = {
  learningrate: 'optim.lr', gradclip: 'optim.clip', clipnorm: 'optim.clip', maxgradnorm: 'optim.clip',
  nhid: 'model.hiddenSize', hidden: 'model.hiddenSize', emsize: 'model.embedSize', nembd: 'model.embedSize',
  nlayers: 'model.numLayers', layers: 'model.numLayers', model: 'model.cell', tied: 'model.tieWeights',
  batch: 'train.batchSize', maxiters: 'train.maxSteps', blocksize: 'train.bptt', seqlen: 'train.bptt',
  evalinterval: 'train.evalEvery', dataset: 'data.train',
};

/** Keys close to an unknown one: a small edit distance to the dotted key or its last part, or containment. */
export function closeMatches(key: string, candidates: readonly string[] = LEAVES.map((l) => l.key)): string[] {
  const k = key.toLowerCase().replace(/[-_]/g, '');
  const aliased = Object.entries(ALIASES).filter(([a, target]) => candidates.includes(target) && distance(k, a) <= (a.length > 6 ? 2 : 0)).map(([, t]) => t);
  const scored = candidates
    .map((c) => {
      const leaf = c.slice(c.lastIndexOf('.') + 1).toLowerCase();
      const full = c.toLowerCase();
      const d = Math.min(distance(k, leaf), distance(k, full));
      const contains = leaf.length >= 3 && k.length >= 3 && (leaf.includes(k) || k.includes(leaf));
      return { c, d: contains ? Math.min(d, 1) : d };
    })
    .filter((s) => s.d <= Math.max(2, Math.floor(k.length / 4)));
  scored.sort((a, b) => a.d - b.d || (a.c < b.c ? -1 : 1));
  return [...new Set([...aliased, ...scored.map((s) => s.c)])].slice(0, 4);
}

function unknownKey(key: string, where: string): ConfigError {
  const near = closeMatches(key);
  const hint = near.length ? `; did you mean ${near.map((n) => `'${n}'`).join(' or ')}?` : `; run with --help for the list of keys`;
  return new ConfigError(`${where}unknown config key '${key}'${hint}`);
}

/**
 * Checks a partial config (from a file) against the schema: every problem is listed in one error, each
 * naming its key. Returns it unchanged.
 */
export function checkPartial(partial: unknown, where: string): PartialConfig {
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) {
    throw new ConfigError(`${where}a config must be an object of sections (data, model, optim, schedule, train, sample), got ${JSON.stringify(partial)}`);
  }
  const problems: string[] = [];
  const walk = (obj: Record<string, unknown>, schema: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const key = prefix ? `${prefix}.${k}` : k;
      const s = schema[k] as Record<string, unknown> | undefined;
      if (s === undefined) {
        problems.push(unknownKey(key, '').message);
        continue;
      }
      if (isField(s)) {
        const msg = checkValue(key, s as unknown as Field, v, '');
        if (msg) problems.push(msg);
      } else if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        problems.push(`${key} must be a section (an object with keys ${Object.keys(s).join(', ')}), got ${JSON.stringify(v)}`);
      } else {
        walk(v as Record<string, unknown>, s, key);
      }
    }
  };
  walk(partial as Record<string, unknown>, SCHEMA as unknown as Record<string, unknown>, '');
  if (problems.length === 1) throw new ConfigError(`${where}${problems[0]}`);
  if (problems.length > 1) throw new ConfigError(`${where}${problems.length} problems:\n  ${problems.join('\n  ')}`);
  return partial as PartialConfig;
}

function isField(s: Record<string, unknown>): boolean {
  return typeof s.type === 'string';
}

/** DEFAULTS with the partial configs applied in order (later wins). Each is checked first. */
export function mergeConfig(...layers: { config: PartialConfig; where: string }[]): TrainConfig {
  const out = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;
  for (const { config, where } of layers) {
    checkPartial(config, where);
    for (const [k, v] of Object.entries(config)) {
      if (v !== null && typeof v === 'object') Object.assign(out[k] as object, v);
      else out[k] = v;
    }
  }
  const resolved = out as unknown as TrainConfig;
  checkConsistency(resolved);
  return resolved;
}

/** Rules between keys, checked on the resolved config. */
export function checkConsistency(c: TrainConfig): void {
  if (c.data.train === '') throw new ConfigError(`config: data.train is empty: give the training text (a file, folder or glob), e.g. --data.train=path/to/train.txt`);
  if (c.data.valid === '' && c.data.validFraction <= 0) {
    throw new ConfigError(`config: data.valid is '' and data.validFraction is 0: give validation text or a fraction of the training tokens to hold out`);
  }
  if (c.data.valid === '' && c.data.validFraction + c.data.testFraction >= 1) {
    throw new ConfigError(`config: data.validFraction + data.testFraction must be below 1 (the rest is training data), got ${c.data.validFraction} + ${c.data.testFraction}`);
  }
  if (c.model.tieWeights && c.model.embedSize !== c.model.hiddenSize) {
    throw new ConfigError(`config: model.tieWeights needs model.embedSize = model.hiddenSize, got ${c.model.embedSize} and ${c.model.hiddenSize}`);
  }
  if (c.data.tokenizer === 'bpe' && c.data.bpeVocab > 65536) {
    throw new ConfigError(`config: data.bpeVocab must be at most 65536, got ${c.data.bpeVocab}`);
  }
  if (c.name === '' || /[/\\]/.test(c.name)) throw new ConfigError(`config: name must be a non-empty string without '/' (it names the run folder), got '${c.name}'`);
}

// ---------------------------------------------------------------------------------------------------
// --key=value overrides.

/**
 * Resolves an override key: a dotted key ('optim.lr'), or a bare leaf name ('lr') when exactly one
 * section has it. Errors name the key and list close matches or the ambiguous candidates.
 */
export function resolveKey(key: string): { key: string; field: Field } {
  const exact = LEAVES.find((l) => l.key === key);
  if (exact) return exact;
  if (!key.includes('.')) {
    const bare = LEAVES.filter((l) => l.key.endsWith(`.${key}`));
    if (bare.length === 1) return bare[0];
    if (bare.length > 1) {
      throw new ConfigError(`--${key}: ambiguous config key: it is in several sections; write one of ${bare.map((b) => `--${b.key}`).join(', ')}`);
    }
  }
  throw unknownKey(key, `--${key}: `);
}

/** Parses an override's text as its field's type; errors name the key, the expected type and the value. */
export function parseValue(key: string, field: Field, text: string | true): unknown {
  let value: unknown;
  if (text === true) {
    if (field.type !== 'boolean') throw new ConfigError(`--${key} needs a value: expected --${key}=<${describe(field)}>`);
    return true;
  }
  switch (field.type) {
    case 'string':
    case 'enum':
      value = text;
      break;
    case 'boolean':
      value = text === 'true' ? true : text === 'false' ? false : text;
      break;
    case 'int':
    case 'number':
      value = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text.trim()) ? Number(text) : text;
      break;
  }
  const msg = checkValue(key, field, value, '--');
  if (msg) throw new ConfigError(msg);
  return value;
}

/** Turns ['optim.lr', '0.5'] pairs into a partial config (each key resolved and value typed). */
export function overridesToPartial(overrides: readonly { key: string; value: string | true }[]): PartialConfig {
  const out: Record<string, unknown> = {};
  for (const { key, value } of overrides) {
    const leaf = resolveKey(key);
    const parts = leaf.key.split('.');
    let obj = out;
    for (const p of parts.slice(0, -1)) obj = (obj[p] ??= {}) as Record<string, unknown>;
    obj[parts[parts.length - 1]] = parseValue(leaf.key, leaf.field, value);
  }
  return out as PartialConfig;
}

// ---------------------------------------------------------------------------------------------------
// Config files.

/** The folder of shipped configs. */
export const CONFIG_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../configs');

/** The shipped configs' names (configs/<name>.ts, without the template). */
export function listConfigs(): string[] {
  if (!fs.existsSync(CONFIG_DIR)) return [];
  return fs.readdirSync(CONFIG_DIR).filter((f) => /\.(ts|json)$/.test(f) && !f.startsWith('_')).map((f) => f.replace(/\.(ts|json)$/, '')).sort();
}

/**
 * Loads a config: a name from configs/ ('tiny-shakespeare'), or a path to a .ts module (its default export)
 * or a .json file (a resolved config.json from a run folder works too).
 */
export async function loadConfigFile(nameOrPath: string): Promise<{ config: PartialConfig; where: string; name: string }> {
  let file = nameOrPath;
  if (!/[/\\]/.test(nameOrPath) && !/\.(ts|json)$/.test(nameOrPath)) {
    const ts = path.join(CONFIG_DIR, `${nameOrPath}.ts`);
    const json = path.join(CONFIG_DIR, `${nameOrPath}.json`);
    file = fs.existsSync(ts) ? ts : json;
    if (!fs.existsSync(file)) {
      const names = listConfigs();
      const near = closeMatches(nameOrPath, names);
      throw new ConfigError(`config '${nameOrPath}' not found: expected configs/${nameOrPath}.ts or a path to a .ts or .json file${near.length ? `; did you mean ${near.map((n) => `'${n}'`).join(' or ')}?` : ''} (shipped: ${names.join(', ')})`);
    }
  }
  if (!fs.existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
  const where = `${path.relative(process.cwd(), file) || file}: `;
  let config: unknown;
  if (file.endsWith('.json')) {
    try {
      config = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`${where}not valid JSON: ${(e as Error).message}`);
    }
  } else if (/\.(ts|mts|js|mjs)$/.test(file)) {
    const mod = (await import(pathToFileURL(path.resolve(file)).href)) as { default?: unknown };
    if (mod.default === undefined) throw new ConfigError(`${where}expected a default export: the partial config (export default { ... } satisfies PartialConfig)`);
    config = mod.default;
  } else {
    throw new ConfigError(`${where}expected a .ts or .json config file`);
  }
  return { config: checkPartial(config, where), where, name: path.basename(file).replace(/\.(ts|mts|js|mjs|json)$/, '') };
}

/** The help text: every key, its type and default. */
export function configHelp(): string {
  const get = (key: string): unknown => key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], DEFAULTS);
  return LEAVES.map((l) => `  --${l.key}=${JSON.stringify(get(l.key))}`.padEnd(44) + ` ${describe(l.field)}`).join('\n');
}
