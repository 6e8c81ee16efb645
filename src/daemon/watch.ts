/**
 * Restart on file changes (`watch`). One chokidar watcher per app that has `watch` and is meant to run;
 * chokidar is imported only when the first such app appears, so a daemon without watched apps never
 * loads it.
 *
 * A change arms a debounce (`watchDelayMs`); more changes re-arm it, so a burst (a `git pull`, an
 * editor saving ten files) gives one restart, after the last change. The restart is the app's normal
 * restart (the whole tree ended, then a new instance, counted in `restarts`). A restart already under
 * way is never stacked: changes that arrive during it give at most one more restart, after it.
 *
 * Always ignored, whatever `ignoreWatch` adds (PM2 drops its defaults as soon as you set your own):
 * `node_modules`, `.git` and `__pycache__` directories, `*.log` files and the agentpm home (logs,
 * registry, events), any of which would otherwise restart an app because it ran.
 */
import type { FSWatcher } from 'chokidar';
import { basename, isAbsolute, relative, resolve, sep } from 'node:path';
import type { AppSpec, EventType } from '../protocol.js';
import type { App } from './app.js';

/** Directory names ignored wherever they appear under a watched path. */
export const ALWAYS_IGNORED_DIRS = ['node_modules', '.git', '__pycache__'] as const;
/** How long a start waits for its watcher to be ready before answering anyway. */
const READY_TIMEOUT_MS = 10_000;
/** Changed paths remembered per restart, for the event. */
const FILES_KEPT = 5;

/** What the watchers need from the daemon: the supervisor provides it. */
export interface WatchHost {
  emit(type: EventType, app: App, instance: string | null, reason: string | null, data?: Record<string, unknown>): void;
  log(app: App | null, message: string): void;
}

/**
 * One glob as a regular expression over '/'-separated paths: `**` any number of directories, `*` and `?`
 * within one name, `{a,b}` alternatives, `[abc]` classes; everything else literal.
 */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i += 1) {
    const char = glob[i] as string;
    if (char === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        out += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else out += '[^/]*';
    } else if (char === '?') out += '[^/]';
    else if (char === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end === -1) out += '\\[';
      else {
        out += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (char === '{') {
      braces += 1;
      out += '(?:';
    } else if (char === '}' && braces > 0) {
      braces -= 1;
      out += ')';
    } else if (char === ',' && braces > 0) out += '|';
    else out += char.replace(/[.+^$()|\\\]{}]/g, '\\$&');
  }
  return new RegExp(`^${out}${')'.repeat(braces)}$`);
}

/**
 * Whether a path is ignored for an app. A user pattern without '/' matches a name at any depth
 * (`dist`, `*.tmp`); one with '/' is anchored at the app's cwd (`data/cache`, `src/**\/*.test.ts`) or
 * absolute. A pattern that matches a directory ignores everything under it.
 */
export function createIgnore(spec: Pick<AppSpec, 'cwd' | 'watch' | 'ignoreWatch'>, home: string): (path: string) => boolean {
  const roots = spec.watch ?? [spec.cwd];
  const named: RegExp[] = [];
  const anchored: { absolute: boolean; pattern: RegExp }[] = [];
  for (const raw of spec.ignoreWatch) {
    const pattern = raw.replace(/\/+$/, '').replace(/^\.\//, '');
    if (pattern === '') continue;
    if (!pattern.includes('/')) named.push(globToRegExp(pattern));
    else anchored.push({ absolute: isAbsolute(pattern), pattern: globToRegExp(pattern) });
  }
  const homeDir = resolve(home);
  return (path: string): boolean => {
    const absolute = resolve(path);
    if (absolute === homeDir || absolute.startsWith(homeDir + sep)) return true;
    if (basename(absolute).endsWith('.log')) return true;
    // Names are looked at below the watched root only: a project that lives under some `.git` is fine.
    const root = roots.find((candidate) => absolute === candidate || absolute.startsWith(candidate + sep));
    const names = root ? relative(root, absolute).split(sep).filter(Boolean) : [basename(absolute)];
    if (names.some((name) => (ALWAYS_IGNORED_DIRS as readonly string[]).includes(name))) return true;
    if (names.some((name) => named.some((regex) => regex.test(name)))) return true;
    if (anchored.length === 0) return false;
    const fromCwd = relative(spec.cwd, absolute).split(sep).join('/');
    for (const { absolute: isAbs, pattern } of anchored) {
      const subject = isAbs ? absolute.split(sep).join('/') : fromCwd;
      // The path itself or any directory above it.
      const parts = subject.split('/');
      for (let length = parts.length; length > 0; length -= 1) {
        const prefix = parts.slice(0, length).join('/');
        if (prefix !== '' && pattern.test(prefix)) return true;
      }
    }
    return false;
  };
}

/**
 * The debounce, on its own so that it can be tested without files: `change()` for every event, `run`
 * is called once per quiet period and never while a previous call is still running.
 */
export class RestartDebouncer {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** The debounce ended during a run: one more run when it is over. */
  private again = false;
  private closed = false;
  private changes = 0;
  private files: string[] = [];

  constructor(
    private readonly delayMs: number,
    private readonly run: (changes: number, files: string[]) => Promise<void>,
  ) {}

  change(path: string): void {
    if (this.closed) return;
    this.changes += 1;
    if (this.files.length < FILES_KEPT && !this.files.includes(path)) this.files.push(path);
    this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), this.delayMs);
  }

  private fire(): void {
    this.timer = undefined;
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const { changes, files } = this;
    this.changes = 0;
    this.files = [];
    this.running = true;
    this.run(changes, files)
      .catch(() => undefined) // run reports its own failures
      .finally(() => {
        this.running = false;
        if (this.again && !this.closed) {
          this.again = false;
          this.arm();
        }
      });
  }
}

interface Entry {
  app: App;
  /** The watch-related part of the spec the watcher was made for: a change means a new watcher. */
  key: string;
  debouncer: RestartDebouncer;
  watcher: FSWatcher | null;
  closed: boolean;
  ready: Promise<void>;
}

/** The daemon's watchers, one per watched app that is meant to run. */
export class Watchers {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly host: WatchHost,
    private readonly home: string,
  ) {}

  /**
   * Called on every change of an app: watch while it is meant to run (started, adopted, revived, in
   * backoff, errored after giving up) and has `watch`; stop watching once it is stopped or deleted, and
   * start over when its definition changed.
   */
  sync(app: App): void {
    const wanted = app.desired === 'running' && app.spec.watch !== null;
    const key = wanted ? watchKey(app.spec) : null;
    const entry = this.entries.get(app.name);
    if (entry && entry.app === app && entry.key === key) return;
    if (entry) this.close(app.name);
    if (key !== null) this.open(app, key);
  }

  close(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    this.entries.delete(name);
    entry.closed = true;
    entry.debouncer.close();
    entry.watcher?.close().catch(() => undefined);
  }

  /** Every timer and watcher, at once (daemon shutdown). */
  closeAll(): void {
    for (const name of [...this.entries.keys()]) this.close(name);
  }

  /** Waits (bounded) until the watchers of these apps have scanned their paths, so later changes are seen. */
  async ready(names: string[]): Promise<void> {
    const pending = names.flatMap((name) => {
      const entry = this.entries.get(name);
      return entry ? [entry.ready] : [];
    });
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((done) => {
      timer = setTimeout(done, READY_TIMEOUT_MS);
    });
    try {
      await Promise.race([Promise.all(pending), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private open(app: App, key: string): void {
    const spec = app.spec;
    const debouncer = new RestartDebouncer(spec.watchDelayMs, (changes, files) => this.restart(app, changes, files));
    const entry: Entry = { app, key, debouncer, watcher: null, closed: false, ready: Promise.resolve() };
    entry.ready = this.createWatcher(entry, spec).catch((error: unknown) => {
      const message = (error as Error).message;
      this.host.log(app, `cannot watch ${(spec.watch ?? []).join(', ')}: ${message}`);
      this.host.emit('watch', app, app.instance?.id ?? null, 'error', { message });
    });
    this.entries.set(app.name, entry);
  }

  private async createWatcher(entry: Entry, spec: AppSpec): Promise<void> {
    const { watch } = await import('chokidar');
    if (entry.closed) return;
    const ignored = createIgnore(spec, this.home);
    const watcher = watch(spec.watch ?? [], { ignored: (path: string) => ignored(path), ignoreInitial: true, persistent: true });
    entry.watcher = watcher;
    // Files only: a new empty directory (an app creating its logs/ on start) changes nothing that runs,
    // and a removed directory reports its files.
    watcher.on('all', (event, path) => {
      if (event === 'add' || event === 'change' || event === 'unlink') entry.debouncer.change(relative(spec.cwd, path) || path);
    });
    watcher.on('error', (error) => {
      const message = error instanceof Error ? error.message : String(error);
      this.host.log(entry.app, `watch error: ${message}`);
      this.host.emit('watch', entry.app, entry.app.instance?.id ?? null, 'error', { message });
    });
    await new Promise<void>((done) => {
      watcher.once('ready', () => {
        if (!entry.closed) this.host.emit('watch', entry.app, entry.app.instance?.id ?? null, 'ready', { paths: spec.watch, ignore: spec.ignoreWatch });
        done();
      });
      // A watcher closed before it was ready never emits 'ready'.
      if (entry.closed) done();
    });
  }

  private async restart(app: App, changes: number, files: string[]): Promise<void> {
    this.host.emit('watch', app, app.instance?.id ?? null, 'restart', { changes, files });
    try {
      await app.restartIfWanted();
    } catch (error) {
      this.host.log(app, `restart on file change failed: ${(error as Error).message}`);
    }
  }
}

function watchKey(spec: AppSpec): string {
  return JSON.stringify([spec.watch, spec.ignoreWatch, spec.watchDelayMs, spec.cwd]);
}
