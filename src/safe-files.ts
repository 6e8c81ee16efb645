/**
 * Opening the files in AGENTPM_HOME without trusting what is found there. A daemon (root's, perhaps)
 * appends app output and writes state there, and reads back app definitions it will run: a symlink
 * planted in place of one of them would redirect a write to any file, and a file someone else wrote
 * would be run as the caller's apps. So every open refuses to follow a symlink (O_NOFOLLOW), never
 * blocks on a FIFO (O_NONBLOCK, which regular files ignore), and checks on the open descriptor that it
 * is a regular file owned by the caller; replacements are written to a fresh temp file (O_EXCL) and
 * renamed over the old name, which replaces a link instead of following it.
 */
import { closeSync, constants, fstatSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { AgentpmError } from './errors.js';

const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

export type OpenMode = 'read' | 'append';

/** Opens a file of the home for reading or appending (created 0600); the caller closes the descriptor. */
export function openOwnedFile(path: string, mode: OpenMode): number {
  const flags = (mode === 'read' ? O_RDONLY : O_WRONLY | O_APPEND | O_CREAT) | O_NOFOLLOW | O_NONBLOCK;
  let fd: number;
  try {
    fd = openSync(path, flags, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ELOOP: the last component is a symlink. ENXIO: a FIFO without a reader, or a socket.
    if (code === 'ELOOP') throw refused(path, 'is a symbolic link');
    if (code === 'ENXIO') throw refused(path, 'is not a regular file (a FIFO or socket)');
    throw error;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw refused(path, 'is not a regular file');
    const uid = process.getuid?.();
    if (uid !== undefined && info.uid !== uid) throw refused(path, `is owned by uid ${info.uid}, not by you (uid ${uid})`);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/** Opens several files, or none: a refusal closes the ones already opened. */
export function openOwnedFiles(paths: readonly string[], mode: OpenMode): number[] {
  const fds: number[] = [];
  try {
    for (const path of paths) fds.push(openOwnedFile(path, mode));
  } catch (error) {
    for (const fd of fds) closeSync(fd);
    throw error;
  }
  return fds;
}

export function readOwnedFile(path: string): Buffer {
  const fd = openOwnedFile(path, 'read');
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function appendOwnedFile(path: string, data: string): void {
  const fd = openOwnedFile(path, 'append');
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces a file atomically (temp file, fsync, rename), mode 0600: a reader sees the old or the new. The temp file is created fresh:
 * whatever was at its name (a crashed writer's leftover, or a planted symlink) is unlinked first,
 * and O_EXCL fails rather than follow a symlink that appears in between.
 */
export function writeOwnedFileAtomic(path: string, data: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  rmSync(temp, { force: true });
  try {
    const fd = openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    // A failed write (a full disk) leaves no partial temp file; the old file stays as it was.
    rmSync(temp, { force: true });
    throw error;
  }
}

function refused(path: string, problem: string): AgentpmError {
  return new AgentpmError(
    'home-unsafe',
    `${path} ${problem}; agentpm opens only regular files of its own in its home, so that no one can redirect what it writes or reads. ` +
      `Find out how it got there, then remove it: rm ${path}`,
  );
}
