/*
 * recurrentSequence: one layer-direction of an Elman RNN, LSTM or GRU over a whole sequence, as one
 * primitive. Its shape rule, kernel call and backward rule sit here; the kernels are
 * fused/recurrent-kernel.ts, reached through the backend (recurrentForward / recurrentBackward).
 *
 * Why a primitive and not a composition (STYLE.md asks for the measured reason): a composed LSTM step
 * builds about 15 graph nodes with a fresh allocation each, and its backward walks them one by one. Here
 * the forward is one loop over time (h·W_hhᵀ through the backend's GEMM, then one fused pass for all
 * gates, c and h), and the backward is one BPTT loop plus one GEMM for dW_hh over all steps.
 * Measured (scripts/bench-recurrent.ts, forward + backward of a 2-layer stack, float32, wasm backend, CPU
 * time on the shared 2-core machine; table in docs/recurrent.md): 4.8x the composed version for LSTM 2x200
 * T20 B20, 4.6x for GRU 2x200, 6.1x for W3's LSTM 2x256 T64 B32, 2.5x for LSTM 2x650 T35 B20; level with
 * torch.nn.LSTM/GRU on one thread (1.00-1.20x its CPU time). What is left is mostly GEMM (~70% by profile).
 *
 * The primitive is checked against the composed cells of @loom/models (same outputs and gradients) and
 * by float64 numerical gradient checks (packages/models/test/recurrent-fused.test.ts).
 */
import { isGradEnabled, Tensor } from '../tensor.js';
import { isFloat } from '../dtype.js';
import { LoomError, ShapeError, fmtShape } from '../errors.js';
import { reshape, slice, type Primitive } from '../ops.js';
import { gateBlocks, stateRows, type RecurrentKind, type RecurrentSpec } from './recurrent-kernel.js';

export type { RecurrentKind } from './recurrent-kernel.js';
export const RECURRENT_KINDS: readonly RecurrentKind[] = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru'];

export interface RecurrentSequenceOptions {
  /** Run t = T-1 → 0 (the backward direction of a bidirectional layer). */
  reverse?: boolean;
  /**
   * Valid steps per batch entry, each in [0, T]: past its length an entry keeps its state and outputs 0
   * (PyTorch's packed sequences; in reverse, an entry starts at its last valid step).
   */
  lengths?: readonly number[] | null;
}

export interface RecurrentSequenceResult {
  output: Tensor; // [T, B, H]
  h: Tensor; // [B, H], the final hidden state
  c: Tensor | null; // [B, H], the final cell state (LSTM)
}

export interface RecurrentSequenceInputs {
  /** x·W_ihᵀ for every step, [T, B, G·H]: one product by the caller (its backward gives dW_ih and dx). */
  xp: Tensor;
  /** [G·H, H], PyTorch's layout; gate blocks LSTM i, f, g, o; GRU r, z, n. */
  wHh: Tensor;
  bIh?: Tensor | null; // [G·H]
  bHh?: Tensor | null; // [G·H]
  h0: Tensor; // [B, H]
  c0?: Tensor | null; // [B, H], LSTM only
}

/**
 * Runs one layer-direction over T steps: the pre-activations are xp + b_ih + h·W_hhᵀ + b_hh, except
 * GRU's n = tanh(xp_n + b_in + r ⊙ (W_hn h + b_hn)) (PyTorch's equations). Differentiable in every input.
 */
export function recurrentSequence(kind: RecurrentKind, inputs: RecurrentSequenceInputs, opts: RecurrentSequenceOptions = {}): RecurrentSequenceResult {
  const op = 'recurrentSequence';
  if (!RECURRENT_KINDS.includes(kind)) throw new LoomError(`${op}: 'kind' must be one of ${RECURRENT_KINDS.join(', ')}, got '${String(kind)}'`);
  const { xp, wHh, h0 } = inputs;
  const bIh = inputs.bIh ?? null, bHh = inputs.bHh ?? null, c0 = inputs.c0 ?? null;
  const G = gateBlocks(kind);
  if (wHh.rank !== 2 || wHh.shape[0] !== G * wHh.shape[1]) {
    throw new ShapeError(`${op}(${kind}): 'wHh' must be [${G}·H, H], got ${fmtShape(wHh.shape)}`);
  }
  const H = wHh.shape[1];
  if (xp.rank !== 3 || xp.shape[2] !== G * H) throw new ShapeError(`${op}(${kind}): 'xp' must be [T, B, ${G * H}] (G·H), got ${fmtShape(xp.shape)}`);
  const [T, B] = xp.shape;
  if (h0.rank !== 2 || h0.shape[0] !== B || h0.shape[1] !== H) throw new ShapeError(`${op}(${kind}): 'h0' must be [${B}, ${H}] ([B, H]), got ${fmtShape(h0.shape)}`);
  if (kind === 'lstm') {
    if (!c0 || c0.rank !== 2 || c0.shape[0] !== B || c0.shape[1] !== H) {
      throw new ShapeError(`${op}(lstm): 'c0' must be [${B}, ${H}] ([B, H]), got ${c0 ? fmtShape(c0.shape) : 'null'}`);
    }
  } else if (c0) throw new LoomError(`${op}(${kind}): 'c0' is only for lstm; leave it out`);
  for (const [name, b] of [['bIh', bIh], ['bHh', bHh]] as const) {
    if (b && (b.rank !== 1 || b.shape[0] !== G * H)) throw new ShapeError(`${op}(${kind}): '${name}' must be [${G * H}] (G·H), got ${fmtShape(b.shape)}`);
  }
  for (const [name, t] of [['xp', xp], ['wHh', wHh], ['bIh', bIh], ['bHh', bHh], ['h0', h0], ['c0', c0]] as const) {
    if (!t) continue;
    if (!isFloat(t.dtype)) throw new LoomError(`${op}: argument '${name}' must be a float tensor, got ${t.dtype}`);
    if (t.dtype !== xp.dtype || t.backend !== xp.backend) {
      throw new LoomError(`${op}: argument '${name}' is ${t.dtype} on ${t.backend.name}, 'xp' is ${xp.dtype} on ${xp.backend.name}`);
    }
  }
  let lengths: Int32Array | null = null;
  if (opts.lengths != null) {
    if (opts.lengths.length !== B) throw new ShapeError(`${op}: opts.lengths has ${opts.lengths.length} entries, the batch has ${B}`);
    opts.lengths.forEach((n, b) => {
      if (!Number.isInteger(n) || n < 0 || n > T) throw new ShapeError(`${op}: opts.lengths[${b}] must be an integer in [0, ${T}] (T), got ${n}`);
    });
    if (opts.lengths.some((n) => n !== T)) lengths = Int32Array.from(opts.lengths);
  }

  const spec: RecurrentSpec = { kind, steps: T, batch: B, hidden: H, reverse: opts.reverse ?? false, lengths };
  const be = xp.backend, dtype = xp.dtype;
  const graphInputs = [xp, wHh, bIh, bHh, h0, c0].filter((t): t is Tensor => t !== null);
  let needs = false;
  if (isGradEnabled()) for (const t of graphInputs) if (t.requiresGrad) needs = true;
  const { y, saved } = be.recurrentForward(spec, xp.storage, wHh.storage, bIh?.storage ?? null, bHh?.storage ?? null,
    h0.storage, c0?.storage ?? null, needs, dtype);
  // One tensor holds the outputs and the final state, [T + S, B, H], so a single node carries the
  // gradients of all three into one whole-sequence backward; output, h and c are slices of it.
  const S = stateRows(kind);
  const backward = (g: Tensor): (Tensor | null)[] => {
    const r = be.recurrentBackward(spec, saved, wHh.storage, g.storage,
      { wHh: wHh.requiresGrad, bIh: !!bIh?.requiresGrad, bHh: !!bHh?.requiresGrad }, dtype);
    const pairs: [Tensor | null, unknown][] = [[xp, r.dxp], [wHh, r.dwHh], [bIh, r.dbIh], [bHh, r.dbHh], [h0, r.dh0], [c0, r.dc0]];
    return pairs.filter(([t]) => t !== null).map(([t, s]) => (t!.requiresGrad && s ? new Tensor(s, t!.shape, dtype, be) : null));
  };
  const primitive: Primitive = op;
  const packed = new Tensor(y, [T + S, B, H], dtype, be, needs, needs ? { op: primitive, inputs: graphInputs, backward } : null);
  const row = (i: number): Tensor => reshape(slice(packed, [T + i, 0, 0], [T + i + 1, B, H]), [B, H]);
  return { output: slice(packed, [0, 0, 0], [T, B, H]), h: row(0), c: kind === 'lstm' ? row(1) : null };
}
