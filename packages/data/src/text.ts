import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors.js';
import type { ProgressCallback, ProgressEvent } from './progress.js';

/**
 * Whitespace as Python's `str.split()` sees it (so word tokens match PyTorch's word_language_model):
 * ASCII \t \n \v \f \r, space, \x1c-\x1f, and the Unicode spaces (NEL, NBSP, U+1680, U+2000-U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000).
 */
export function isSpace(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31);
  if (c < 0x85) return false;
  return (
    c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}

/** Decodes UTF-8 strictly (a leading BOM is dropped); invalid bytes are a DataError naming the file. */
export function decodeUtf8(bytes: Uint8Array, file?: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataError(`invalid UTF-8: expected a UTF-8 text file (${bytes.length} bytes)`, { file });
  }
}

/** Reads a whole (small) text file: dataset readers use this; corpora use `forEachTextChunk`. */
export function readTextFile(file: string): string {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new DataError(`cannot read file: ${(e as Error).message}`, { file });
  }
  return decodeUtf8(bytes, file);
}

/**
 * Splits text into lines on '\n', dropping a '\r' before it (CRLF) and the empty string after a final
 * newline, as Python's `for line in f` would.
 */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.length > 0 && l.charCodeAt(l.length - 1) === 13) lines[i] = l.slice(0, -1);
  }
  return lines;
}

export interface TextChunkOptions {
  /** Bytes per read; 1 MiB by default. */
  chunkBytes?: number;
  /** The longest run without a token boundary that is carried between reads (default 64 MiB of text). */
  maxCarry?: number;
  onProgress?: ProgressCallback;
  phase?: ProgressEvent['phase'];
}

/**
 * Streams files as decoded text in chunks, in bounded memory. Each chunk given to `onText` ends at a
 * universal token boundary: just before a whitespace character that follows a non-whitespace one
 * (or at the end of the file). Word, character and BPE pre-tokenisation never join tokens across
 * such a point, so tokenising chunk by chunk gives the same ids as tokenising the whole file.
 * UTF-8 sequences split across reads are joined by the streaming decoder; invalid UTF-8 is a
 * DataError naming the file and byte offset. `onFileEnd` is called after each file's last chunk.
 */
export function forEachTextChunk(
  files: readonly string[],
  onText: (text: string, file: string) => void,
  onFileEnd: (file: string) => void,
  options: TextChunkOptions = {},
): void {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const maxCarry = options.maxCarry ?? 64 << 20;
  const phase = options.phase ?? 'count';
  const sizes = files.map((f) => fileSize(f));
  const bytesTotal = sizes.reduce((a, b) => a + b, 0);
  const buf = Buffer.allocUnsafe(chunkBytes);
  let bytesDone = 0;
  for (const file of files) {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const fd = openFile(file);
    try {
      let pos = 0;
      let carry = '';
      for (;;) {
        const n = fs.readSync(fd, buf, 0, chunkBytes, pos);
        let text: string;
        try {
          text = n > 0 ? decoder.decode(buf.subarray(0, n), { stream: true }) : decoder.decode();
        } catch {
          throw new DataError(`invalid UTF-8 in bytes ${pos}..${pos + n}: expected UTF-8 text`, { file });
        }
        pos += n;
        bytesDone += n;
        if (n === 0) {
          if (carry.length + text.length > 0) onText(carry + text, file);
          break;
        }
        text = carry + text;
        const cut = lastBoundary(text);
        if (cut > 0) {
          onText(text.slice(0, cut), file);
          carry = text.slice(cut);
        } else {
          carry = text;
          if (carry.length > maxCarry) {
            throw new DataError(
              `no whitespace boundary in ${carry.length} characters before byte ${pos}: expected text with whitespace at least every ${maxCarry} characters`,
              { file },
            );
          }
        }
        options.onProgress?.({ phase, file, bytesDone, bytesTotal });
      }
    } finally {
      fs.closeSync(fd);
    }
    onFileEnd(file);
  }
  options.onProgress?.({ phase, file: files[files.length - 1] ?? '', bytesDone, bytesTotal });
}

/** The last index i > 0 where text[i] is whitespace and text[i-1] is not; 0 if none. */
function lastBoundary(text: string): number {
  for (let i = text.length - 1; i > 0; i--) {
    if (isSpace(text.charCodeAt(i)) && !isSpace(text.charCodeAt(i - 1))) return i;
  }
  return 0;
}

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch (e) {
    throw new DataError(`cannot read file: ${(e as Error).message}`, { file });
  }
}

function openFile(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    throw new DataError(`cannot open file: ${(e as Error).message}`, { file });
  }
}

export interface ListTextFilesOptions {
  /**
   * A glob matched against paths relative to the folder, with '/' separators: `*` matches within one
   * path segment, `**` any number of segments, `?` one character. Default: every file.
   */
  pattern?: string;
  /** Include files and folders whose name starts with '.' (default false). */
  hidden?: boolean;
}

/**
 * The text files of a corpus: a file path gives itself; a folder is walked recursively and its files
 * returned sorted by relative path (JavaScript string order), so every run and every worker sees the
 * same order.
 */
export function listTextFiles(root: string, options: ListTextFilesOptions = {}): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch (e) {
    throw new DataError(`listTextFiles: cannot read path: ${(e as Error).message}`, { file: root });
  }
  if (stat.isFile()) return [root];
  const match = options.pattern === undefined ? undefined : globToRegExp(options.pattern);
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!options.hidden && entry.name.startsWith('.')) continue;
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, relPath);
      else if (entry.isFile() && (match === undefined || match.test(relPath))) out.push(relPath);
    }
  };
  walk(root, '');
  out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return out.map((rel) => path.join(root, rel));
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      // '**/' matches zero or more whole segments; a trailing '**' matches the rest.
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
