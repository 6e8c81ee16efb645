/**
 * A config's type check, remembered by content: checking takes seconds (loading the compiler and
 * @types/node alone takes most of it), so a success is stored with a hash of every file the compiler
 * read (the config, what it imports however deep, the declarations and package.json files it consulted)
 * and the settings that decide the result besides them (which compiler, its version, the type roots).
 * The next start of the same config compares hashes instead of checking: an unchanged config starts
 * as fast as a `.js` one, and an edit to any of those files checks again. Only successes are stored,
 * so an error is reported every time until it is fixed.
 *
 * The cache is a file of the home, read and replaced as the home's other files are (this user's regular
 * file, no symlink followed, replaced atomically). It is only ever a shortcut: a cache that cannot be
 * read or written means checking, never failing.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readOwnedFile, writeOwnedFileAtomic } from '../safe-files.js';
import { checkSettings, findCompiler, typeCheck } from './typecheck.js';

const FORMAT = 1;
/** Configs remembered per home; the least recently checked are dropped first. */
const MAX_ENTRIES = 64;

interface Entry {
  settings: string;
  /** Path → sha256 of the text the compiler read. */
  files: Record<string, string>;
  checkedAt: number;
}

interface CacheFile {
  format: typeof FORMAT;
  entries: Record<string, Entry>;
}

export interface CachedCheckOptions {
  /** The cache file; null: check without remembering. */
  cachePath: string | null;
  /** Called when a check actually runs (not when a remembered success is used). */
  checking?: (file: string) => void;
}

/** The type errors of a config (empty: none), or null when no TypeScript compiler is available. */
export function typeErrorsCached(file: string, options: CachedCheckOptions): string[] | null {
  const compiler = findCompiler(file);
  if (compiler === null) return null;
  const settings = checkSettings(file, compiler);
  const cache = options.cachePath === null ? null : readCache(options.cachePath);
  const entry = cache?.entries[file];
  if (entry !== undefined && entry.settings === settings && unchanged(entry.files)) return [];
  options.checking?.(file);
  const { errors, read } = typeCheck(file, compiler);
  if (options.cachePath !== null && cache !== null) {
    // A failure is never remembered; the entry of an earlier success no longer holds either.
    if (errors.length === 0 && read.has(file)) cache.entries[file] = { settings, files: hashes(read), checkedAt: Date.now() };
    else delete cache.entries[file];
    writeCache(options.cachePath, cache);
  }
  return errors;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function hashes(read: ReadonlyMap<string, string>): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [path, text] of read) files[path] = digest(text);
  return files;
}

/** Each file's text now, read as the compiler reads it (UTF-8, without a byte order mark), hashes the same. */
function unchanged(files: Readonly<Record<string, string>>): boolean {
  for (const [path, hash] of Object.entries(files)) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return false;
    }
    if (digest(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) !== hash) return false;
  }
  return true;
}

function readCache(path: string): CacheFile {
  try {
    const parsed = JSON.parse(readOwnedFile(path).toString('utf8')) as Partial<CacheFile>;
    if (parsed.format === FORMAT && typeof parsed.entries === 'object' && parsed.entries !== null) return { format: FORMAT, entries: validEntries(parsed.entries) };
  } catch {
    // missing, another user's, a symlink, or not JSON: start afresh
  }
  return { format: FORMAT, entries: {} };
}

function validEntries(entries: Record<string, unknown>): Record<string, Entry> {
  const valid: Record<string, Entry> = {};
  for (const [file, value] of Object.entries(entries)) {
    const entry = value as Partial<Entry> | null;
    if (typeof entry?.settings !== 'string' || typeof entry.checkedAt !== 'number' || typeof entry.files !== 'object' || entry.files === null) continue;
    if (!Object.values(entry.files).every((hash) => typeof hash === 'string')) continue;
    valid[file] = entry as Entry;
  }
  return valid;
}

function writeCache(path: string, cache: CacheFile): void {
  const kept = Object.entries(cache.entries)
    .sort(([, a], [, b]) => b.checkedAt - a.checkedAt)
    .slice(0, MAX_ENTRIES);
  try {
    writeOwnedFileAtomic(path, JSON.stringify({ format: FORMAT, entries: Object.fromEntries(kept) }));
  } catch {
    // a full disk or an unwritable home: the next start checks again
  }
}
