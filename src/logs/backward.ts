/**
 * Lines of one log file from its end backwards, in blocks, so that the last lines of a large log cost
 * a few reads rather than the whole file. A block holds its lines in file order; blocks come newest
 * first. A compressed file cannot be read backwards: it is decompressed as a stream once to count its
 * lines and once per block wanted, so memory stays at one block whatever its size.
 */
import { closeSync, createReadStream, fstatSync, readSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { AgentpmError } from '../errors.js';
import { openOwnedFile } from '../safe-files.js';
import type { LogFile } from './files.js';

const BLOCK_BYTES = 64 * 1024;
/** Lines of a compressed file per decompression pass. */
const GZIP_BLOCK_LINES = 10_000;
/** A "line" longer than this (a binary dump, output without newlines) is cut into pieces of this size. */
export const MAX_LINE_BYTES = 1024 * 1024;

export function backwardBlocks(file: LogFile, end?: number): AsyncGenerator<string[]> {
  return file.compressed ? gzipBlocks(file.path) : plainBlocks(file.path, end);
}

/** `end`: read as if the file ended there (a follower goes on from that offset). */
async function* plainBlocks(path: string, end?: number): AsyncGenerator<string[]> {
  const fd = openIfPresent(path);
  if (fd === null) return;
  try {
    let position = Math.min(end ?? Infinity, fstatSync(fd).size);
    // The start of the line that straddles the previous block's start, read later but earlier in the file.
    let carry = Buffer.alloc(0);
    let first = true;
    while (position > 0) {
      const from = Math.max(0, position - BLOCK_BYTES);
      const block = Buffer.alloc(position - from);
      const read = readSync(fd, block, 0, block.length, from);
      position = from;
      let bytes = Buffer.concat([block.subarray(0, read), carry]);
      if (first && bytes[bytes.length - 1] === 0x0a) bytes = bytes.subarray(0, -1);
      first = false;
      const cut = position > 0 ? bytes.indexOf(0x0a) : -1;
      if (position > 0 && cut < 0 && bytes.length <= MAX_LINE_BYTES) {
        carry = bytes;
        continue;
      }
      carry = position > 0 && cut >= 0 ? Buffer.from(bytes.subarray(0, cut)) : Buffer.alloc(0);
      const lines = splitLines(position > 0 && cut >= 0 ? bytes.subarray(cut + 1) : bytes);
      if (lines.length > 0) yield lines;
    }
  } finally {
    closeSync(fd);
  }
}

async function* gzipBlocks(path: string): AsyncGenerator<string[]> {
  let total = 0;
  await eachLine(path, () => {
    total += 1;
  });
  for (let upTo = total; upTo > 0; upTo -= GZIP_BLOCK_LINES) {
    const from = Math.max(0, upTo - GZIP_BLOCK_LINES);
    const lines: string[] = [];
    await eachLine(path, (line, index) => {
      if (index >= from && index < upTo) lines.push(line);
      return index + 1 < upTo;
    });
    yield lines;
  }
}

/** Calls `visit` with each line of a compressed file in order, until it returns false. */
async function eachLine(path: string, visit: (line: string, index: number) => boolean | void): Promise<void> {
  const fd = openIfPresent(path);
  if (fd === null) return;
  const input = createReadStream('', { fd, autoClose: true });
  const gunzip = createGunzip();
  input.on('error', (error) => gunzip.destroy(error));
  let index = 0;
  let carry = Buffer.alloc(0);
  const emit = (bytes: Buffer): boolean => visit(bytes.toString('utf8'), index++) !== false;
  try {
    for await (const chunk of input.pipe(gunzip) as AsyncIterable<Buffer>) {
      let bytes = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      let cut: number;
      while ((cut = bytes.indexOf(0x0a)) >= 0 || bytes.length > MAX_LINE_BYTES) {
        const length = cut >= 0 ? cut : MAX_LINE_BYTES;
        if (!emit(bytes.subarray(0, length))) return;
        bytes = bytes.subarray(cut >= 0 ? cut + 1 : length);
      }
      carry = Buffer.from(bytes);
    }
    if (carry.length > 0) emit(carry);
  } catch (error) {
    throw new AgentpmError('internal', `cannot read ${path}: ${(error as Error).message}; move the file aside to read the others`);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}

/**
 * Not a symlink, FIFO or someone else's file planted in logs/ (see safe-files.ts). Null when the file
 * is gone: the oldest generation, deleted by a rotation since logs/ was listed, has nothing to give.
 */
function openIfPresent(path: string): number | null {
  try {
    return openOwnedFile(path, 'read');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Splits on newlines (byte 0x0a, never part of a multibyte character), cutting overlong lines. */
export function splitLines(bytes: Buffer): string[] {
  const lines: string[] = [];
  for (let start = 0; start <= bytes.length; ) {
    let cut = bytes.indexOf(0x0a, start);
    if (cut < 0) cut = bytes.length;
    const line = bytes.subarray(start, cut);
    if (line.length <= MAX_LINE_BYTES) lines.push(line.toString('utf8'));
    else for (let piece = 0; piece < line.length; piece += MAX_LINE_BYTES) lines.push(line.subarray(piece, piece + MAX_LINE_BYTES).toString('utf8'));
    start = cut + 1;
  }
  return lines;
}
