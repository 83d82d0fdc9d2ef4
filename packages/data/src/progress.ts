/** One report from a long pass (counting, encoding, BPE training), sent after each chunk read. */
export interface ProgressEvent {
  phase: 'count' | 'encode' | 'bpe-count';
  /** The file being read when the event was sent. */
  file: string;
  /** Bytes read so far over all files of the pass. */
  bytesDone: number;
  /** Bytes of all files of the pass. */
  bytesTotal: number;
}

export type ProgressCallback = (event: ProgressEvent) => void;

/**
 * A progress callback for scripts: rewrites one line on stderr at most every `intervalMs`, and
 * ends it with a newline when a phase completes.
 */
export function progressPrinter(
  label = '',
  { intervalMs = 500, stream = process.stderr }: { intervalMs?: number; stream?: NodeJS.WritableStream } = {},
): ProgressCallback {
  let last = 0;
  let phaseStart = Date.now();
  let phase = '';
  return (e) => {
    const now = Date.now();
    if (e.phase !== phase) {
      phase = e.phase;
      phaseStart = now;
      last = 0;
    }
    const done = e.bytesDone >= e.bytesTotal;
    if (!done && now - last < intervalMs) return;
    last = now;
    const mb = e.bytesDone / 1e6;
    const pct = e.bytesTotal > 0 ? (100 * e.bytesDone) / e.bytesTotal : 100;
    const secs = Math.max(1e-3, (now - phaseStart) / 1000);
    const line = `${label}${label ? ' ' : ''}${e.phase}: ${mb.toFixed(1)} / ${(e.bytesTotal / 1e6).toFixed(1)} MB (${pct.toFixed(1)}%, ${(mb / secs).toFixed(1)} MB/s)`;
    stream.write(`\r${line}${done ? '\n' : ''}`);
  };
}
