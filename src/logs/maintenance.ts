/**
 * Changing a stream's files: the raw list of its rotated generations (both `.N` and `.N.gz` while one
 * is being compressed: a rotation must move both), their sizes, and emptying them. Used by the relay to
 * rotate and flush, by the daemon for `show`, and by the CLI to flush when no daemon runs. Reading the
 * files is files.ts's.
 */
import { closeSync, ftruncateSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { openOwnedFile } from '../safe-files.js';
import { listLogFiles, streamFiles } from './files.js';

export interface RotatedFile {
  path: string;
  generation: number;
  compressed: boolean;
}

/** Every rotated file of `current` present, oldest generation last; `.N` before `.N.gz`. */
export function rotatedFiles(current: string): RotatedFile[] {
  const dir = dirname(current);
  const base = basename(current);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const found: RotatedFile[] = [];
  for (const entry of entries) {
    if (!entry.startsWith(`${base}.`)) continue;
    const match = /^(\d{1,6})(\.gz)?$/.exec(entry.slice(base.length + 1));
    if (!match) continue;
    found.push({ path: join(dir, entry), generation: Number(match[1]), compressed: match[2] !== undefined });
  }
  return found.sort((a, b) => a.generation - b.generation || Number(a.compressed) - Number(b.compressed));
}

export interface StreamSizes {
  size: number;
  totalSize: number;
  rotatedFiles: number;
}

export function streamSizes(current: string): StreamSizes {
  const size = sizeOf(current);
  const rotated = streamFiles(current).filter((file) => file.path !== current);
  return { size, totalSize: rotated.reduce((sum, file) => sum + sizeOf(file.path), size), rotatedFiles: rotated.length };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Empties a stream's files without the relay: the current file truncated in place (a writer appending
 * to it goes on at offset 0), the rotated ones deleted. Opened as every file of the home is (no
 * symlink followed, a regular file of the caller's own).
 */
export function truncateStreamFiles(current: string): void {
  const fd = openOwnedFile(current, 'append');
  try {
    ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
  }
  for (const file of rotatedFiles(current)) rmSync(file.path, { force: true });
}

/** Apps with log files (current or rotated) in a logs directory. */
export function appsWithLogs(logsDir: string): string[] {
  return [...listLogFiles(logsDir).keys()];
}
