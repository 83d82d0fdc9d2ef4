/*
 * Atomic file replacement: write `<path>.tmp-<pid>-<random>` in the same directory, fsync it, rename it
 * over `path`, fsync the directory. rename() within one file system replaces the name in one step, so a
 * reader (or a crash) sees either the old file or the complete new one, never a mix. The fsync before the
 * rename keeps a power cut from leaving the new name pointing at blocks that were never written; the one
 * after makes the rename itself durable. On any error the temporary file is removed and the error
 * rethrown; the old file was never opened. A process killed mid-write leaves its temporary file behind,
 * which no reader mistakes for a checkpoint (see isStaleTemp).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

export interface AtomicWriteHooks {
  /**
   * Called after each chunk reaches the temporary file with the bytes written so far and the total;
   * throwing aborts the write like a full disk would. Tests use it to interrupt a write half-way.
   */
  onProgress?(written: number, total: number): void;
}

/** Writes go out in slices of at most this many bytes, so a failure half-way is a real half-written file. */
const SLICE = 8 << 20;

export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

const TEMP = /^(.+)\.tmp-(\d+)-[0-9a-f]+$/;

/** For a temporary file's name, the file it was going to replace and the writer's process id. */
export function parseTempName(name: string): { target: string; pid: number } | null {
  const m = TEMP.exec(name);
  return m ? { target: m[1], pid: Number(m[2]) } : null;
}

/** A temporary file whose writer is gone (killed mid-write): safe to delete. */
export function isStaleTemp(name: string): boolean {
  const t = parseTempName(name);
  if (!t || t.pid === process.pid) return false;
  try {
    process.kill(t.pid, 0); // signal 0 only asks whether the process exists
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function* slices(chunks: readonly Uint8Array[]): Generator<Uint8Array> {
  for (const c of chunks) for (let o = 0; o < c.length; o += SLICE) yield c.subarray(o, Math.min(o + SLICE, c.length));
}

export function writeFileAtomicSync(path: string, chunks: readonly Uint8Array[], hooks: AtomicWriteHooks = {}): void {
  const tmp = tempPathFor(path);
  const total = chunks.reduce((n, c) => n + c.length, 0);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'wx');
    let written = 0;
    for (const s of slices(chunks)) {
      for (let o = 0; o < s.length; ) o += fs.writeSync(fd, s, o, s.length - o);
      written += s.length;
      hooks.onProgress?.(written, total);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // keep the first error
      }
    }
    fs.rmSync(tmp, { force: true }); // the previous file at `path` was never touched
    throw e;
  }
  fsyncDirSync(dirname(path));
}

export async function writeFileAtomic(path: string, chunks: readonly Uint8Array[], hooks: AtomicWriteHooks = {}): Promise<void> {
  const tmp = tempPathFor(path);
  const total = chunks.reduce((n, c) => n + c.length, 0);
  let fh: fsp.FileHandle | null = null;
  try {
    fh = await fsp.open(tmp, 'wx');
    let written = 0;
    for (const s of slices(chunks)) {
      for (let o = 0; o < s.length; ) o += (await fh.write(s, o, s.length - o)).bytesWritten;
      written += s.length;
      hooks.onProgress?.(written, total);
    }
    await fh.sync();
    await fh.close();
    fh = null;
    await fsp.rename(tmp, path);
  } catch (e) {
    if (fh !== null) await fh.close().catch(() => {}); // keep the first error
    await fsp.rm(tmp, { force: true }); // the previous file at `path` was never touched
    throw e;
  }
  await fsyncDir(dirname(path));
}

// Windows cannot open a directory to fsync it (and its renames are journaled by NTFS).
function fsyncDirSync(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads a whole file in pieces (fs.readFile stops at 2 GiB); `check` sees the first bytes and the size first. */
export function readFileCheckedSync(path: string, headBytes: number, check: (head: Uint8Array, size: number) => void): Buffer {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(headBytes, size));
    readFullySync(fd, head, 0);
    check(head, size);
    const out = Buffer.allocUnsafeSlow(size);
    head.copy(out);
    readFullySync(fd, out, head.length);
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

export async function readFileChecked(path: string, headBytes: number, check: (head: Uint8Array, size: number) => void): Promise<Buffer> {
  const fh = await fsp.open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(headBytes, size));
    await readFully(fh, head, 0);
    check(head, size);
    const out = Buffer.allocUnsafeSlow(size);
    head.copy(out);
    await readFully(fh, out, head.length);
    return out;
  } finally {
    await fh.close();
  }
}

function readFullySync(fd: number, buf: Buffer, from: number): void {
  for (let o = from; o < buf.length; ) {
    const n = fs.readSync(fd, buf, o, Math.min(buf.length - o, SLICE * 8), o);
    if (n === 0) throw new Error('the file shrank while being read');
    o += n;
  }
}

async function readFully(fh: fsp.FileHandle, buf: Buffer, from: number): Promise<void> {
  for (let o = from; o < buf.length; ) {
    const { bytesRead } = await fh.read(buf, o, Math.min(buf.length - o, SLICE * 8), o);
    if (bytesRead === 0) throw new Error('the file shrank while being read');
    o += bytesRead;
  }
}
