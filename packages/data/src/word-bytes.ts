import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import { DataError } from './errors.js';
import type { ProgressCallback, ProgressEvent } from './progress.js';
import { fileSize } from './text.js';
import type { TokenBuffer } from './tokenizers.js';

// The word-level hot path, on UTF-8 bytes. Counting and encoding a corpus spend their time on one
// lookup per word; decoding to a string, slicing each word and hashing it in a Map ran at ~30 MB/s,
// hashing the word's bytes in place in this open-addressing table runs several times faster and
// allocates nothing per word. It gives exactly the tokens of WordTokenizer's string path (tested).

/** An open-addressing hash table from byte strings to numbers (a count or an id). */
export class ByteTable {
  size = 0;
  values = new Float64Array(1024);
  private slots = new Int32Array(2048); // entry index + 1; 0 = empty
  private hashes = new Int32Array(1024);
  private offsets = new Int32Array(1024);
  private lengths = new Int32Array(1024);
  private arena = new Uint8Array(1 << 16);
  private arenaLength = 0;

  static hash(buf: Uint8Array, s: number, e: number): number {
    let h = 0x811c9dc5 | 0;
    for (let i = s; i < e; i++) h = Math.imul(h ^ buf[i], 16777619);
    return h;
  }

  /** The entry index of bytes [s, e), or -1. */
  find(buf: Uint8Array, s: number, e: number, h: number): number {
    const mask = this.slots.length - 1;
    const len = e - s;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const k = this.slots[slot] - 1;
      if (k < 0) return -1;
      if (this.hashes[k] === h && this.lengths[k] === len) {
        const o = this.offsets[k];
        let j = 0;
        while (j < len && this.arena[o + j] === buf[s + j]) j++;
        if (j === len) return k;
      }
    }
  }

  /** Adds bytes [s, e) (not present) with a value; returns its entry index. */
  insert(buf: Uint8Array, s: number, e: number, h: number, value: number): number {
    const k = this.size++;
    if (k === this.hashes.length) this.growEntries();
    const len = e - s;
    if (this.arenaLength + len > this.arena.length) {
      const grown = new Uint8Array(Math.max(this.arena.length * 2, this.arenaLength + len));
      grown.set(this.arena.subarray(0, this.arenaLength));
      this.arena = grown;
    }
    this.arena.set(buf.subarray(s, e), this.arenaLength);
    this.hashes[k] = h;
    this.offsets[k] = this.arenaLength;
    this.lengths[k] = len;
    this.values[k] = value;
    this.arenaLength += len;
    if (this.size * 2 > this.slots.length) this.rehash();
    else this.place(k);
    return k;
  }

  /** The bytes of entry k, decoded. */
  key(k: number): string {
    return Buffer.from(this.arena.buffer, this.arena.byteOffset + this.offsets[k], this.lengths[k]).toString('utf8');
  }

  private place(k: number): void {
    const mask = this.slots.length - 1;
    let slot = this.hashes[k] & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = k + 1;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    for (let k = 0; k < this.size; k++) this.place(k);
  }

  private growEntries(): void {
    const n = this.hashes.length * 2;
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.hashes = grow(this.hashes, (m) => new Int32Array(m));
    this.offsets = grow(this.offsets, (m) => new Int32Array(m));
    this.lengths = grow(this.lengths, (m) => new Int32Array(m));
    this.values = grow(this.values, (m) => new Float64Array(m));
  }
}

/**
 * The length of the UTF-8 whitespace character at buf[i] (Python `str.split()` whitespace, as
 * `isSpace`), or 0. ASCII is tested by the caller; this handles the multi-byte ones.
 */
function unicodeSpaceLength(buf: Uint8Array, i: number, end: number): number {
  const b = buf[i];
  if (b === 0xc2 && i + 1 < end) return buf[i + 1] === 0x85 || buf[i + 1] === 0xa0 ? 2 : 0;
  if (i + 2 >= end) return 0;
  const b1 = buf[i + 1];
  const b2 = buf[i + 2];
  if (b === 0xe1) return b1 === 0x9a && b2 === 0x80 ? 3 : 0;
  if (b === 0xe2) {
    if (b1 === 0x80) return (b2 >= 0x80 && b2 <= 0x8a) || b2 === 0xa8 || b2 === 0xa9 || b2 === 0xaf ? 3 : 0;
    if (b1 === 0x81) return b2 === 0x9f ? 3 : 0;
    return 0;
  }
  if (b === 0xe3) return b1 === 0x80 && b2 === 0x80 ? 3 : 0;
  return 0;
}

export interface WordPassOptions {
  lowercase: boolean;
  onProgress?: ProgressCallback;
  phase: ProgressEvent['phase'];
  chunkBytes?: number;
  maxCarry?: number;
}

/**
 * One pass over files, calling `word(buf, s, e)` for each whitespace-separated word (its UTF-8 bytes,
 * ASCII-lowercased in place when asked) and `eol()` at each line end, including a last line without
 * '\n'. Bytes are read in chunks cut after an ASCII whitespace byte (never inside a UTF-8 sequence)
 * and validated as UTF-8. Non-ASCII words are lowercased by `lowerUnicode` (a string round trip).
 */
export function forEachWordBytes(
  files: readonly string[],
  word: (buf: Uint8Array, s: number, e: number) => void,
  eol: () => void,
  options: WordPassOptions,
): void {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const maxCarry = options.maxCarry ?? 64 << 20;
  const { lowercase, phase, onProgress } = options;
  const bytesTotal = files.reduce((a, f) => a + fileSize(f), 0);
  let bytesDone = 0;
  let buf = new Uint8Array(chunkBytes * 2);
  for (const file of files) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new DataError(`cannot open file: ${(e as Error).message}`, { file });
    }
    let openLine = false;
    try {
      let pos = 0; // file offset of buf[0]
      let have = 0; // bytes in buf
      let bomChecked = false;
      for (;;) {
        if (buf.length - have < chunkBytes) {
          if (have > maxCarry) throw new DataError(`no ASCII whitespace in ${have} bytes after byte ${pos}: expected text with whitespace at least every ${maxCarry} bytes`, { file });
          const grown = new Uint8Array(buf.length * 2);
          grown.set(buf.subarray(0, have));
          buf = grown;
        }
        const n = fs.readSync(fd, buf, have, chunkBytes, pos + have);
        bytesDone += n;
        have += n;
        if (!bomChecked && (have >= 3 || n === 0)) {
          // A leading BOM is dropped, as TextDecoder does on the string path.
          if (have >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
            buf.copyWithin(0, 3, have);
            have -= 3;
            pos += 3;
          }
          bomChecked = true;
        }
        const start = 0;
        // Process up to and including the last ASCII whitespace byte; at the end of the file, all.
        let cut = have;
        if (n > 0) {
          cut = 0;
          for (let i = have - 1; i >= start; i--) {
            const c = buf[i];
            if (c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31)) {
              cut = i + 1;
              break;
            }
          }
        }
        if (cut > start) {
          if (!isUtf8(buf.subarray(start, cut))) throw new DataError(`invalid UTF-8 in bytes ${pos + start}..${pos + cut}: expected UTF-8 text`, { file });
          openLine = scan(buf, start, cut, openLine, lowercase, word, eol);
        }
        if (n === 0) break;
        if (cut > 0) {
          buf.copyWithin(0, cut, have);
          pos += cut;
          have -= cut;
        }
        onProgress?.({ phase, file, bytesDone, bytesTotal });
      }
    } finally {
      fs.closeSync(fd);
    }
    if (openLine) eol();
  }
  onProgress?.({ phase, file: files[files.length - 1] ?? '', bytesDone, bytesTotal });
}

/** Scans [s, end) for words and line ends; returns whether the last line is still open. */
function scan(
  buf: Uint8Array, s: number, end: number, openLine: boolean, lowercase: boolean,
  word: (buf: Uint8Array, s: number, e: number) => void, eol: () => void,
): boolean {
  let start = -1;
  for (let i = s; i < end; i++) {
    const c = buf[i];
    let ws = 0;
    if (c <= 32) ws = c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31) ? 1 : 0;
    else if (c >= 0xc2 && c <= 0xe3) ws = unicodeSpaceLength(buf, i, end);
    if (ws > 0) {
      if (start >= 0) {
        word(buf, start, i);
        start = -1;
      }
      if (c === 10) {
        eol();
        openLine = false;
      } else openLine = true;
      i += ws - 1;
    } else {
      if (start < 0) start = i;
      if (lowercase && c >= 65 && c <= 90) buf[i] = c + 32;
      openLine = true;
    }
  }
  if (start >= 0) word(buf, start, end);
  return openLine;
}

const encoder = new TextEncoder();
let lowerScratch = new Uint8Array(256);

/**
 * Unicode lowercasing of a non-ASCII word: returns a buffer and end holding the lowercased bytes
 * (the same bytes when nothing changes).
 */
export function lowerUnicode(buf: Uint8Array, s: number, e: number): [Uint8Array, number, number] {
  let ascii = true;
  for (let i = s; i < e; i++) if (buf[i] >= 0x80) ascii = false;
  if (ascii) return [buf, s, e];
  const lowered = Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('utf8').toLowerCase();
  if (lowerScratch.length < lowered.length * 3) lowerScratch = new Uint8Array(lowered.length * 3);
  const { written } = encoder.encodeInto(lowered, lowerScratch);
  return [lowerScratch, 0, written!];
}

/** Counts words of files into a ByteTable; returns the table and the number of line ends. */
export function countWordBytes(files: readonly string[], options: WordPassOptions): { table: ByteTable; lines: number } {
  const table = new ByteTable();
  let lines = 0;
  const { lowercase } = options;
  forEachWordBytes(
    files,
    (buf, s, e) => {
      if (lowercase) [buf, s, e] = lowerUnicode(buf, s, e);
      const h = ByteTable.hash(buf, s, e);
      const k = table.find(buf, s, e, h);
      if (k >= 0) table.values[k]++;
      else table.insert(buf, s, e, h, 1);
    },
    () => lines++,
    options,
  );
  return { table, lines };
}

/** Encodes words of files to ids from a table of the vocabulary's words (value = id). */
export function encodeWordBytes(
  files: readonly string[], table: ByteTable, out: TokenBuffer,
  ids: { eos: number; unk: number }, options: WordPassOptions,
): void {
  const { lowercase } = options;
  forEachWordBytes(
    files,
    (buf, s, e) => {
      if (lowercase) [buf, s, e] = lowerUnicode(buf, s, e);
      const k = table.find(buf, s, e, ByteTable.hash(buf, s, e));
      if (k >= 0) out.push(table.values[k]);
      else if (ids.unk >= 0) out.push(ids.unk);
      else throw new DataError(`WordTokenizer.encode: word '${Buffer.from(buf.subarray(s, e)).toString('utf8')}' is not in the vocabulary, which has no '<unk>'`);
    },
    () => {
      if (ids.eos >= 0) out.push(ids.eos);
    },
    options,
  );
}
