/*
 * SIGINT ends the current step cleanly, saves a checkpoint and exits normally: a real process
 * (test/fixtures/coordinator-train.ts under tsx) gets a real signal.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { loadCheckpointSync } from '@loom/core';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-sigint-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Under `pnpm train` one Ctrl-C arrives twice, ~30 ms apart: the terminal signals the whole process group and
// pnpm relays its own copy to the child. That copy must not count as the "second Ctrl-C" that quits at once.
test.each([
  ['one SIGINT', [0]],
  ['one Ctrl-C under pnpm (the same SIGINT relayed 30 ms later)', [0, 30]],
])('%s: the step finishes, a checkpoint of that step is saved, the process exits with 0', async (_name, delays) => {
  const ckpt = path.join(dir, `sigint-${delays.length}.loom`);
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const script = fileURLToPath(new URL('./fixtures/coordinator-train.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', tsx, script, ckpt], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: { type: string; step?: number; reason?: string; stopped?: string | null; checkpoint?: string }[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let buffered = '';
  let signalled = false;
  child.stdout.on('data', (d) => {
    buffered += d;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const e = JSON.parse(line);
      events.push(e);
      if (e.type === 'step' && e.step === 5 && !signalled) {
        signalled = true;
        for (const ms of delays) setTimeout(() => child.kill('SIGINT'), ms);
      }
    }
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000); // never hang the test
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(killer);
  expect(code, stderr).toBe(0);
  expect(stderr).toContain('trainer: SIGINT: finishing the current step, then saving a checkpoint');
  const steps = events.filter((e) => e.type === 'step').map((e) => e.step!);
  const last = steps[steps.length - 1];
  expect(last).toBeGreaterThanOrEqual(5);
  expect(last).toBeLessThan(20); // it stopped soon after the signal, not at the end of 50 epochs
  expect(steps).toEqual([...Array(last).keys()].map((i) => i + 1));
  expect(events.find((e) => e.type === 'stopped')).toMatchObject({ step: last, reason: 'SIGINT', checkpoint: ckpt });
  expect(events.find((e) => e.type === 'result')).toMatchObject({ step: last, stopped: 'SIGINT' });
  expect(loadCheckpointSync(ckpt).step).toBe(last);
}, 90_000);
