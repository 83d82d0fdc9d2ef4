// The runtimes by name, what is refused and why, where the values live, and that TF.js memory is freed.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import {
  backend as backendNamed, backendInfo, backendNames, crossEntropy, matmul, recurrentSequence, setBackend, tensor, zeros, getBackend,
  type Tensor,
} from '@loom/core';
import { TFJS_RUNTIMES, TfStorage, createTfjsBackend, tfjsBackend, registerTfjsBackends } from '../src/index.js';
import { prepareBackend } from '../src/register.js';

const cpu = tfjsBackend('tfjs-cpu');
const tf = cpu.tfjs;

describe('runtimes by name', () => {
  it('a missing runtime package is an error that says what to install and where the offline notes are', async () => {
    for (const runtime of ['tfjs-node-gpu', 'tfjs-node'] as const) {
      const pkg = `@tensorflow/${runtime}`;
      const err = await createTfjsBackend({ runtime }).then(() => null, (e: Error) => e);
      expect(err?.message).toContain(`backend-tfjs: runtime '${runtime}' needs the package ${pkg}; install it with \`npm install ${pkg}@^4.22.0\``);
      expect(err?.message).toContain('downloads libtensorflow');
      expect(err?.message).toContain('docs/backend-tfjs.md');
    }
    // The failed load gave its claim on the process's native runtime back: asking again says the same.
    await expect(createTfjsBackend({ runtime: 'tfjs-node-gpu' })).rejects.toThrow(/needs the package @tensorflow\/tfjs-node-gpu/);
  });

  it('an unknown runtime name lists the known ones', async () => {
    await expect(createTfjsBackend({ runtime: 'tfjs-webgl' as never })).rejects.toThrow(
      `createTfjsBackend: options.runtime must be one of 'tfjs-node-gpu', 'tfjs-node', 'tfjs-wasm', 'tfjs-cpu', got "tfjs-webgl"`);
  });

  it('registers the four names in the core registry as backends without host storage', async () => {
    registerTfjsBackends();
    for (const r of TFJS_RUNTIMES) {
      expect(backendNames()).toContain(r);
      expect(backendInfo(r).hostStorage).toBe(false);
    }
    expect(backendNamed('tfjs-cpu')).toBe(cpu);
    // tfjs-wasm compiles WebAssembly, so it needs preparing (asynchronously) before it can be chosen by name.
    expect(() => backendNamed('tfjs-wasm')).toThrow(/runtime 'tfjs-wasm' initialises asynchronously.*prepareBackend\('tfjs-wasm'\)/);
    await prepareBackend('tfjs-wasm');
    expect(backendNamed('tfjs-wasm').name).toBe('tfjs-wasm');
    await prepareBackend('wasm'); // another package's name: left alone
  });
});

describe('values live on the TF.js side', () => {
  it('storage is a TF.js tensor of the runtime; read() downloads a copy; write() uploads', () => {
    const t = tensor([1, 2, 3], { backend: cpu });
    expect(t.storage).toBeInstanceOf(TfStorage);
    const s = t.storage as TfStorage;
    expect(s.t.dtype).toBe('float32');
    const host = t.data;
    host[0] = 99;
    expect(Array.from(t.data)).toEqual([1, 2, 3]);
    cpu.write(s, 'float32', [4, 5, 6]);
    expect(Array.from(t.data)).toEqual([4, 5, 6]);
    expect(() => cpu.write(s, 'float32', [1])).toThrow('backend tfjs-cpu: write: 1 values for storage of 3 elements');
  });

  it('float64 is refused by name; int32 works', () => {
    expect(() => zeros([2], { dtype: 'float64', backend: cpu })).toThrow(
      "backend tfjs-cpu: alloc: float64 is not supported (TensorFlow.js has no float64 tensors); use float32, or the 'reference' backend for float64 gradient checks");
    expect(() => tensor([1.5], { dtype: 'float64', backend: cpu })).toThrow(/backend tfjs-cpu: fromArray: float64 is not supported/);
    const i = tensor([7, -7, 9], { dtype: 'int32', backend: cpu });
    expect(Array.from(i.div(tensor([2, 2, 4], { dtype: 'int32', backend: cpu })).data)).toEqual([3, -3, 2]); // truncated, as the reference backend
    expect(i.data).toBeInstanceOf(Int32Array);
  });

  it('two runtimes in one thread: each kernel runs on its own runtime', async () => {
    const wasm = await createTfjsBackend({ runtime: 'tfjs-wasm' });
    const a = tensor([[1, 2], [3, 4]], { backend: cpu }), b = tensor([[1, 2], [3, 4]], { backend: wasm });
    const ca = matmul(a, a);
    expect(tf.getBackend()).toBe('cpu');
    const cb = matmul(b, b);
    expect(tf.getBackend()).toBe('wasm');
    expect(Array.from(ca.data)).toEqual([7, 10, 15, 22]);
    expect(Array.from(cb.data)).toEqual([7, 10, 15, 22]);
  });

  it('setBackend by name and models built on it: parameters initialise through write()', () => {
    registerTfjsBackends();
    const previous = getBackend();
    try {
      setBackend('tfjs-cpu');
      const logits = tensor([[2, 0, -1], [0.5, 0.5, 3]], { requiresGrad: true });
      const loss = crossEntropy(logits, tensor([0, 2], { dtype: 'int32' }));
      loss.backward();
      expect(loss.backend).toBe(cpu);
      expect(loss.item()).toBeCloseTo(((Math.log(Math.exp(2) + 1 + Math.exp(-1)) - 2) + (Math.log(2 * Math.exp(0.5) + Math.exp(3)) - 3)) / 2, 5);
      expect(logits.grad!.storage).toBeInstanceOf(TfStorage);
    } finally {
      setBackend(previous);
    }
  });
});

describe('TF.js memory', () => {
  const numTensors = (): number => tf.memory().numTensors;
  const gc = (): (() => void) => {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  };
  /** Collects garbage until the count of live TF.js tensors reaches `target` or stops falling (finalizers
   *  run after a collection, as tasks). */
  const settle = async (target: number): Promise<number> => {
    const collect = gc();
    let last = -1, still = 0;
    for (let i = 0; i < 100 && numTensors() > target && still < 5; i++) {
      collect();
      await new Promise((resolve) => setTimeout(resolve, 5));
      still = numTensors() === last ? still + 1 : 0;
      last = numTensors();
    }
    return numTensors();
  };

  it('a kernel keeps only its output (its intermediates are tidied); in-place kernels keep nothing new', () => {
    const f = (values: number[]): TfStorage => cpu.fromArray('float32', values);
    const a = f([1, -2, 3, 4, 5, -6]), b = f([0.5, 1, -1]), idx = cpu.fromArray('int32', [1, 0, 1]);
    const kernels: [string, () => unknown, number][] = [
      ['binary', () => cpu.binary('pow', a, [2, 3], b, [3], [2, 3], 'float32'), 1],
      ['unaryBackward', () => cpu.unaryBackward('tanh', a, a, a, 'float32'), 1],
      ['reduce max', () => cpu.reduce('max', a, 2, 3, 1, 'float32'), 1],
      ['matmul', () => cpu.matmul(a, a, 2, 1, 1, 3, false, true, 3, 3, 'float32'), 1],
      ['where', () => cpu.where(b, [3], a, [2, 3], b, [1, 3], [2, 3], 'float32'), 1],
      ['logSoftmax', () => cpu.logSoftmax(a, 2, 3, 'float32'), 1],
      ['gatherRows', () => cpu.gatherRows(a, 3, idx, 3, 'float32'), 1],
      ['addInPlace', () => cpu.addInPlace(a, a, 'float32'), 0],
      ['sliceAddInto', () => cpu.sliceAddInto(a, [2, 3], b, [1, 3], [1, 0], 'float32'), 0],
      ['scatterAddRowsInto', () => cpu.scatterAddRowsInto(a, 3, idx, 3, f([1, 1, 1, 2, 2, 2, 3, 3, 3]), 'float32'), 1], // 1: the src made here
      ['fill', () => cpu.fill(a, 'float32', 2), 0],
      ['write', () => cpu.write(a, 'float32', [1, 2, 3, 4, 5, 6]), 0],
    ];
    for (const [name, run, kept] of kernels) {
      const before = numTensors();
      run();
      expect([name, numTensors() - before]).toEqual([name, kept]);
    }
  });

  it('after a fused LSTM forward and backward, only the gradients our autograd kept are alive (the rest is disposed once collected)', async () => {
    const opts = { backend: cpu };
    const [T, B, H] = [3, 2, 4];
    const xp = tensor(Array.from({ length: T * B * 4 * H }, (_, i) => Math.sin(i)), [T, B, 4 * H], { ...opts, requiresGrad: true });
    const wHh = tensor(Array.from({ length: 4 * H * H }, (_, i) => Math.cos(i) / 4), [4 * H, H], { ...opts, requiresGrad: true });
    const h0 = zeros([B, H], opts), c0 = zeros([B, H], opts);
    const before = await settle(0);
    (() => {
      const r = recurrentSequence('lstm', { xp, wHh, h0, c0 }, { lengths: [3, 1] });
      r.output.sum().add(r.c!.sum()).backward();
    })();
    // xp.grad and wHh.grad: everything else made on the way (the step loop's ops, the saved inputs, the
    // gradients nobody kept) is gone.
    expect(await settle(before + 2)).toBe(before + 2);
    expect((xp.grad!.storage as TfStorage).t.isDisposed).toBe(false);
    expect(xp.grad!.storage).toBeInstanceOf(TfStorage);
    expect(wHh.grad!.storage).toBeInstanceOf(TfStorage);
  });

  it('a tensor dropped by our autograd is disposed once collected (FinalizationRegistry)', async () => {
    const before = await settle(0);
    (() => {
      let x: Tensor = tensor(new Float32Array(1000).fill(1), [10, 100], { backend: cpu });
      for (let i = 0; i < 20; i++) x = x.mul(1.01).add(0.5);
      // 1 + 20 × (two lifted scalars and two results)
      expect(numTensors() - before).toBe(81);
    })();
    expect(await settle(before)).toBe(before);
  });
});
