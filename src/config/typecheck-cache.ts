/**
 * A config's type check, remembered by content: checking takes seconds (loading the compiler and
 * @types/node alone takes most of it), so a success is stored with a hash of every file the compiler
 * read (the config, what it imports however deep, the declarations and package.json files it consulted)
 * and the settings that decide the result besides them (which compiler, its version, the type roots).
 * The next start of the same config compares hashes instead of checking: an unchanged config starts
 * as fast as a `.js` one, and an edit to any of those files checks again. Only successes are stored,
 * so an error is reported every time until it is fixed.
 *
 * A success also keeps the config compiled to one JavaScript module (compile.ts, compiled-store.ts),
 * made from the texts the check read: the start runs that instead of registering tsx, which would cost
 * more than the rest of the start. It is named in the entry by its hash, so it is used only with the
 * files it was made from.
 *
 * The cache is a file of the home, read and replaced as the home's other files are (this user's regular
 * file, no symlink followed, replaced atomically). It is only ever a shortcut: a cache that cannot be
 * read or written means checking, and a compiled copy that is missing or altered means compiling again
 * (from the texts just verified), never failing.
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readOwnedFile, writeOwnedFileAtomic } from '../safe-files.js';
import type { ModuleFormat } from './compile.js';
import { readCompiled, sha256 as digest, storeCompiled } from './compiled-store.js';
import { checkSettings, findCompiler, typeCheck } from './typecheck.js';

const FORMAT = 2;
/** Configs remembered per home; the least recently checked are dropped first. */
const MAX_ENTRIES = 64;

/** The config compiled to JavaScript (compile.ts), stored by name; or why it is not (it then runs through tsx). */
type CompiledRef = { sha: string; format: ModuleFormat; externals: string[] } | { refused: string };

interface Entry {
  settings: string;
  /** Path → sha256 of the text the compiler read. */
  files: Record<string, string>;
  /**
   * Path → the file's stat fingerprint (fingerprint()) when it was seen to hold that text: an unchanged
   * fingerprint spares reading and hashing it (most of a remembered start). Left out for a file changed
   * less than RACY_MS before, which a write in the same clock tick could change without changing it.
   */
  stats?: Record<string, string>;
  checkedAt: number;
  /** Absent: not compiled yet (or could not be stored); the next start compiles. */
  compiled?: CompiledRef;
}

interface CacheFile {
  format: typeof FORMAT;
  entries: Record<string, Entry>;
}

export interface CachedCheckOptions {
  /** The cache file; null: check without remembering. */
  cachePath: string | null;
  /** The directory compiled configs are kept in; null: none are made, a config runs through tsx. */
  compiledDir?: string | null;
  /** Called when a check actually runs (not when a remembered success is used). */
  checking?: (file: string) => void;
  /** What the cache did and why (AGENTPM_DEBUG_CONFIG). */
  debug?: (message: string) => void;
}

/** A config ready to run without tsx: one module of that format. */
export interface RunnableConfig {
  format: ModuleFormat;
  code: string;
}

export interface CachedCheck {
  /** The type errors of the config (empty: none), or null when no TypeScript compiler is available. */
  errors: string[] | null;
  /** Set only when it type-checks and could be compiled: run this instead of the file through tsx. */
  runnable: RunnableConfig | null;
}

/**
 * A config's type errors, from the cache when every file is as it was at a successful check; and,
 * when it type-checks, the module to run in its place if it could be compiled (see compile.ts).
 */
export async function checkConfigCached(file: string, options: CachedCheckOptions): Promise<CachedCheck> {
  const compiler = findCompiler(file);
  if (compiler === null) return { errors: null, runnable: null };
  const settings = checkSettings(file, compiler);
  const cache = options.cachePath === null ? null : readCache(options.cachePath);
  const entry = cache?.entries[file];
  if (entry !== undefined && entry.settings === settings && unchanged(entry)) {
    const runnable = await remembered(file, entry, options);
    if (runnable.rewrite && cache !== null && options.cachePath !== null) writeCache(options.cachePath, cache, options.compiledDir ?? null);
    return { errors: [], runnable: runnable.value };
  }
  options.checking?.(file);
  const { errors, read } = typeCheck(file, compiler);
  let runnable: RunnableConfig | null = null;
  if (options.cachePath !== null && cache !== null) {
    // A failure is never remembered; the entry of an earlier success no longer holds either.
    if (errors.length === 0 && read.has(file)) {
      const fresh: Entry = { settings, files: hashes(read), checkedAt: Date.now() };
      fresh.stats = fingerprints(fresh.files);
      runnable = await compileInto(fresh, file, read, options);
      cache.entries[file] = fresh;
    } else delete cache.entries[file];
    writeCache(options.cachePath, cache, options.compiledDir ?? null);
  }
  return { errors, runnable };
}

/** A remembered success: its compiled copy if it is intact, else compiled again from the files' texts, verified. */
async function remembered(file: string, entry: Entry, options: CachedCheckOptions): Promise<{ value: RunnableConfig | null; rewrite: boolean }> {
  const dir = options.compiledDir ?? null;
  const compiled = entry.compiled;
  if (dir === null) return { value: null, rewrite: false };
  if (compiled !== undefined && 'refused' in compiled) {
    options.debug?.(`type check remembered; not compiled (${compiled.refused}): running it through tsx`);
    return { value: null, rewrite: false };
  }
  if (compiled !== undefined) {
    const read = readCompiled(dir, compiled.sha, compiled.externals);
    if (read.ok) {
      options.debug?.(`type check remembered; running the compiled copy ${compiled.sha.slice(0, 12)}, no tsx`);
      return { value: { format: compiled.format, code: read.code }, rewrite: false };
    }
    options.debug?.(`compiled copy not used: ${read.reason}; compiling again`);
  }
  const texts = unchangedTexts(entry.files);
  // Changed since unchanged() looked: this start runs it through tsx, the next one checks again.
  if (texts === null) return { value: null, rewrite: false };
  return { value: await compileInto(entry, file, texts, options), rewrite: true };
}

/** Compiles the config from the texts the check read, stores it, and records it (or why not) in the entry. */
async function compileInto(entry: Entry, file: string, texts: ReadonlyMap<string, string>, options: CachedCheckOptions): Promise<RunnableConfig | null> {
  const dir = options.compiledDir ?? null;
  if (dir === null) return null;
  // Loaded only to compile: a remembered start does without it (and without esbuild).
  const { compileConfig } = await import('./compile.js');
  const compiled = await compileConfig(file, texts);
  if (!compiled.ok) {
    options.debug?.(`not compiled (${compiled.reason}): running it through tsx`);
    if (compiled.lasting) entry.compiled = { refused: compiled.reason };
    else delete entry.compiled;
    return null;
  }
  const stored = storeCompiled(dir, compiled.code);
  if (!stored.ok) {
    // Run what was compiled; the next start tries to store it again.
    options.debug?.(`compiled copy not stored (${stored.reason})`);
    delete entry.compiled;
  } else {
    options.debug?.(`compiled ${stored.sha.slice(0, 12)}`);
    entry.compiled = { sha: stored.sha, format: compiled.format, externals: compiled.externals };
  }
  return { format: compiled.format, code: compiled.code };
}

function hashes(read: ReadonlyMap<string, string>): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [path, text] of read) files[path] = digest(text);
  return files;
}

/** Changed less than this before it was fingerprinted, a file is hashed at every start instead. */
const RACY_MS = 2000;

/** What a write to the file changes (ctime above all, which no one but root can set back). */
function fingerprint(path: string): string | null {
  try {
    const info = statSync(path, { bigint: true });
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch {
    return null;
  }
}

/**
 * The fingerprint of each file that still holds the text that was hashed, taken before reading it again
 * to compare (so a write after the read changes the fingerprint), and only for files not changed just
 * before: such a file is hashed at every start.
 */
function fingerprints(files: Readonly<Record<string, string>>): Record<string, string> {
  const stats: Record<string, string> = {};
  for (const [path, hash] of Object.entries(files)) {
    const seen = fingerprint(path);
    if (seen === null) continue;
    const ctimeMs = Number(BigInt(seen.split(':')[4] ?? '0') / 1_000_000n);
    if (ctimeMs > Date.now() - RACY_MS) continue;
    if (textHash(path) === hash) stats[path] = seen;
  }
  return stats;
}

/** Every file as it was: by its fingerprint where one was taken, else by the hash of its text. */
function unchanged(entry: Entry): boolean {
  for (const [path, hash] of Object.entries(entry.files)) {
    const known = entry.stats?.[path];
    if (known !== undefined && fingerprint(path) === known) continue;
    if (textHash(path) !== hash) return false;
  }
  return true;
}

/** The file's text read as the compiler reads it (UTF-8, without a byte order mark). */
function readText(path: string): string | null {
  try {
    const text = readFileSync(path, 'utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    return null;
  }
}

function textHash(path: string): string | null {
  const text = readText(path);
  return text === null ? null : digest(text);
}

/**
 * Each file's text now, read as the compiler reads it (UTF-8, without a byte order mark), if every one
 * hashes the same; null at the first that does not (or is gone).
 */
function unchangedTexts(files: Readonly<Record<string, string>>): Map<string, string> | null {
  const texts = new Map<string, string>();
  for (const [path, hash] of Object.entries(files)) {
    const text = readText(path);
    if (text === null || digest(text) !== hash) return null;
    texts.set(path, text);
  }
  return texts;
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
    if (entry.stats !== undefined && (typeof entry.stats !== 'object' || entry.stats === null || !Object.values(entry.stats).every((stat) => typeof stat === 'string'))) delete entry.stats;
    // A malformed compiled reference is dropped (compiled again), not trusted.
    if (entry.compiled !== undefined && !validCompiledRef(entry.compiled)) delete entry.compiled;
    valid[file] = entry as Entry;
  }
  return valid;
}

function validCompiledRef(value: unknown): value is CompiledRef {
  const ref = value as Partial<{ sha: unknown; format: unknown; externals: unknown; refused: unknown }> | null;
  if (typeof ref !== 'object' || ref === null) return false;
  if (typeof ref.refused === 'string') return true;
  return (
    typeof ref.sha === 'string' &&
    /^[0-9a-f]{64}$/.test(ref.sha) &&
    (ref.format === 'esm' || ref.format === 'cjs') &&
    Array.isArray(ref.externals) &&
    ref.externals.every((file) => typeof file === 'string')
  );
}

function writeCache(path: string, cache: CacheFile, compiledDir: string | null): void {
  const kept = Object.entries(cache.entries)
    .sort(([, a], [, b]) => b.checkedAt - a.checkedAt)
    .slice(0, MAX_ENTRIES);
  try {
    writeOwnedFileAtomic(path, JSON.stringify({ format: FORMAT, entries: Object.fromEntries(kept) }));
  } catch {
    // a full disk or an unwritable home: the next start checks again
    return;
  }
  if (compiledDir !== null) pruneCompiled(compiledDir, new Set(kept.map(([, entry]) => (entry.compiled && 'sha' in entry.compiled ? entry.compiled.sha : ''))));
}

/** Compiled copies no entry names any more (dropped, or replaced by an edit) are removed. */
function pruneCompiled(dir: string, used: ReadonlySet<string>): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const match = /^([0-9a-f]{64})\.js$/.exec(name);
    if (match && !used.has(match[1]!)) rmSync(`${dir}/${name}`, { force: true });
  }
}
