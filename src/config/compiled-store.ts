/**
 * Where compiled configs (see compile.ts) are kept: one file per bundle in a directory of the home,
 * named by the sha256 of its text. What is read back is run as the user's config, so it is used only
 * when everything holds: the directory is the user's own, not a symlink and closed to others (0700),
 * the file a regular file of the user's, opened without following a symlink (safe-files.ts), and its
 * text hashes to the name the type-check cache recorded. Anything else is a reason, never an error:
 * the caller compiles again.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readOwnedFile, writeOwnedFileAtomic } from '../safe-files.js';

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Why the directory must not be used, or null. */
function unsafeDir(dir: string): string | null {
  let info;
  try {
    info = lstatSync(dir);
  } catch {
    return `${dir} does not exist`;
  }
  if (info.isSymbolicLink()) return `${dir} is a symbolic link`;
  if (!info.isDirectory()) return `${dir} is not a directory`;
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) return `${dir} is owned by uid ${info.uid}, not by you (uid ${uid})`;
  if ((info.mode & 0o077) !== 0) return `${dir} is open to others (mode ${(info.mode & 0o777).toString(8)})`;
  return null;
}

/** Stores a bundle; returns its name (sha256), or a reason it could not be stored. */
export function storeCompiled(dir: string, code: string): { ok: true; sha: string } | { ok: false; reason: string } {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const unsafe = unsafeDir(dir);
    if (unsafe !== null) return { ok: false, reason: unsafe };
    const sha = sha256(code);
    writeOwnedFileAtomic(join(dir, `${sha}.js`), code);
    return { ok: true, sha };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

/** The bundle of that name, verified, if every file it loads natively is still there. */
export function readCompiled(dir: string, sha: string, externals: readonly string[]): { ok: true; code: string } | { ok: false; reason: string } {
  const unsafe = unsafeDir(dir);
  if (unsafe !== null) return { ok: false, reason: unsafe };
  const path = join(dir, `${sha}.js`);
  let bytes: Buffer;
  try {
    bytes = readOwnedFile(path);
  } catch (error) {
    return { ok: false, reason: (error as Error).message.split(';')[0] ?? String(error) };
  }
  if (sha256(bytes) !== sha) return { ok: false, reason: `${path} does not hash to its name (truncated or altered)` };
  const gone = externals.find((file) => !existsSync(file));
  if (gone !== undefined) return { ok: false, reason: `${gone}, which it loads, is gone` };
  return { ok: true, code: bytes.toString('utf8') };
}
