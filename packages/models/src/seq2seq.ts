/*
 * An encoder-decoder (asynchronous many-to-many; Sutskever, Vinyals & Le 2014; Cho et al. 2014):
 *
 *   source ids [S, B] → source embedding → encoder layers → final state [L, B, H] ─┐
 *   [BOS, y1 … y(T-1)] [T, B] → target embedding → decoder layers (from that state) → [T, B, H]
 *     → linear → logits [T, B, V] predicting [y1 … yT] (yT is EOS)
 *
 * Training feeds the gold previous token (teacher forcing), or with probability 1 - ratio per position the
 * model's own previous prediction (scheduled sampling, Bengio et al. 2015). Decoding is greedy or beam
 * search. The decoder's step is one method, `decodeStep(inputs, state, encoded)`, that receives the
 * encoder's outputs and lengths: the attention decoder (AttentionSeq2Seq, attention/encoder-decoder.ts)
 * overrides it and `encode`, and passes a Seq2SeqLayout for its wider decoder input.
 *
 * Token conventions: targets are in the target vocabulary, end with EOS and are padded with PAD; BOS
 * starts decoding. Sources are padded with PAD and come with their lengths. Decoding never emits PAD or
 * BOS (their logits are skipped), so every hypothesis is a sequence of real tokens.
 */
import {
  Embedding, Generator, Linear, LoomError, Module, ShapeError, concat, crossEntropy, dropout, fmtShape, init, linear,
  logSoftmax, noGrad, reshape, tensor,
  type DType, type Tensor,
} from '@loom/core';
import { RecurrentLayer, type CellKind, type RecurrentState } from './recurrent/index.js';
import {
  checkBoolean, checkCell, checkDropout, checkDtype, checkIds, checkPositiveInts, checkSeed, checkSequenceLengths, padSequences, stripUndefined,
} from './checks.js';

export interface Seq2SeqConfig {
  srcVocabSize: number;
  tgtVocabSize: number;
  embedSize: number;
  hiddenSize: number;
  cell: CellKind;
  /** Encoder and decoder layers (the same number, so the encoder's state starts the decoder). Default 1. */
  numLayers?: number;
  /** On both embeddings, between recurrent layers and before the output layer. Default 0. */
  dropout?: number;
  /** One embedding table for source and target (needs srcVocabSize === tgtVocabSize). Default false. */
  shareEmbeddings?: boolean;
  /** Target-vocabulary ids: start of decoding, end of sequence, padding (pad also pads sources). */
  bos: number;
  eos: number;
  pad: number;
  /** Default 0. */
  seed?: number;
  /** Default float32 (float64 for gradient checks). */
  dtype?: DType;
}

export const SEQ2SEQ_DEFAULTS = {
  numLayers: 1,
  dropout: 0,
  shareEmbeddings: false,
  seed: 0,
  dtype: 'float32' as DType,
} satisfies Partial<Seq2SeqConfig>;

/** What the encoder hands the decoder. */
export interface EncoderOutput {
  /** [S, B, H]; zero past each source's length. Unused by this decoder; an attention decoder reads it. */
  outputs: Tensor;
  /** The encoder's final state [L, B, H]: the decoder's initial state. */
  state: RecurrentState;
  /** Source lengths (null: all S). */
  lengths: readonly number[] | null;
}

/**
 * How a subclass reshapes the recurrent parts: an attention decoder (attention/encoder-decoder.ts) reads a
 * bidirectional encoder and feeds a context vector into each decoder step. Default: this model's layout.
 */
export interface Seq2SeqLayout {
  /** The encoder runs both ways: outputs [S, B, 2H], state [2L, B, H] (the subclass bridges it). Default false. */
  bidirectionalEncoder?: boolean;
  /** Features of each decoder input step. Default embedSize. */
  decoderInputSize?: number;
}

export interface Seq2SeqOptions {
  /** Source lengths, each in [1, S]. Default: all S. */
  srcLengths?: readonly number[] | null;
  /** Probability of feeding the gold previous token rather than the model's own prediction. Default 1. */
  teacherForcing?: number;
}

export interface DecodeOptions {
  srcLengths?: readonly number[] | null;
  /** Most tokens to generate per sequence (EOS included). */
  maxLen: number;
}

export interface BeamSearchOptions {
  /** Hypotheses kept per step. */
  beamWidth: number;
  /** Most tokens per hypothesis (EOS included). */
  maxLen: number;
  /**
   * α of GNMT's length normalisation (Wu et al. 2016): a hypothesis scores logP / ((5 + n) / 6)^α with n
   * its length (EOS included). 0 (the default) ranks by log-probability alone, which favours short outputs.
   */
  lengthPenalty?: number;
}

export interface Hypothesis {
  /** The tokens, without BOS and EOS. */
  tokens: number[];
  /** Log-probability of the tokens (and of the EOS when finished). */
  logProb: number;
  /** logProb after length normalisation: the ranking key. */
  score: number;
  /** Whether it ended with EOS (false: cut at maxLen). */
  finished: boolean;
}

/**
 * Parameters, in namedParameters() order: srcEmbedding.weight [Vs, E], tgtEmbedding.weight [Vt, E] (absent
 * when shared), both ~ U(-0.1, 0.1); encoder.* and decoder.* (the recurrent layers' default init);
 * output.weight [Vt, H] ~ U(-0.1, 0.1) and output.bias [Vt] = 0, as the language model.
 */
export class Seq2Seq extends Module {
  readonly config: Required<Seq2SeqConfig>;
  srcEmbedding: Embedding;
  tgtEmbedding: Embedding;
  encoder: RecurrentLayer;
  decoder: RecurrentLayer;
  output: Linear;
  readonly generator: Generator;

  constructor(config: Seq2SeqConfig, where = 'Seq2Seq', layout: Seq2SeqLayout = {}) {
    super();
    const c: Required<Seq2SeqConfig> = { ...SEQ2SEQ_DEFAULTS, ...stripUndefined(config) };
    checkPositiveInts(where, c, ['srcVocabSize', 'tgtVocabSize', 'embedSize', 'hiddenSize', 'numLayers']);
    checkCell(where, c.cell);
    checkDropout(where, c.dropout);
    checkBoolean(where, 'shareEmbeddings', c.shareEmbeddings);
    if (c.shareEmbeddings && c.srcVocabSize !== c.tgtVocabSize) {
      throw new LoomError(`${where}: config.shareEmbeddings needs srcVocabSize === tgtVocabSize, got ${c.srcVocabSize} and ${c.tgtVocabSize}`);
    }
    for (const k of ['bos', 'eos', 'pad'] as const) {
      if (!Number.isInteger(c[k]) || c[k] < 0 || c[k] >= c.tgtVocabSize) {
        throw new LoomError(`${where}: config.${k} must be a target-vocabulary id in [0, ${c.tgtVocabSize}), got ${String(c[k])}`);
      }
    }
    if (c.pad >= c.srcVocabSize) throw new LoomError(`${where}: config.pad (${c.pad}) must also be a source-vocabulary id (srcVocabSize ${c.srcVocabSize})`);
    if (c.pad === c.eos || c.pad === c.bos) throw new LoomError(`${where}: config.pad must differ from bos and eos (pad ${c.pad}, bos ${c.bos}, eos ${c.eos})`);
    checkSeed(where, c.seed);
    checkDtype(where, c.dtype);
    this.config = c;
    const g = (this.generator = new Generator(c.seed));
    const { embedSize: E, hiddenSize: H, numLayers, dropout: p, dtype } = c;
    this.srcEmbedding = new Embedding(c.srcVocabSize, E, { dtype, generator: g });
    this.tgtEmbedding = c.shareEmbeddings ? this.srcEmbedding : new Embedding(c.tgtVocabSize, E, { dtype, generator: g });
    const bidirectional = layout.bidirectionalEncoder ?? false;
    this.encoder = new RecurrentLayer(c.cell, { inputSize: E, hiddenSize: H, numLayers, bidirectional, dropout: p, generator: g, dtype });
    this.decoder = new RecurrentLayer(c.cell, { inputSize: layout.decoderInputSize ?? E, hiddenSize: H, numLayers, dropout: p, generator: g, dtype });
    this.output = new Linear(H, c.tgtVocabSize, { dtype, generator: g });
    for (const t of [this.srcEmbedding.weight, this.tgtEmbedding.weight, this.output.weight]) init.uniform(t, -0.1, 0.1, g);
    init.constant(this.output.bias!, 0);
  }

  /** Runs the encoder over src [S, B] (padded, with lengths). */
  encode(src: Tensor, srcLengths?: readonly number[] | null): EncoderOutput {
    checkIds(`${this.constructor.name}.encode`, 'src', src);
    const [S, B] = src.shape;
    const lengths = checkSequenceLengths(`${this.constructor.name}.encode`, srcLengths, S, B);
    const x = dropout(this.srcEmbedding.forward(src), this.config.dropout, this.training, this.generator); // [S, B, E]
    const { output, state } = this.encoder.forward(x, null, { lengths });
    return { outputs: output, state, lengths };
  }

  /**
   * The decoder over inputs [T, B] (previous tokens) from `state`: logits [T, B, V] and the state after
   * the last step. `encoded` is what an attention decoder would attend to; this one starts from
   * encoded.state (passed in as `state` on the first step) and reads nothing else.
   */
  decodeStep(inputs: Tensor, state: RecurrentState, encoded: EncoderOutput): { logits: Tensor; state: RecurrentState } {
    void encoded;
    const p = this.config.dropout;
    const [T, B] = inputs.shape;
    const x = dropout(this.tgtEmbedding.forward(inputs), p, this.training, this.generator); // [T, B, E]
    const r = this.decoder.forward(x, state);
    const h = dropout(r.output, p, this.training, this.generator); // [T, B, H]
    const logits = linear(reshape(h, [T * B, this.config.hiddenSize]), this.output.weight, this.output.bias); // [T·B, V]
    return { logits: reshape(logits, [T, B, this.config.tgtVocabSize]), state: r.state };
  }

  /**
   * Logits [T, B, V] for predicting tgt [T, B] (ending with EOS, padded with PAD) from src [S, B]. With
   * teacherForcing 1 (the default) the decoder runs over [BOS, tgt[0..T-2]] in one call; below 1, step by
   * step, each position taking the gold previous token with that probability (drawn from the model's
   * generator) and the model's own argmax otherwise.
   */
  forward(src: Tensor, tgt: Tensor, opts: Seq2SeqOptions = {}): Tensor {
    const where = `${this.constructor.name}.forward`;
    checkIds(where, 'tgt', tgt);
    if (tgt.shape[1] !== src.shape[1]) throw new ShapeError(`${where}: 'tgt' ${fmtShape(tgt.shape)} and 'src' ${fmtShape(src.shape)} must have the same batch size (axis 1)`);
    const ratio = opts.teacherForcing ?? 1;
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw new LoomError(`${where}: opts.teacherForcing must be a number in [0, 1], got ${String(ratio)}`);
    const enc = this.encode(src, opts.srcLengths);
    const [T, B] = tgt.shape;
    const gold = tgt.data;
    if (ratio === 1) {
      const inputs = new Int32Array(T * B);
      inputs.fill(this.config.bos, 0, B);
      inputs.set(gold.subarray(0, (T - 1) * B), B); // [BOS, tgt[0..T-2]]
      return this.decodeStep(tensor(inputs, [T, B], { dtype: 'int32' }), enc.state, enc).logits;
    }
    const steps: Tensor[] = [];
    let state = enc.state;
    let prev = new Int32Array(B).fill(this.config.bos);
    for (let t = 0; t < T; t++) {
      const r = this.decodeStep(tensor(prev, [1, B], { dtype: 'int32' }), state, enc);
      steps.push(r.logits);
      state = r.state;
      const V = this.config.tgtVocabSize, rows = r.logits.data;
      prev = Int32Array.from({ length: B }, (_, b) =>
        this.generator.random() < ratio ? gold[t * B + b] : this.bestToken(rows, b * V));
    }
    return concat(steps, 0); // [T, B, V]
  }

  /** Mean cross-entropy over the non-PAD target positions. */
  loss(src: Tensor, tgt: Tensor, opts: Seq2SeqOptions = {}): Tensor {
    return crossEntropy(this.forward(src, tgt, opts), tgt, { ignoreIndex: this.config.pad });
  }

  /** Targets [T, B] from token sequences (without EOS): each gets EOS appended, then PAD to the longest. */
  targets(seqs: readonly (readonly number[])[]): Tensor {
    return padSequences(seqs.map((s) => [...s, this.config.eos]), this.config.pad).ids;
  }

  /** Greedy decoding of every source in the batch: the argmax token at each step until EOS or maxLen. */
  greedyDecode(src: Tensor, opts: DecodeOptions): number[][] {
    checkPositiveInts(`${this.constructor.name}.greedyDecode`, opts, ['maxLen']);
    return this.inEvalMode(() => this.greedyLoop(src, opts));
  }

  /**
   * Beam search for one source sequence: the beamWidth best hypotheses found, best first. Each step
   * extends every live hypothesis by every token, keeps the beamWidth best non-EOS extensions live, and
   * sets aside those that end with EOS; it stops when beamWidth hypotheses have finished (or at maxLen,
   * where the live ones are added unfinished). With beamWidth 1 it is greedy decoding.
   */
  beamSearch(src: readonly number[], opts: BeamSearchOptions): Hypothesis[] {
    const where = `${this.constructor.name}.beamSearch`;
    checkPositiveInts(where, opts, ['beamWidth', 'maxLen']);
    const alpha = opts.lengthPenalty ?? 0;
    if (typeof alpha !== 'number' || !(alpha >= 0)) throw new LoomError(`${where}: opts.lengthPenalty must be a non-negative number, got ${String(alpha)}`);
    if (src.length === 0) throw new LoomError(`${where}: 'src' must hold at least one token`);
    const { beamWidth: K, maxLen } = opts;
    const { eos, bos, pad, tgtVocabSize: V } = this.config;
    const norm = (logProb: number, n: number): number => (alpha === 0 ? logProb : logProb / ((5 + n) / 6) ** alpha);
    return this.inEvalMode(() => {
      const enc0 = this.encode(tensor(Int32Array.from(src), [src.length, 1], { dtype: 'int32' }));
      let beams: { tokens: number[]; logProb: number }[] = [{ tokens: [], logProb: 0 }];
      // Every beam reads the same source: the encoder's outputs repeated once per beam.
      const encFor = (n: number): EncoderOutput => {
        const zeros = new Array<number>(n).fill(0);
        return { outputs: selectBatch(enc0.outputs, 1, zeros), state: selectState(enc0.state, zeros), lengths: null };
      };
      let enc = enc0;
      let state = enc0.state;
      const finished: Hypothesis[] = [];
      for (let t = 0; t < maxLen && beams.length > 0 && finished.length < K; t++) {
        const n = beams.length;
        const inputs = Int32Array.from(beams, (b) => (b.tokens.length ? b.tokens[b.tokens.length - 1] : bos));
        const r = this.decodeStep(tensor(inputs, [1, n], { dtype: 'int32' }), state, enc);
        const logp = logSoftmax(r.logits, -1).data; // [1, n, V]
        // Every extension of every beam, best first; PAD and BOS are never emitted.
        const cands: { beam: number; token: number; logProb: number }[] = [];
        for (let i = 0; i < n; i++) {
          for (let v = 0; v < V; v++) {
            if (v === pad || (v === bos && bos !== eos)) continue;
            cands.push({ beam: i, token: v, logProb: beams[i].logProb + logp[i * V + v] });
          }
        }
        cands.sort((a, b) => b.logProb - a.logProb || a.beam - b.beam || a.token - b.token);
        const next: { tokens: number[]; logProb: number }[] = [];
        const parents: number[] = [];
        for (const c of cands) {
          if (next.length === K) break;
          const tokens = beams[c.beam].tokens;
          if (c.token === eos) {
            finished.push({ tokens: [...tokens], logProb: c.logProb, score: norm(c.logProb, tokens.length + 1), finished: true });
          } else {
            next.push({ tokens: [...tokens, c.token], logProb: c.logProb });
            parents.push(c.beam);
          }
        }
        beams = next;
        if (beams.length > 0) {
          state = selectState(r.state, parents);
          if (beams.length !== enc.outputs.shape[1]) enc = encFor(beams.length);
        }
      }
      if (finished.length < K) {
        for (const b of beams) finished.push({ tokens: b.tokens, logProb: b.logProb, score: norm(b.logProb, b.tokens.length), finished: false });
      }
      finished.sort((a, b) => b.score - a.score);
      return finished.slice(0, K);
    });
  }

  /**
   * Greedy decoding's loop (call it in eval mode): from BOS, each step's best tokens are fed back in until
   * every source has emitted EOS or maxLen steps have run. Per source, the tokens without EOS. `onStep`
   * sees every step's decodeStep result and the sources that emitted a token in it (EOS included).
   */
  protected greedyLoop(
    src: Tensor, opts: DecodeOptions,
    onStep?: (step: { logits: Tensor; state: RecurrentState }, emitted: readonly number[], encoded: EncoderOutput) => void,
  ): number[][] {
    const enc = this.encode(src, opts.srcLengths);
    const B = src.shape[1], V = this.config.tgtVocabSize;
    const out: number[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);
    let state = enc.state;
    let prev = new Int32Array(B).fill(this.config.bos);
    for (let t = 0; t < opts.maxLen && done.includes(false); t++) {
      const r = this.decodeStep(tensor(prev, [1, B], { dtype: 'int32' }), state, enc);
      state = r.state;
      const rows = r.logits.data;
      prev = Int32Array.from({ length: B }, (_, b) => this.bestToken(rows, b * V));
      const emitted: number[] = [];
      prev.forEach((tok, b) => {
        if (done[b]) return;
        emitted.push(b);
        if (tok === this.config.eos) done[b] = true;
        else out[b].push(tok);
      });
      onStep?.(r, emitted, enc);
    }
    return out;
  }

  /** The argmax of one row of logits, never PAD or BOS (unless BOS is also EOS). */
  protected bestToken(rows: ArrayLike<number>, offset: number): number {
    const { pad, bos, eos, tgtVocabSize: V } = this.config;
    let best = -1, bestV = -Infinity;
    for (let v = 0; v < V; v++) {
      if (v === pad || (v === bos && bos !== eos)) continue;
      const x = rows[offset + v];
      if (x > bestV || best < 0) {
        bestV = x;
        best = v;
      }
    }
    return best;
  }

  /** Decoding runs without dropout and without a graph; the training flag is restored afterwards. */
  protected inEvalMode<T>(fn: () => T): T {
    const was = this.training;
    this.train(false);
    try {
      return noGrad(fn);
    } finally {
      this.train(was);
    }
  }
}

/** Picks batch entries (axis 1 of h and c [L, B, H]) by index: the beams' parents. No graph. */
export function selectState(s: RecurrentState, idx: readonly number[]): RecurrentState {
  const h = selectBatch(s.h, 1, idx);
  return s.c ? { h, c: selectBatch(s.c, 1, idx) } : { h };
}

/** x with axis `axis` replaced by the entries idx (repeats allowed). A host copy without a graph. */
export function selectBatch(x: Tensor, axis: number, idx: readonly number[]): Tensor {
  const shape = x.shape;
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = shape[axis];
  const src = x.data;
  const out = new (src.constructor as Float32ArrayConstructor)(outer * idx.length * inner);
  for (let o = 0; o < outer; o++) {
    idx.forEach((i, j) => {
      if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new ShapeError(`selectBatch: index ${i} is out of range for axis ${axis} of ${fmtShape(shape)}`);
      const from = (o * n + i) * inner;
      out.set(src.subarray(from, from + inner), (o * idx.length + j) * inner);
    });
  }
  const outShape = [...shape];
  outShape[axis] = idx.length;
  return tensor(out, outShape, { dtype: x.dtype, backend: x.backend });
}
