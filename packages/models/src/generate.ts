/*
 * Generation from a recurrent model, one token at a time (one-to-many): feed the prompt from an initial
 * state (zeros, or one the caller made, e.g. an encoder's), then repeatedly pick the next token from the
 * last logits and feed it back. Picking is greedy (argmax), or sampling from softmax(logits / temperature),
 * optionally restricted to the k most likely tokens (top-k, Fan et al. 2018).
 */
import { Generator, LoomError, defaultGenerator, noGrad, tensor, type Tensor } from '@loom/core';

export interface PickOptions {
  /** Always take the most likely token (ties: the lowest id). Default false. */
  greedy?: boolean;
  /** Softmax temperature, > 0: below 1 sharpens, above 1 flattens. Default 1. Ignored when greedy. */
  temperature?: number;
  /** Sample only among the k most likely tokens (k larger than the vocabulary means all). Default: all. */
  topK?: number;
  /** Random source for sampling. Default: the process-wide defaultGenerator. */
  generator?: Generator;
}

/** Checks PickOptions once, naming the function and the field. */
export function checkPickOptions(fn: string, opts: PickOptions): void {
  const { temperature, topK } = opts;
  if (temperature !== undefined && !(Number.isFinite(temperature) && temperature > 0)) {
    throw new LoomError(`${fn}: options.temperature must be a positive number, got ${temperature}`);
  }
  if (topK !== undefined && !(Number.isInteger(topK) && topK > 0)) {
    throw new LoomError(`${fn}: options.topK must be a positive integer, got ${topK}`);
  }
}

/**
 * Picks one token from a row of logits: `logits[offset .. offset + size)`. Computed in float64 on the
 * host, max-shifted so that large logits cannot overflow exp.
 */
export function pickToken(logits: ArrayLike<number>, opts: PickOptions = {}, offset = 0, size = logits.length - offset): number {
  if (size <= 0) throw new LoomError(`pickToken: the logits row is empty (offset ${offset}, size ${size})`);
  if (opts.greedy) return argmax(logits, offset, size);
  const t = opts.temperature ?? 1;
  const k = Math.min(opts.topK ?? size, size);
  let ids: number[];
  if (k < size) {
    // Sorting the row costs V log V per token; negligible beside the model step that made the row.
    ids = Array.from({ length: size }, (_, i) => i).sort((a, b) => logits[offset + b] - logits[offset + a] || a - b).slice(0, k);
  } else {
    ids = Array.from({ length: size }, (_, i) => i);
  }
  let m = -Infinity;
  for (const i of ids) m = Math.max(m, logits[offset + i]);
  const w = new Float64Array(ids.length);
  let total = 0;
  ids.forEach((i, j) => {
    w[j] = Math.exp((logits[offset + i] - m) / t);
    total += w[j];
  });
  if (!(total > 0) || !Number.isFinite(total)) {
    throw new LoomError(`pickToken: the logits do not form a distribution (max ${m}); are they NaN?`);
  }
  const u = (opts.generator ?? defaultGenerator).random() * total;
  let acc = 0;
  for (let j = 0; j < ids.length; j++) {
    acc += w[j];
    if (u < acc) return ids[j];
  }
  return ids[ids.length - 1]; // u within rounding of the total
}

export function argmax(values: ArrayLike<number>, offset = 0, size = values.length - offset): number {
  let best = 0, bestV = -Infinity;
  for (let i = 0; i < size; i++) {
    const v = values[offset + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/**
 * What `sample` needs of a model: a step over time-major ids [T, B] from an optional state, giving
 * logits [T, B, V] and the state after the last step. RNNLanguageModel is one.
 */
export interface StepModel<S> {
  forward(ids: Tensor, state?: S | null): { logits: Tensor; state: S };
  training: boolean;
  train(flag?: boolean): unknown;
}

export interface SampleOptions<S> extends PickOptions {
  /** Tokens fed before generating; at least one (the last one's logits give the first new token). */
  prompt: readonly number[];
  /** How many new tokens to generate. */
  length: number;
  /** The state the prompt starts from (one-to-many generation from, e.g., an encoder's state). Default zeros. */
  state?: S | null;
  /** Stop early after generating this token (it is included in the result). */
  stopToken?: number;
}

/**
 * Generates `length` tokens after `prompt` and returns them (the prompt not included). The model runs in
 * evaluation mode (no dropout) without a graph; its training flag is restored afterwards.
 */
export function sample<S>(model: StepModel<S>, opts: SampleOptions<S>): number[] {
  const { prompt, length } = opts;
  checkPickOptions('sample', opts);
  if (!Array.isArray(prompt) || prompt.length === 0) {
    throw new LoomError('sample: options.prompt must hold at least one token id (for example a start-of-sequence id)');
  }
  if (!Number.isInteger(length) || length < 0) throw new LoomError(`sample: options.length must be a non-negative integer, got ${length}`);
  const wasTraining = model.training;
  model.train(false);
  try {
    return noGrad(() => {
      const out: number[] = [];
      // The whole prompt in one call: [T, 1].
      let { logits, state } = model.forward(tensor(Int32Array.from(prompt), [prompt.length, 1], { dtype: 'int32' }), opts.state ?? null);
      for (let i = 0; i < length; i++) {
        const V = logits.shape[logits.rank - 1];
        const next = pickToken(logits.data, opts, logits.size - V, V);
        out.push(next);
        if (next === opts.stopToken || i === length - 1) break;
        ({ logits, state } = model.forward(tensor(Int32Array.of(next), [1, 1], { dtype: 'int32' }), state));
      }
      return out;
    });
  } finally {
    model.train(wasTraining);
  }
}
