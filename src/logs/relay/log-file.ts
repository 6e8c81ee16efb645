/**
 * One log file the relay owns (an app's out or err): appends stamped lines, rotates by size at line
 * boundaries, compresses rotated files in the background, and drops and counts lines when the disk is
 * full rather than stop reading (which would block the apps once their pipes fill).
 *
 * Rotation renames, it never copies: `.k` → `.k+1` from the oldest down, the current file → `.1`, and a
 * new current file. Every line written is in exactly one file, whatever the rate (copy-then-truncate
 * would lose what arrives between the copy and the truncate).
 */
import { closeSync, constants, createReadStream, createWriteStream, fstatSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { LogPolicy } from '../../protocol.js';
import { openOwnedFile } from '../../safe-files.js';
import { rotatedFiles, truncateStreamFiles } from '../maintenance.js';
import { rotatedName } from '../line.js';

export interface LogFileHost {
  policy(): LogPolicy;
  /** One line as written: stamp, space, text, newline. */
  stampLine(text: string): Buffer;
  log(message: string): void;
}

interface CompressJob {
  /** Where the file being compressed is now: rotations move it up while it is compressed. */
  generation: number;
  cancelled: boolean;
}

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

export class LogFile {
  private fd: number | null = null;
  /** Bytes in the current file, as this relay wrote them (checked against the file before a rotation). */
  private size = 0;
  /** Lines dropped since the last successful write: the marker line says how many. */
  private pendingDropped = 0;
  /** Lines dropped since the relay started. */
  droppedTotal = 0;
  private readonly compressions: CompressJob[] = [];
  private compressing = false;
  private lastProblemAt = 0;

  constructor(
    readonly path: string,
    private readonly host: LogFileHost,
  ) {}

  /** Appends whole lines (each stamped and ending in a newline), rotating between lines as needed. */
  write(lines: readonly Buffer[]): void {
    const { maxSizeBytes } = this.host.policy();
    this.open(); // the size of a file already there (a relay taking over) counts from the first line
    let batch: Buffer[] = [];
    let bytes = 0;
    let marker = false;
    if (this.pendingDropped > 0) {
      const line = this.host.stampLine(`[agentpm: ${this.pendingDropped} lines dropped: disk full]`);
      batch.push(line);
      bytes += line.length;
      marker = true;
    }
    for (const line of lines) {
      if (this.size + bytes > 0 && this.size + bytes + line.length > maxSizeBytes && this.mustRotate(bytes, line.length, maxSizeBytes)) {
        this.append(batch, bytes, marker);
        batch = [];
        bytes = 0;
        marker = false;
        this.rotate();
      }
      batch.push(line);
      bytes += line.length;
    }
    this.append(batch, bytes, marker);
  }

  /** Closes the current file (reopened by the next write); a compression in progress goes on. */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  /** Empties the stream: the current file truncated, the rotated ones (and compressions under way) deleted. */
  flush(): void {
    for (const job of this.compressions) job.cancelled = true;
    if (this.fd !== null) {
      ftruncateSync(this.fd, 0);
      for (const file of rotatedFiles(this.path)) rmSync(file.path, { force: true });
    } else {
      truncateStreamFiles(this.path);
    }
    this.size = 0;
  }

  /** The size counted can be ahead of the file's after someone truncated it (a flush by a CLI without a daemon): ask the file once. */
  private mustRotate(pending: number, line: number, maxSizeBytes: number): boolean {
    if (this.fd !== null) {
      try {
        this.size = fstatSync(this.fd).size;
      } catch {
        // keep the count
      }
    }
    return this.size + pending > 0 && this.size + pending + line > maxSizeBytes;
  }

  private open(): number | null {
    if (this.fd !== null) return this.fd;
    try {
      this.fd = openOwnedFile(this.path, 'append');
      this.size = fstatSync(this.fd).size;
      return this.fd;
    } catch (error) {
      this.problem(`cannot open ${this.path}: ${(error as Error).message}`);
      return null;
    }
  }

  private append(batch: Buffer[], bytes: number, marker: boolean): void {
    if (batch.length === 0) return;
    const lines = batch.length - (marker ? 1 : 0);
    const fd = this.open();
    if (fd === null) return this.dropped(lines);
    const data = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, bytes);
    let written = 0;
    try {
      while (written < data.length) written += writeSync(fd, data, written);
      this.size += data.length;
      if (marker) this.pendingDropped = 0;
    } catch (error) {
      if (written > 0) {
        // A line cut short would glue itself to the marker: take the partial write back.
        try {
          ftruncateSync(fd, fstatSync(fd).size - written);
        } catch {
          // the next line may then start mid-line; nothing else is affected
        }
      }
      const code = (error as NodeJS.ErrnoException).code ?? '';
      this.dropped(lines);
      this.problem(DISK_FULL.has(code) ? `${this.path}: disk full (${code}): dropping lines until there is room` : `cannot write ${this.path}: ${(error as Error).message}; dropping lines`);
    }
  }

  private dropped(lines: number): void {
    this.pendingDropped += lines;
    this.droppedTotal += lines;
  }

  /** Renames the generations up, the current file to `.1`, and starts a new current file. */
  private rotate(): void {
    const { keep, compress } = this.host.policy();
    try {
      for (const file of rotatedFiles(this.path)) if (file.generation >= keep) rmSync(file.path, { force: true });
      for (const file of rotatedFiles(this.path).reverse()) renameSync(file.path, rotatedName(this.path, file.generation + 1, file.compressed));
      for (const job of this.compressions) {
        job.generation += 1;
        if (job.generation > keep) job.cancelled = true;
      }
      this.close();
      if (keep > 0) renameSync(this.path, rotatedName(this.path, 1, false));
      else rmSync(this.path, { force: true });
      this.size = 0;
      if (compress && keep > 0) {
        this.compressions.push({ generation: 1, cancelled: false });
        this.compressNext();
      }
    } catch (error) {
      this.problem(`cannot rotate ${this.path}: ${(error as Error).message}; writing on to it`);
    }
  }

  /** One compression at a time per file, in zlib's threads: reading the pipes never waits for it. */
  private compressNext(): void {
    const job = this.compressions[0];
    if (this.compressing || !job) return;
    this.compressing = true;
    const temp = `${this.path}.compressing-${process.pid}.tmp`;
    void (async () => {
      let input: number | null = null;
      let output: number | null = null;
      try {
        input = openOwnedFile(rotatedName(this.path, job.generation, false), 'read');
        rmSync(temp, { force: true });
        output = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        const source = createReadStream('', { fd: input, autoClose: true });
        input = null;
        const sink = createWriteStream('', { fd: output, autoClose: true });
        output = null;
        await pipeline(source, createGzip(), sink);
        // Synchronous from here: no rotation can move the file between these two steps.
        if (job.cancelled || job.generation > this.host.policy().keep) rmSync(temp, { force: true });
        else {
          renameSync(temp, rotatedName(this.path, job.generation, true));
          rmSync(rotatedName(this.path, job.generation, false), { force: true });
        }
      } catch (error) {
        rmSync(temp, { force: true });
        if (!job.cancelled) this.problem(`cannot compress ${rotatedName(this.path, job.generation, false)}: ${(error as Error).message}; left uncompressed`);
      } finally {
        if (input !== null) closeSync(input);
        if (output !== null) closeSync(output);
        this.compressions.shift();
        this.compressing = false;
        this.compressNext();
      }
    })();
  }

  /** Problems go to the relay's log at most once a minute per file: a full disk would repeat them per line. */
  private problem(message: string): void {
    const now = Date.now();
    if (now - this.lastProblemAt < 60_000) return;
    this.lastProblemAt = now;
    this.host.log(message);
  }
}
