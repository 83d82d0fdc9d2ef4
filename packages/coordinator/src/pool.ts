/*
 * The worker pool: N long-lived piscina tasks, one per thread, each serving WorkerControl over comlink
 * (worker.ts). The pool turns everything that can go wrong with a worker into one FaultReport:
 *
 *   - it throws (the run() or init() call rejects with the worker's error),
 *   - its thread exits (the piscina task rejects),
 *   - it stops answering (a step or a call runs past its timeout; the thread is terminated).
 *
 * Every wait here is bounded, and the coordinator's thread never blocks: it waits with
 * Atomics.waitAsync and promises.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import * as Comlink from 'comlink';
import { Piscina } from 'piscina';
import { abortAll, waitForCount } from './barrier.js';
import { portEndpoint } from './endpoint.js';
import type { FaultReport, WorkerControl } from './protocol.js';
import { Cmd, Ctl, PHASE_NAMES, Phase, phaseOf, stepOf } from './shared-memory.js';

/** A worker fault that ended the attempt; `report` names the worker and what happened. */
export class WorkerFault extends Error {
  override name = 'WorkerFault';
  constructor(readonly report: FaultReport, readonly restartable = true) {
    super(report.message);
  }
}

/** How long to collect the other workers' news after the first sign of a fault. */
const GRACE_MS = 1000;

interface Slot {
  rank: number;
  api: Comlink.Remote<WorkerControl>;
  port: MessagePort;
  task: Promise<unknown>;
  /** What happened to this worker, once something did. */
  error?: { kind: 'error' | 'exit'; error: Error };
  /** The pending run() call, while the worker runs steps. */
  running?: Promise<unknown>;
}

/** The worker file: worker.ts under tsx/vitest (development), worker.js in the published package. */
function workerFile(): { filename: string; execArgv: string[] } {
  const here = import.meta.url;
  const ts = /\.ts$/.test(new URL(here).pathname);
  const filename = new URL(ts ? './worker.ts' : './worker.js', here).href;
  const execArgv = [...process.execArgv];
  if (ts && !execArgv.some((a) => a.includes('tsx'))) {
    // The workers need tsx's loader for TypeScript sources; resolve it from here (the workspace has it).
    let tsx = 'tsx';
    try {
      tsx = pathToFileURL(createRequire(here).resolve('tsx')).href;
    } catch {
      // leave it to Node's resolution from the current directory
    }
    execArgv.push('--import', tsx);
  }
  return { filename, execArgv };
}

export class WorkerPool {
  private readonly piscina: Piscina;
  readonly slots: Slot[];
  /** Resolves when any worker reports an error or exits (never rejects). */
  private readonly firstFault: Promise<void>;
  private signalFault!: () => void;
  private destroyed = false;

  constructor(readonly workers: number, private readonly control: Int32Array) {
    const { filename, execArgv } = workerFile();
    this.piscina = new Piscina({
      filename,
      execArgv,
      minThreads: workers,
      maxThreads: workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: Infinity,
      atomics: 'disabled',
    });
    this.firstFault = new Promise((resolve) => (this.signalFault = resolve));
    this.slots = Array.from({ length: workers }, (_, rank) => {
      const { port1, port2 } = new MessageChannel();
      const task = this.piscina.run({ port: port2 }, { transferList: [port2 as never] });
      const slot: Slot = { rank, api: Comlink.wrap<WorkerControl>(portEndpoint(port1)), port: port1, task };
      task.catch((e: Error) => {
        if (this.destroyed) return;
        slot.error ??= { kind: 'exit', error: e };
        this.signalFault();
      });
      return slot;
    });
  }

  /**
   * Calls every worker (`call(api, rank)`) and waits for all answers, at most timeoutMs. Any failure
   * becomes a WorkerFault naming the worker.
   */
  async all<T>(what: string, step: number, timeoutMs: number, call: (api: Comlink.Remote<WorkerControl>, rank: number) => Promise<T>): Promise<T[]> {
    const answered = this.slots.map(() => false);
    const calls = this.slots.map((s) =>
      call(s.api, s.rank).then(
        (v) => ((answered[s.rank] = true), v),
        (e: Error) => {
          answered[s.rank] = true;
          s.error ??= { kind: 'error', error: e };
          this.signalFault();
          throw e;
        },
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const settled = Promise.all(calls).then((v) => ({ ok: v }), () => 'fault' as const);
    try {
      const r = await Promise.race([settled, timeout, this.firstFault.then(() => 'fault' as const)]);
      if (typeof r === 'object') return r.ok;
      const late = r === 'timeout' ? answered.flatMap((a, rank) => (a ? [] : [rank])) : [];
      throw await this.diagnose(step, what, r === 'timeout' ? { ms: timeoutMs, late } : null);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts every worker's run() loop (it returns at the next PAUSE). */
  startRunning(): void {
    for (const s of this.slots) {
      s.running = s.api.run().catch((e: Error) => {
        s.error ??= { kind: 'error', error: e };
        this.signalFault();
      });
    }
  }

  /** Hands out the command already written to shared memory (GO), and waits for every worker's DONE. */
  async go(step: number, timeoutMs: number): Promise<void> {
    const c = this.control;
    Atomics.store(c, Ctl.DONE, 0);
    Atomics.add(c, Ctl.GO, 1);
    Atomics.notify(c, Ctl.GO);
    const r = await Promise.race([waitForCount(c, Ctl.DONE, this.workers, timeoutMs), this.firstFault.then(() => 'fault' as const)]);
    if (r === 'ok') return;
    // The late workers: not done, and not waiting at a barrier for somebody else.
    const phase = (rank: number): number => Atomics.load(c, phaseOf(rank));
    const notDone = this.slots.map((s) => s.rank).filter((rank) => phase(rank) !== Phase.DONE);
    const busy = notDone.filter((rank) => phase(rank) !== Phase.BARRIER_GRADS && phase(rank) !== Phase.BARRIER_NORM);
    const late = r === 'timeout' ? (busy.length ? busy : notDone) : [];
    throw await this.diagnose(step, 'step', r === 'timeout' ? { ms: timeoutMs, late } : null);
  }

  /** Ends the run() loops (PAUSE) so that the control surface is free. */
  async pause(step: number, timeoutMs: number): Promise<void> {
    Atomics.store(this.control, Ctl.CMD, Cmd.PAUSE);
    await this.go(step, timeoutMs);
    await Promise.all(this.slots.map((s) => s.running));
    if (this.slots.some((s) => s.error)) throw await this.diagnose(step, 'pause', null);
  }

  /** Asks every worker to end its task, then takes the threads down. Bounded: a worker that does not answer is terminated. */
  async close(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const stops = Promise.all(this.slots.map((s) => s.api.stop().then(() => s.task))).catch(() => undefined);
    await Promise.race([stops, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    await this.destroy();
  }

  /** Terminates every thread (a busy-looping one too). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    abortAll(this.control);
    for (const s of this.slots) {
      s.api[Comlink.releaseProxy]();
      s.port.close();
    }
    await this.piscina.destroy();
  }

  /**
   * The first sign of a fault has come: wake everyone (ABORT), give the workers a moment to report, then
   * name the worker at fault. `timeout` is set when nothing failed but something took too long.
   */
  private async diagnose(step: number, what: string, timeout: { ms: number; late: number[] } | null): Promise<WorkerFault> {
    const c = this.control;
    const phases = this.slots.map((s) => PHASE_NAMES[Atomics.load(c, phaseOf(s.rank))] ?? 'unknown');
    abortAll(c);
    const settle = Promise.all(this.slots.map((s) => Promise.all([s.running, s.task]).catch(() => undefined)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settle, new Promise((resolve) => (timer = setTimeout(resolve, GRACE_MS)))]);
    clearTimeout(timer);

    const stepOfRank = (r: number): number => Atomics.load(c, stepOf(r)) || step;
    const aborted = (e: Error): boolean => e.name === 'WorkerAborted';
    const firstRank = Atomics.load(c, Ctl.FAULT_RANK);
    const own = this.slots.filter((s) => s.error && !aborted(s.error.error));
    const primary = own.find((s) => s.rank === firstRank) ?? own.find((s) => s.error!.kind === 'exit') ?? own[0];
    if (primary) {
      const { kind, error } = primary.error!;
      const r = primary.rank;
      const at = what === 'step' || what === 'pause' ? `step ${stepOfRank(r)} (${phases[r]})` : `${what} (step ${step})`;
      const message = kind === 'exit'
        ? `worker ${r} exited at ${at}: ${error.message}`
        : `worker ${r} threw at ${at}: ${error.name}: ${error.message}`;
      return new WorkerFault({ kind, rank: r, step: stepOfRank(r), phase: phases[r], message, ...(error.stack ? { stack: error.stack } : {}) });
    }
    if (timeout) {
      const late = timeout.late.length ? timeout.late : [0];
      const r = late[0];
      const waiting = this.slots.map((s) => s.rank).filter((x) => !late.includes(x));
      const others = waiting.length ? `; worker${waiting.length === 1 ? '' : 's'} ${waiting.join(', ')} ${waiting.length === 1 ? 'was' : 'were'} ${phases[waiting[0]]}` : '';
      return new WorkerFault({
        kind: 'timeout', rank: r, step: stepOfRank(r), phase: phases[r],
        message: `worker${late.length === 1 ? '' : 's'} ${late.join(', ')} stopped answering: ${what === 'step' ? `step ${stepOfRank(r)}` : `${what} (step ${step})`} not finished after ${timeout.ms} ms (worker ${r} was ${phases[r]})${others}; terminated`,
      });
    }
    const r = Math.max(0, firstRank);
    return new WorkerFault({ kind: 'error', rank: r, step: stepOfRank(r), phase: phases[r], message: `worker ${r} failed at step ${stepOfRank(r)} (${phases[r]}) without a report` });
  }
}
