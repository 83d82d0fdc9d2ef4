// A scratch folder for the coordinator's cross-package tests. Kept apart from coordinator.ts, which
// test/fixtures/coordinator-train.ts also imports in a plain Node process, where vitest has no runner.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import { TokenFileWriter } from '@loom/data';
import { TINY_LM } from './coordinator.js';

/**
 * A temporary folder, removed after the calling test file's tests, and `tokenFile(name, ids)`, which writes
 * ids there as a token file of the tiny model's vocabulary and returns its path. Call at module level.
 */
export function scratchDir(prefix: string): { dir: string; tokenFile: (name: string, ids: Int32Array) => string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tokenFile = (name: string, ids: Int32Array): string => {
    const file = path.join(dir, name);
    const w = new TokenFileWriter(file, TINY_LM.config.vocabSize, createHash('sha256').update('tiny vocabulary').digest('hex'));
    w.write(ids);
    w.close();
    return file;
  };
  return { dir, tokenFile };
}
