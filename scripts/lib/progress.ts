/*
 * Training progress: on a terminal, one bar rewritten in place (at most 10 times a second); otherwise
 * (a log file, CI) a plain line every `logSeconds`, so logs stay readable and small. Both show tokens/s,
 * loss, perplexity, learning rate and the estimated time left.
 */

export interface ProgressState {
  step: number;
  totalSteps: number;
  epoch: number; // from 1
  epochs: number;
  /** Mean training loss since the last report (smoothed). */
  loss: number;
  lr: number;
  /** Tokens trained on since the start of this process (for tokens/s). */
  tokens: number;
}

export interface ProgressOptions {
  /** Defaults to process.stdout. */
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Force the terminal (true) or plain (false) form; default: whether the stream is a TTY. */
  tty?: boolean;
  /** Plain form: seconds between lines. */
  logSeconds?: number;
  /** For tests: the clock in ms. */
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

export function formatRate(x: number): string {
  return x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

export class ProgressBar {
  readonly tty: boolean;
  private readonly stream: NodeJS.WritableStream;
  private readonly logSeconds: number;
  private readonly now: () => number;
  private start = -1;
  private startStep = 0;
  private startTokens = 0;
  private lastDraw = -Infinity;
  private lastLine = -Infinity;
  private drawn = false;
  /** Exponential moving average of the loss (the per-step loss is noisy). */
  private ema = NaN;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stdout;
    this.tty = options.tty ?? Boolean((this.stream as NodeJS.WriteStream).isTTY);
    this.logSeconds = options.logSeconds ?? 10;
    this.now = options.now ?? (() => performance.now());
  }

  /** Called after every step. */
  update(p: ProgressState): void {
    const t = this.now();
    if (this.start < 0) {
      // The first step includes warm-up (JIT, workers starting): rates are measured from it on.
      this.start = t;
      this.startStep = p.step;
      this.startTokens = p.tokens;
      this.lastLine = t;
    }
    this.ema = Number.isNaN(this.ema) ? p.loss : 0.9 * this.ema + 0.1 * p.loss;
    const last = p.step >= p.totalSteps;
    if (this.tty) {
      if (t - this.lastDraw < 100 && !last) return;
      this.lastDraw = t;
      this.stream.write(`\r${this.line(p, t, true)}\x1b[K`);
      this.drawn = true;
    } else if (t - this.lastLine >= this.logSeconds * 1000 || last) {
      this.lastLine = t;
      this.stream.write(this.line(p, t, false) + '\n');
    }
  }

  /** Prints a line of its own (an evaluation, a checkpoint) without breaking the bar. */
  message(text: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
    this.stream.write(text + '\n');
    this.lastDraw = -Infinity; // redraw the bar on the next update
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private line(p: ProgressState, t: number, bar: boolean): string {
    const secs = (t - this.start) / 1000;
    const steps = p.step - this.startStep;
    const tokPerS = secs > 0 ? (p.tokens - this.startTokens) / secs : NaN;
    const eta = steps > 0 ? ((p.totalSteps - p.step) * secs) / steps : NaN;
    const frac = p.totalSteps > 0 ? p.step / p.totalSteps : 0;
    const width = 20;
    const filled = Math.round(frac * width);
    const head = bar ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    const loss = this.ema;
    return (
      `${head}step ${p.step}/${p.totalSteps} (${(frac * 100).toFixed(0)}%) epoch ${p.epoch}/${p.epochs}` +
      ` | loss ${loss.toFixed(3)} ppl ${fmtPpl(Math.exp(loss))} | lr ${p.lr.toPrecision(3)}` +
      ` | ${Number.isFinite(tokPerS) ? formatRate(tokPerS) : '--'} tok/s | ETA ${formatDuration(eta)}`
    );
  }
}

export function fmtPpl(ppl: number): string {
  return ppl >= 1e4 ? ppl.toExponential(2) : ppl >= 100 ? ppl.toFixed(1) : ppl.toFixed(2);
}
