import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import {
  CheckpointError, Embedding, Generator, Linear, Module, Parameter, flattenParameters, init, loadCheckpoint, loadCheckpointSync,
  loadStateDict, plainDataProblems, saveCheckpoint, saveCheckpointSync, stateDict, tensor, type Checkpoint, type CheckpointInput,
} from '../src/index.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'loom-ckpt-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

class Net extends Module {
  embed: Embedding;
  layers: Linear[];
  scale: Parameter;
  constructor(seed: number, hidden = 6) {
    super();
    const g = new Generator(seed);
    this.embed = new Embedding(10, 4, { generator: g });
    this.layers = [new Linear(4, hidden, { generator: g }), new Linear(hidden, 3, { generator: g })];
    this.scale = init.uniform(new Parameter([3]), 0.5, 1.5, g) as Parameter;
  }
}

/** Bit patterns, not values: NaN !== NaN and 0 === -0, so compare the bytes. */
function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function expectSameBits(a: ArrayBufferView, b: ArrayBufferView): void {
  expect(b.constructor).toBe(a.constructor);
  expect(Buffer.compare(bytesOf(a), bytesOf(b))).toBe(0);
}

/** Float32 values that a value-converting serialiser would lose: NaN payloads, -0, subnormals, extremes. */
function specialFloat32(): Float32Array {
  const a = new Float32Array(12);
  const u = new Uint32Array(a.buffer);
  u[0] = 0x7fc00000; // canonical quiet NaN
  u[1] = 0x7fc12345; // quiet NaN with a payload
  u[2] = 0xffa00001; // negative signalling-pattern NaN
  u[3] = 0x80000000; // -0
  u[4] = 0x00000001; // smallest subnormal
  u[5] = 0x807fffff; // largest negative subnormal
  u[6] = 0x7f7fffff; // largest finite
  u[7] = 0x7f800000; // +Inf
  u[8] = 0xff800000; // -Inf
  a[9] = Math.fround(Math.PI);
  a[10] = -1e-30;
  a[11] = 1;
  return a;
}

function specialFloat64(): Float64Array {
  const a = new Float64Array(8);
  const u = new BigUint64Array(a.buffer);
  u[0] = 0x7ff8000000000001n; // NaN with a payload
  u[1] = 0x8000000000000000n; // -0
  u[2] = 0x0000000000000001n; // smallest subnormal
  u[3] = 0x7fefffffffffffffn; // largest finite
  u[4] = 0xfff0000000000000n; // -Inf
  a[5] = Math.PI;
  a[6] = 1 / 3;
  a[7] = -1e300;
  return a;
}

function sampleCheckpoint(): CheckpointInput {
  const g = new Generator(7);
  g.normal(); // leaves a spare normal in the state
  return {
    step: 1234,
    config: { model: { hidden: 6, layers: 2 }, lr: 3e-4, betas: [0.9, 0.999], name: 'tiny', clip: null, tied: false },
    params: {
      'layers.0.weight': { shape: [3, 4], dtype: 'float32', data: specialFloat32() },
      'double': { shape: [2, 2, 2], dtype: 'float64', data: specialFloat64() },
      'scalar': { shape: [], dtype: 'float32', data: new Float32Array([2.5]) },
      'empty': { shape: [0, 3], dtype: 'float32', data: new Float32Array(0) },
    },
    // Shaped like an optimizer's stateDict(): nested plain objects holding Float32Arrays.
    optimizer: {
      kind: 'adam',
      lr: 1e-3,
      step: 17,
      options: { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
      state: {
        'layers.0.weight': { m: specialFloat32(), v: new Float32Array([1, 2, 3]) },
        'double': { m: new Float32Array(8).fill(-0) },
      },
    },
    generators: { init: new Generator(1).getState(), dropout: g.getState() },
    extra: {
      data: { epoch: 2, position: 2 ** 40 + 3, lanes: new Int32Array([5, -6, 7]) },
      hidden: [new Float32Array([0.25, -0.5]), new Float64Array([1e-310])],
      bytes: new Uint8Array([0, 255]),
      big: 2n ** 63n - 1n,
      metrics: { loss: [2.5, 2.25], best: Infinity, missing: undefined, note: 'ünïcødé ✓' },
      when: new Date(0),
    },
  };
}

/** Deep comparison that treats typed arrays by their bits. */
function expectSameData(got: unknown, want: unknown, where = 'root'): void {
  if (ArrayBuffer.isView(want)) {
    expect(ArrayBuffer.isView(got), where).toBe(true);
    expectSameBits(want, got as ArrayBufferView);
  } else if (Array.isArray(want)) {
    expect(Array.isArray(got), where).toBe(true);
    expect((got as unknown[]).length, where).toBe(want.length);
    want.forEach((w, i) => expectSameData((got as unknown[])[i], w, `${where}[${i}]`));
  } else if (want instanceof Date) {
    expect(got, where).toEqual(want);
  } else if (typeof want === 'object' && want !== null) {
    expect(Object.keys(got as object), where).toEqual(Object.keys(want));
    for (const [k, w] of Object.entries(want)) expectSameData((got as Record<string, unknown>)[k], w, `${where}.${k}`);
  } else {
    expect(Object.is(got, want), `${where}: ${String(got)} vs ${String(want)}`).toBe(true);
  }
}

describe('checkpoint round trip', () => {
  it('is bit-exact for params, optimizer state, generator states, config and extra (async and sync)', async () => {
    const want = sampleCheckpoint();
    const before = Date.now();
    const a = join(dir, 'round-trip-async.loom');
    await saveCheckpoint(a, want);
    const gotAsync = await loadCheckpoint(a);
    const b = join(dir, 'round-trip-sync.loom');
    saveCheckpointSync(b, want);
    const gotSync = loadCheckpointSync(b);
    for (const got of [gotAsync, gotSync]) {
      expect(got.format).toBe('loom-checkpoint');
      expect(got.version).toBe(1);
      expect(Date.parse(got.createdAt)).toBeGreaterThanOrEqual(before - 1000);
      expect(got.step).toBe(1234);
      expectSameData(got.config, want.config, 'config');
      expect(Object.keys(got.params)).toEqual(Object.keys(want.params)); // namedParameters() order kept
      expectSameData(got.params, want.params, 'params');
      expectSameData(got.optimizer, want.optimizer, 'optimizer');
      expectSameData(got.generators, want.generators, 'generators');
      expectSameData(got.extra, want.extra, 'extra');
    }
    // The sync and async writers produce the same bytes apart from createdAt.
    const da = fs.readFileSync(a);
    const db = fs.readFileSync(b);
    expect(da.length).toBe(db.length);
  });

  it('leaves out optional sections that were not given', async () => {
    const path = join(dir, 'minimal.loom');
    await saveCheckpoint(path, { step: 0, config: null, params: {} });
    const got = await loadCheckpoint(path);
    expect(Object.keys(got)).toEqual(['format', 'version', 'createdAt', 'step', 'config', 'params']);
    expect(got.config).toBeNull();
  });

  it('resumes a Generator: the restored one draws the same numbers', async () => {
    const g = new Generator(2024);
    for (let i = 0; i < 5; i++) g.random();
    g.normal(); // the second value of the Box-Muller pair is now pending in the state
    const path = join(dir, 'generator.loom');
    await saveCheckpoint(path, { step: 1, config: {}, params: {}, generators: { main: g.getState() } });
    const expected = [g.normal(), g.random(), g.int(1000), g.normal(), g.normal(), g.uniform(-1, 1)];
    const restored = new Generator(0).setState((await loadCheckpoint(path)).generators!.main);
    const got = [restored.normal(), restored.random(), restored.int(1000), restored.normal(), restored.normal(), restored.uniform(-1, 1)];
    expect(got).toEqual(expected);
  });

  it('restores a model: stateDict → file → loadStateDict gives identical parameters and outputs', async () => {
    const trained = new Net(1);
    const path = join(dir, 'model.loom');
    await saveCheckpoint(path, { step: 5, config: { seed: 1 }, params: stateDict(trained) });
    const fresh = new Net(99);
    const x = tensor([[0.5, -1, 2, 0.25]], [1, 4]);
    const out = (m: Net): Float32Array => m.layers[1].forward(m.layers[0].forward(x).tanh()).data as Float32Array;
    expect(Array.from(out(fresh))).not.toEqual(Array.from(out(trained)));
    loadStateDict(fresh, (await loadCheckpoint(path)).params);
    const want = trained.namedParameters();
    fresh.namedParameters().forEach(([name, p], i) => {
      expect(name).toBe(want[i][0]);
      expectSameBits(want[i][1].data, p.data);
    });
    expectSameBits(out(trained), out(fresh));
  });

  it('stateDict copies the values, so later training does not change a saved state', () => {
    const net = new Net(3);
    const sd = stateDict(net);
    expect(Object.keys(sd)).toEqual(net.namedParameters().map(([n]) => n));
    expect(sd['layers.0.weight'].shape).toEqual([6, 4]);
    const w = net.layers[0].weight;
    const before = Float32Array.from(w.data as Float32Array);
    init.constant(w, 42);
    expectSameBits(before, sd['layers.0.weight'].data);
  });

  it('an async save holds the values of the moment it was called', async () => {
    const data = new Float32Array([1, 2, 3]);
    const path = join(dir, 'snapshot.loom');
    const pending = saveCheckpoint(path, { step: 1, config: null, params: { w: { shape: [3], dtype: 'float32', data } } });
    data.fill(-7); // training carries on while the bytes go to disk
    await pending;
    expect(Array.from((await loadCheckpoint(path)).params.w.data)).toEqual([1, 2, 3]);
  });

  it('round-trips a large checkpoint (20M floats) through raw bytes', async () => {
    const sizes = [12_000_000, 6_000_000, 2_000_000];
    const params: Checkpoint['params'] = {};
    sizes.forEach((n, i) => {
      const data = new Float32Array(n);
      const u = new Uint32Array(data.buffer);
      for (let j = 0; j < n; j++) u[j] = Math.imul(j + i, 2654435761) >>> 0; // every bit pattern, NaNs included
      params[`p${i}`] = { shape: [n / 1000, 1000], dtype: 'float32', data };
    });
    const path = join(dir, 'large.loom');
    await saveCheckpoint(path, { step: 9, config: null, params });
    expect(fs.statSync(path).size).toBeGreaterThan(80_000_000);
    const got = await loadCheckpoint(path);
    for (const [name, e] of Object.entries(params)) expectSameBits(e.data, got.params[name].data);
    fs.rmSync(path);
  });
});

describe('checkpoint verification on load', () => {
  let path: string;
  let good: Buffer;
  beforeAll(async () => {
    path = join(dir, 'victim.loom');
    await saveCheckpoint(path, sampleCheckpoint());
    good = fs.readFileSync(path);
  });

  function damaged(name: string, bytes: Uint8Array): string {
    const p = join(dir, name);
    fs.writeFileSync(p, bytes);
    return p;
  }

  async function refusal(p: string): Promise<CheckpointError> {
    let asyncError: unknown;
    await loadCheckpoint(p).catch((e: unknown) => (asyncError = e));
    let syncError: unknown;
    try {
      loadCheckpointSync(p);
    } catch (e) {
      syncError = e;
    }
    expect(asyncError).toBeInstanceOf(CheckpointError);
    expect(syncError).toBeInstanceOf(CheckpointError);
    expect((syncError as Error).message).toBe((asyncError as Error).message);
    expect((asyncError as Error).message).toContain(p);
    return asyncError as CheckpointError;
  }

  it('the undamaged file loads', async () => {
    expect((await loadCheckpoint(path)).step).toBe(1234);
  });

  it('refuses truncated files at every kind of cut point, saying how many bytes are missing', async () => {
    for (const cut of [0, 5, 31]) {
      const p = damaged(`cut-${cut}.loom`, good.subarray(0, cut));
      expect((await refusal(p)).message).toBe(`checkpoint ${p} is truncated: expected at least 32 bytes (the header), found ${cut}`);
    }
    const mid = Math.floor(good.length / 2);
    for (const cut of [32, 33, mid, good.length - 32, good.length - 1]) {
      const p = damaged(`cut-${cut}.loom`, good.subarray(0, cut));
      expect((await refusal(p)).message).toBe(`checkpoint ${p} is truncated: expected ${good.length} bytes, found ${cut}`);
    }
  });

  it('refuses files with a flipped byte anywhere', async () => {
    const flip = (at: number): string => {
      const b = Buffer.from(good);
      b[at] ^= 0x10;
      return damaged(`flip-${at}.loom`, b);
    };
    expect((await refusal(flip(0))).message).toMatch(/is not a Loom checkpoint: it does not start with "LOOMCKPT"$/);
    for (const at of [12, 16, 20, 24, 29]) {
      expect((await refusal(flip(at))).message).toMatch(/is corrupted: header checksum mismatch$/);
    }
    expect((await refusal(flip(8))).message).toMatch(/has format version 17 or a damaged header/);
    for (const at of [32, 40, Math.floor(good.length / 3), good.length - 40, good.length - 33, good.length - 1]) {
      expect((await refusal(flip(at))).message).toBe(`checkpoint ${join(dir, `flip-${at}.loom`)} is corrupted: checksum mismatch (SHA-256 of header and payload)`);
    }
  });

  it('refuses trailing data, foreign files and missing files', async () => {
    const longer = damaged('longer.loom', Buffer.concat([good, Buffer.from([0])]));
    expect((await refusal(longer)).message).toContain(`is corrupted: expected ${good.length} bytes, found ${good.length + 1}`);
    const json = damaged('config.json', Buffer.from('{"step": 1}'));
    expect((await refusal(json)).message).toContain('is not a Loom checkpoint');
    const missing = join(dir, 'nope.loom');
    expect((await refusal(missing)).message).toMatch(/could not be read: ENOENT/);
  });
});

describe('saveCheckpoint validation', () => {
  it('lists every problem in one error and writes nothing', async () => {
    const path = join(dir, 'invalid.loom');
    class Thing {
      x = 1;
    }
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const bad = {
      step: -1,
      config: { when: new Thing(), fn: () => 1 },
      params: {
        short: { shape: [2, 3], dtype: 'float32', data: new Float32Array(5) },
        wrongType: { shape: [2], dtype: 'float64', data: new Float32Array(2) },
      },
      generators: { g: { words: [1, 2, 3], spareNormal: null } },
      extra: { lookup: new Map([['a', 1]]), cyclic, t: tensor([1, 2]) },
      generatr: {},
    } as unknown as CheckpointInput;
    let error: unknown;
    await saveCheckpoint(path, bad).catch((e: unknown) => (error = e));
    expect(error).toBeInstanceOf(CheckpointError);
    const msg = (error as Error).message;
    expect(msg).toContain(`saveCheckpoint: cannot save ${path}: 10 problems:`);
    for (const part of [
      "unknown field 'generatr'",
      'step is -1, expected a non-negative integer',
      "params['short'].data holds 5 values, shape [2, 3] needs 6",
      "params['wrongType'].data is a Float32Array of 2, expected a Float64Array for dtype 'float64'",
      "generators['g'] is an object with keys words, spareNormal, expected Generator.getState()",
      'config.when is a Thing; checkpoints hold plain data',
      'config.fn is a function',
      'extra.lookup is a Map; checkpoints hold plain data (it would come back as a plain object; use Object.fromEntries)',
      'extra.cyclic.self refers back to an object that contains it',
      'extra.t is a Tensor; checkpoints hold plain data (store tensor.data.slice()',
    ]) expect(msg).toContain(part);
    expect(() => saveCheckpointSync(path, bad)).toThrow(`saveCheckpointSync: cannot save ${path}: 10 problems:`);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('invalid.loom'))).toEqual([]);
  });

  it('plainDataProblems gives the same messages ahead of time, with the caller\'s path', () => {
    expect(plainDataProblems({ ids: new Int32Array(3), names: ['a'], when: new Date(0), none: null }, 'opts.extra')).toEqual([]);
    expect(plainDataProblems({ lookup: new Map(), f: () => 1 }, 'opts.extra')).toEqual([
      'opts.extra.lookup is a Map; checkpoints hold plain data (it would come back as a plain object; use Object.fromEntries)',
      'opts.extra.f is a function; checkpoints hold plain data',
    ]);
  });
});

describe('loadStateDict', () => {
  it('lists every missing name, unexpected name and shape or dtype mismatch in one error, and loads nothing', () => {
    const net = new Net(1);
    const sd = stateDict(new Net(2, 5)); // hidden 5 instead of 6: layer shapes differ
    delete (sd as Record<string, unknown>)['embed.weight'];
    sd['layers.1.bias'] = { shape: [3], dtype: 'float64', data: new Float64Array(3) };
    sd['extra.weight'] = { shape: [2], dtype: 'float32', data: new Float32Array(2) };
    sd['scale'] = { shape: [3], dtype: 'float32', data: new Float32Array(2) } as never;
    const before = net.namedParameters().map(([, p]) => Float32Array.from(p.data as Float32Array));
    let error: unknown;
    try {
      loadStateDict(net, sd);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(
      [
        'loadStateDict: the checkpoint does not fit the module (7 problems); nothing was loaded:',
        "  missing from the checkpoint (1): 'embed.weight' [10, 4]",
        "  not parameters of the module (1): 'extra.weight' [2]",
        '  mismatched (5):',
        "    'layers.0.weight': the checkpoint has shape [5, 4], the module [6, 4]",
        "    'layers.0.bias': the checkpoint has shape [5], the module [6]",
        "    'layers.1.weight': the checkpoint has shape [3, 5], the module [3, 6]",
        "    'layers.1.bias': the checkpoint has dtype float64, the module float32",
        "    'scale'.data holds 2 values, shape [3] needs 3",
      ].join('\n'),
    );
    net.namedParameters().forEach(([, p], i) => expectSameBits(before[i], p.data));
  });

  it('strict: false skips names found on one side only, but still refuses shape mismatches', () => {
    const net = new Net(1);
    const source = new Net(2);
    const sd = stateDict(source);
    delete (sd as Record<string, unknown>)['scale'];
    sd['head.weight'] = { shape: [1], dtype: 'float32', data: new Float32Array(1) };
    expect(() => loadStateDict(net, sd)).toThrow(/missing from the checkpoint \(1\): 'scale' \[3\]/);
    const scaleBefore = Float32Array.from(net.scale.data as Float32Array);
    loadStateDict(net, sd, { strict: false });
    expectSameBits(source.layers[0].weight.data, net.layers[0].weight.data);
    expectSameBits(scaleBefore, net.scale.data);
    sd['layers.0.bias'] = { shape: [7], dtype: 'float32', data: new Float32Array(7) };
    expect(() => loadStateDict(net, sd, { strict: false })).toThrow("'layers.0.bias': the checkpoint has shape [7], the module [6]");
  });

  it('keeps flat parameters as views into the flat buffer', async () => {
    const net = new Net(1);
    const flat = flattenParameters(net);
    const storages = net.parameters().map((p) => p.storage);
    const path = join(dir, 'flat.loom');
    const source = new Net(5);
    saveCheckpointSync(path, { step: 3, config: null, params: stateDict(source) });
    loadStateDict(net, (await loadCheckpoint(path)).params);
    for (const [i, [name, p]] of net.namedParameters().entries()) {
      expect(p.storage).toBe(storages[i]);
      expect((p.storage as Float32Array).buffer).toBe(flat.values.buffer);
      const e = flat.layout.entries[i];
      expect(e.name).toBe(name);
      expectSameBits(source.namedParameters()[i][1].data, flat.values.subarray(e.offset, e.offset + e.size));
    }
  });

  it('says so when handed a whole checkpoint instead of its params', async () => {
    const path = join(dir, 'whole.loom');
    await saveCheckpoint(path, { step: 1, config: null, params: stateDict(new Net(1)) });
    const whole = await loadCheckpoint(path);
    expect(() => loadStateDict(new Net(1), whole as never)).toThrow("loadStateDict: 'params' is a whole checkpoint; pass checkpoint.params");
  });
});
