/**
 * daemon.log kept bounded. The daemon's stdout and stderr are that file, opened O_APPEND by the CLI
 * that spawned it, so it cannot be renamed away (the daemon would go on writing to the renamed file).
 * Past its size limit it is copied to `daemon.log.1` (older copies shifted to `.2` …) and then
 * truncated through the daemon's own descriptor, all synchronously, in one turn of the event loop.
 * That loses no line of the daemon's: it is the file's only steady writer and every write of its is
 * synchronous (Node writes stdout and stderr to a file synchronously, and Supervisor.log appends with
 * writeSync), so none can fall between the copy and the truncate. The exception is another process
 * writing to the same file: a second daemon that lost the race to start writes its one line there
 * before it exits, and lands in that window (a few ms per rotation) only by rare bad luck.
 */
import { closeSync, constants, existsSync, fstatSync, ftruncateSync, lstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { parseSize } from '../config/units.js';
import { openOwnedFile } from '../safe-files.js';

export interface DaemonLogLimits {
  maxBytes: number;
  /** Copies kept besides the current file: `.1` (newest) to `.keep`. */
  keep: number;
}

export const DEFAULT_DAEMON_LOG_LIMITS: DaemonLogLimits = { maxBytes: 10 * 1024 * 1024, keep: 2 };
/** Below this a daemon would copy its log over and over. */
const MIN_MAX_BYTES = 1024;
const COPY_CHUNK_BYTES = 1024 * 1024;

/** The limits, with AGENTPM_DAEMON_LOG_MAX (a size: '10M') if set; a bad value is reported and the default kept. */
export function daemonLogLimits(env: NodeJS.ProcessEnv = process.env): { limits: DaemonLogLimits; problem: string | null } {
  const raw = env['AGENTPM_DAEMON_LOG_MAX'];
  if (raw === undefined || raw === '') return { limits: DEFAULT_DAEMON_LOG_LIMITS, problem: null };
  const parsed = parseSize(raw);
  if (!parsed.ok || parsed.value < MIN_MAX_BYTES) {
    const why = parsed.ok ? `at least ${MIN_MAX_BYTES} bytes` : parsed.message;
    return { limits: DEFAULT_DAEMON_LOG_LIMITS, problem: `AGENTPM_DAEMON_LOG_MAX=${raw} ignored (${why}); daemon.log is kept under 10M` };
  }
  return { limits: { ...DEFAULT_DAEMON_LOG_LIMITS, maxBytes: parsed.value }, problem: null };
}

export class DaemonLogBound {
  /** `fd`: the descriptor the daemon writes the log through (stdout; stderr shares its open file). */
  constructor(
    private readonly path: string,
    private readonly limits: DaemonLogLimits,
    private readonly fd = 1,
  ) {}

  /** Cheap (an fstat) while the file is under its limit; true when it was rotated. */
  check(): boolean {
    let info;
    try {
      info = fstatSync(this.fd);
    } catch {
      return false;
    }
    if (info.size <= this.limits.maxBytes) return false;
    // Only the file at `path`: a daemon run by hand, its output on a terminal or elsewhere, has none to bound.
    try {
      const named = lstatSync(this.path);
      if (named.ino !== info.ino || named.dev !== info.dev) return false;
    } catch {
      return false;
    }
    this.rotate(info.ino);
    return true;
  }

  private rotate(ino: number): void {
    const temp = `${this.path}.1.tmp`;
    rmSync(temp, { force: true });
    const source = openOwnedFile(this.path, 'read');
    try {
      if (fstatSync(source).ino !== ino) return; // replaced since the check: not the file written to
      // A fresh file (O_EXCL, no symlink followed) renamed into place, as every file of the home is written.
      const target = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        const chunk = Buffer.alloc(COPY_CHUNK_BYTES);
        for (let position = 0; ; ) {
          const read = readSync(source, chunk, 0, chunk.length, position);
          if (read === 0) break;
          for (let written = 0; written < read; ) written += writeSync(target, chunk, written, read - written);
          position += read;
        }
      } finally {
        closeSync(target);
      }
    } catch (error) {
      // A failed copy (a full disk) truncates nothing: the log goes on growing rather than lose lines.
      rmSync(temp, { force: true });
      throw error;
    } finally {
      closeSync(source);
    }
    // Shifted up to the first free generation (or the last kept one, which the one below replaces).
    try {
      let top = 1;
      while (top < this.limits.keep && existsSync(`${this.path}.${top}`)) top += 1;
      for (let generation = top - 1; generation >= 1; generation -= 1) renameSync(`${this.path}.${generation}`, `${this.path}.${generation + 1}`);
      renameSync(temp, `${this.path}.1`);
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
    ftruncateSync(this.fd, 0);
  }
}
