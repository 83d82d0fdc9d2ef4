/*
 * Initialisers. Each fills a parameter in place (under no-grad) from a seeded generator and returns it.
 * Fan-in/fan-out follow PyTorch: for a [out, in, ...] weight, fanIn = in·receptive, fanOut = out·receptive.
 */
import { Generator, defaultGenerator } from '../random.js';
import type { Tensor } from '../tensor.js';
import { LoomError, fmtShape } from '../errors.js';

function fill(t: Tensor, fn: () => number): Tensor {
  const host = new Float64Array(t.size);
  for (let i = 0; i < host.length; i++) host[i] = fn();
  return setValues(t, host);
}

/** Overwrites a tensor's values in place (the storage object stays the same, so flat views survive). */
export function setValues(t: Tensor, values: ArrayLike<number>): Tensor {
  if (values.length !== t.size) throw new LoomError(`setValues: ${values.length} values for a tensor of shape ${fmtShape(t.shape)}`);
  if (t.backend.hostStorage === false) {
    // A device backend: its storage is not host memory, so the values are uploaded into it in place.
    if (!t.backend.write) throw new LoomError(`setValues: backend ${t.backend.name} has no host storage and no write()`);
    t.backend.write(t.storage, t.dtype, values);
    return t;
  }
  const data = t.data;
  if (data === t.storage) {
    (data as Float32Array).set(values);
  } else {
    throw new LoomError(`setValues: backend ${t.backend.name} does not expose host storage`);
  }
  return t;
}

export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new LoomError(`fans: need at least 2 dimensions, got ${fmtShape(shape)}`);
  const receptive = shape.slice(2).reduce((n, d) => n * d, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

export function uniform(t: Tensor, low: number, high: number, g: Generator = defaultGenerator): Tensor {
  return fill(t, () => g.uniform(low, high));
}

export function normal(t: Tensor, mean = 0, std = 1, g: Generator = defaultGenerator): Tensor {
  return fill(t, () => g.normal(mean, std));
}

export function constant(t: Tensor, value: number): Tensor {
  return fill(t, () => value);
}

export function xavierUniform(t: Tensor, gain = 1, g: Generator = defaultGenerator): Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(t, -a, a, g);
}

export function xavierNormal(t: Tensor, gain = 1, g: Generator = defaultGenerator): Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  return normal(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), g);
}

/** Kaiming uniform with leaky-relu slope a (PyTorch's default for Linear uses a = √5, i.e. bound 1/√fanIn). */
export function kaimingUniform(t: Tensor, a = 0, g: Generator = defaultGenerator): Tensor {
  const { fanIn } = fans(t.shape);
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = gain * Math.sqrt(3 / fanIn);
  return uniform(t, -bound, bound, g);
}

/**
 * A (semi-)orthogonal matrix from the QR decomposition of a normal matrix, with the signs of R's diagonal
 * folded in so the result is uniformly distributed (as torch.nn.init.orthogonal_).
 */
export function orthogonal(t: Tensor, gain = 1, g: Generator = defaultGenerator): Tensor {
  if (t.rank < 2) throw new LoomError(`orthogonal: need at least 2 dimensions, got ${fmtShape(t.shape)}`);
  const rows = t.shape[0], cols = t.size / rows;
  // Orthonormalise the vectors of the longer side's transpose: work on n vectors of length len (n ≤ len).
  const transpose = rows < cols;
  const n = transpose ? rows : cols, len = transpose ? cols : rows;
  const v: Float64Array[] = Array.from({ length: n }, () => Float64Array.from({ length: len }, () => g.normal()));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      let dot = 0;
      for (let r = 0; r < len; r++) dot += v[i][r] * v[j][r];
      for (let r = 0; r < len; r++) v[i][r] -= dot * v[j][r];
    }
    let norm = 0;
    for (let r = 0; r < len; r++) norm += v[i][r] * v[i][r];
    norm = Math.sqrt(norm) || 1;
    for (let r = 0; r < len; r++) v[i][r] /= norm;
  }
  const out = new Float64Array(t.size);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < len; r++) {
      // v[i] is column i of Q (len = rows) or row i of Qᵀ (len = cols).
      if (transpose) out[i * cols + r] = gain * v[i][r];
      else out[r * cols + i] = gain * v[i][r];
    }
  }
  return setValues(t, out);
}
