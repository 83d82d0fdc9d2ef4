import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError, checkpointPath, listCheckpoints, loadCheckpoint, loadCheckpointSync, rotateCheckpoints, saveCheckpoint, saveCheckpointSync,
  type CheckpointInput,
} from '../src/index.js';
import { encodeCheckpoint } from '../src/checkpoint/format.js';
import { writeFileAtomic, writeFileAtomicSync, type AtomicWriteHooks } from '../src/checkpoint/atomic.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'loom-ckpt-atomic-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function ckpt(step: number, n = 8, value = step): CheckpointInput {
  return { step, config: { step }, params: { w: { shape: [n], dtype: 'float32', data: new Float32Array(n).fill(value) } } };
}

const entries = (d: string, prefix: string): string[] => fs.readdirSync(d).filter((n) => n.startsWith(prefix)).sort();

describe('atomic checkpoint writes', () => {
  it('replaces an existing checkpoint', async () => {
    const path = join(dir, 'replace.loom');
    await saveCheckpoint(path, ckpt(1));
    await saveCheckpoint(path, ckpt(2));
    saveCheckpointSync(path, ckpt(3));
    expect((await loadCheckpoint(path)).step).toBe(3);
    expect(entries(dir, 'replace.loom')).toEqual(['replace.loom']); // no temporary file left behind
  });

  for (const mode of ['sync', 'async'] as const) {
    it(`a write that fails half-way (${mode}) leaves the previous checkpoint intact and removes its temporary file`, async () => {
      const path = join(dir, `interrupted-${mode}.loom`);
      await saveCheckpoint(path, ckpt(1));
      const before = fs.readFileSync(path);
      // 4M floats: 16 MB of payload, written in several slices, so the failure lands inside the payload.
      const chunks = encodeCheckpoint(ckpt(2, 4_000_000), 'test');
      const seen: { written: number; total: number; tempSize: number }[] = [];
      const hooks: AtomicWriteHooks = {
        onProgress(written, total) {
          const temps = entries(dir, `interrupted-${mode}.loom.tmp-`);
          expect(temps).toHaveLength(1);
          seen.push({ written, total, tempSize: fs.statSync(join(dir, temps[0])).size });
          if (written >= total / 2) throw new Error('ENOSPC: no space left on device (simulated)');
        },
      };
      const write = mode === 'sync' ? async () => writeFileAtomicSync(path, chunks, hooks) : () => writeFileAtomic(path, chunks, hooks);
      await expect(write()).rejects.toThrow('ENOSPC: no space left on device (simulated)');
      const last = seen[seen.length - 1];
      expect(last.written).toBeLessThan(last.total); // it really stopped half-way...
      expect(last.tempSize).toBe(last.written); // ...with that much of the new file on disk
      expect(entries(dir, `interrupted-${mode}.loom`)).toEqual([`interrupted-${mode}.loom`]);
      expect(fs.readFileSync(path).equals(before)).toBe(true);
      expect(loadCheckpointSync(path).step).toBe(1);
    });
  }

  it('a save that cannot complete reports the path and keeps what was there', async () => {
    const path = join(dir, 'is-a-directory.loom');
    fs.mkdirSync(join(path, 'inside'), { recursive: true });
    let error: unknown;
    await saveCheckpoint(path, ckpt(1)).catch((e: unknown) => (error = e));
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toMatch(new RegExp(`^saveCheckpoint: could not write ${path}: .*; the file previously at that path \\(if any\\) is unchanged$`));
    expect(() => saveCheckpointSync(path, ckpt(1))).toThrow(`saveCheckpointSync: could not write ${path}`);
    expect(fs.readdirSync(path)).toEqual(['inside']);
    expect(entries(dir, 'is-a-directory.loom.tmp-')).toEqual([]);
    const nowhere = join(dir, 'no-such-dir', 'x.loom');
    await expect(saveCheckpoint(nowhere, ckpt(1))).rejects.toThrow(`saveCheckpoint: could not write ${nowhere}: ENOENT`);
  });

  it('a writer killed with SIGKILL mid-write leaves the previous checkpoint loadable and its temporary file ignored', async () => {
    const ckdir = join(dir, 'killed');
    fs.mkdirSync(ckdir);
    const path = checkpointPath(ckdir, 1);
    await saveCheckpoint(path, ckpt(1));
    const before = fs.readFileSync(path);

    const testDir = dirname(fileURLToPath(import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', join(testDir, 'checkpoint-crash-child.ts'), path], {
      cwd: join(testDir, '..', '..', '..'), // the workspace root, where tsx is installed
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000, // bounds the child even if this test goes wrong
      killSignal: 'SIGKILL',
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
    const half = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before reaching half-way: ${stderr}`)));
    });
    const [, written, total] = half.split(' ').map(Number);
    const temps = entries(ckdir, 'ckpt-00000001.loom.tmp-');
    expect(temps).toHaveLength(1);
    expect(fs.statSync(join(ckdir, temps[0])).size).toBe(written);
    expect(written).toBeLessThan(total);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // The old checkpoint is untouched and still the only one a reader sees.
    expect(fs.readFileSync(path).equals(before)).toBe(true);
    expect((await loadCheckpoint(path)).step).toBe(1);
    expect(listCheckpoints(ckdir)).toEqual([{ path, step: 1 }]);
    expect(entries(ckdir, '')).toEqual(['ckpt-00000001.loom', temps[0]]);
    // Rotation clears the dead writer's leftovers and keeps the checkpoint.
    expect(rotateCheckpoints(ckdir, 3)).toEqual([join(ckdir, temps[0])]);
    expect(entries(ckdir, '')).toEqual(['ckpt-00000001.loom']);
  });
});

describe('checkpoint directories', () => {
  it('names checkpoints by step, lists them in step order and rotates to the newest K', async () => {
    const ckdir = join(dir, 'rotate');
    fs.mkdirSync(ckdir);
    expect(checkpointPath(ckdir, 120)).toBe(join(ckdir, 'ckpt-00000120.loom'));
    expect(checkpointPath(ckdir, 123_456_789)).toBe(join(ckdir, 'ckpt-123456789.loom'));
    for (const step of [5, 100, 20, 123_456_789, 1]) await saveCheckpoint(checkpointPath(ckdir, step), ckpt(step));
    // A live writer's temporary file (this process's) and unrelated files are left alone.
    const liveTemp = `ckpt-00000200.loom.tmp-${process.pid}-abcd1234`;
    fs.writeFileSync(join(ckdir, liveTemp), 'partial');
    fs.writeFileSync(join(ckdir, 'notes.txt'), 'keep me');
    expect(listCheckpoints(ckdir).map((c) => c.step)).toEqual([1, 5, 20, 100, 123_456_789]);
    expect(rotateCheckpoints(ckdir, 2)).toEqual([1, 5, 20].map((s) => checkpointPath(ckdir, s)));
    expect(fs.readdirSync(ckdir).sort()).toEqual(['ckpt-00000100.loom', 'ckpt-123456789.loom', liveTemp, 'notes.txt'].sort());
    expect((await loadCheckpoint(checkpointPath(ckdir, 100))).step).toBe(100);
    expect(rotateCheckpoints(ckdir, 2)).toEqual([]);
    expect(listCheckpoints(join(ckdir, 'absent'))).toEqual([]);
    expect(() => rotateCheckpoints(ckdir, 0)).toThrow('rotateCheckpoints: keep must be a positive integer, got 0');
    expect(() => checkpointPath(ckdir, -1)).toThrow('checkpointPath: step must be a non-negative integer, got -1');
  });
});
