/**
 * The FIFOs that carry an app's stdout and stderr to the log relay: one per instance and stream, in the
 * home's private run directory. The name says whose it is (`<app>.<instance>.<stream>.fifo`), so a
 * relay that starts fresh (after a kill -9, or an upgrade) re-attaches every FIFO it finds there.
 *
 * A FIFO appears under its name only once the daemon holds it open for writing: until then it is
 * under a temp name no relay attaches. A relay that opened a FIFO nobody writes to would read EOF at
 * once and remove it.
 */
import { execFile } from 'node:child_process';
import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AgentpmError } from '../errors.js';
import { trustedRealPath } from '../path-trust.js';
import type { LogStream } from '../protocol.js';

const run = promisify(execFile);

export const STREAMS: readonly LogStream[] = ['out', 'err'];

/** The home's run directory (0700): the relay's FIFOs, socket and saved policies. */
export function runDir(home: string): string {
  return join(home, 'run');
}

export function relaySocketPath(home: string): string {
  return join(home, 'relay.sock');
}

/** Creates the run directory if needed and refuses one another user could tamper with. */
export function ensureRunDir(home: string): string {
  const dir = runDir(home);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  trustedRealPath(dir, { what: "the FIFOs your apps' output goes through" });
  // Created under whatever umask the creator had: a directory without x could not be entered.
  if ((statSync(dir).mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  return dir;
}

export interface FifoName {
  app: string;
  instance: string;
  stream: LogStream;
}

const NAME = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.([0-9a-f]{1,32})\.(out|err)\.fifo$/;

export function fifoFileName(name: FifoName): string {
  return `${name.app}.${name.instance}.${name.stream}.fifo`;
}

/** Whose FIFO a file of the run directory is, or null for any other file. */
export function parseFifoName(file: string): FifoName | null {
  const match = NAME.exec(file);
  if (!match) return null;
  return { app: match[1] ?? '', instance: match[2] ?? '', stream: match[3] as LogStream };
}

export interface OpenedFifos {
  /** Final paths, out then err. */
  paths: [string, string];
  /** Descriptors open read-write: the app's stdout and stderr. */
  fds: [number, number];
  /** Closes the daemon's descriptors (the app keeps its own). */
  close(): void;
  /** Closes and removes both (an attach that failed). */
  discard(): void;
}

/**
 * Makes the two FIFOs of an instance and opens them read-write. Read-write, because a descriptor that
 * is also a reader keeps the pipe from ever having no reader: the app's writes can block when the
 * buffer is full, but never fail with EPIPE or raise SIGPIPE, whatever becomes of the relay.
 */
export async function openInstanceFifos(home: string, app: string, instance: string): Promise<OpenedFifos> {
  const dir = ensureRunDir(home);
  const temp = randomBytes(6).toString('hex');
  const temps = STREAMS.map((stream) => join(dir, `.new-${temp}.${stream}`)) as [string, string];
  const finals = STREAMS.map((stream) => join(dir, fifoFileName({ app, instance, stream }))) as [string, string];
  try {
    await run('mkfifo', ['-m', '600', ...temps], { timeout: 5000 });
  } catch (error) {
    for (const path of temps) rmSync(path, { force: true });
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    throw new AgentpmError('spawn-failed', `cannot create FIFOs with mkfifo (coreutils): ${failure.code === 'ENOENT' ? 'mkfifo not found on PATH' : (failure.stderr?.trim() || failure.message)}`);
  }
  const fds: number[] = [];
  try {
    for (const path of temps) fds.push(openFifoForWriting(path));
    temps.forEach((path, index) => renameSync(path, finals[index] ?? path));
  } catch (error) {
    for (const fd of fds) closeSync(fd);
    for (const path of [...temps, ...finals]) rmSync(path, { force: true });
    throw error;
  }
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const fd of fds) closeSync(fd);
  };
  return {
    paths: finals,
    fds: fds as [number, number],
    close,
    discard: () => {
      close();
      for (const path of finals) removeFifo(path);
    },
  };
}

/** O_RDWR never blocks on a FIFO (Linux), O_NOFOLLOW refuses a link planted in its place (libuv adds O_CLOEXEC). */
function openFifoForWriting(path: string): number {
  const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    checkOwnFifo(fd, path);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/** Refuses a descriptor that is not a FIFO of the caller's own. */
export function checkOwnFifo(fd: number, path: string): void {
  const info = fstatSync(fd);
  const uid = process.getuid?.();
  if (!info.isFIFO()) throw new AgentpmError('home-unsafe', `${path} is not a FIFO; remove it (rm ${path})`);
  if (uid !== undefined && info.uid !== uid) throw new AgentpmError('home-unsafe', `${path} is owned by uid ${info.uid}, not by you (uid ${uid}); remove it (rm ${path})`);
}

/** Removes a FIFO by path, only if a FIFO is what is there. */
export function removeFifo(path: string, identity?: { dev: number; ino: number }): void {
  try {
    const info = lstatSync(path);
    if (!info.isFIFO()) return;
    if (identity && (info.dev !== identity.dev || info.ino !== identity.ino)) return;
    rmSync(path, { force: true });
  } catch {
    // gone already
  }
}
