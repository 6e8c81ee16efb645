/**
 * The relay's state: the FIFOs it reads, the log files it owns (one per app and stream, shared by all
 * of the app's instances), each app's rotation policy, and one clock that stamps every line it writes,
 * so that stamps are strictly increasing across all apps and streams.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DEFAULT_LOG_POLICY } from '../../config/defaults.js';
import { appLogPaths, homePaths } from '../../home.js';
import type { LogPolicy, LogStream, RelayStatus, RelayStreamStatus } from '../../protocol.js';
import { readOwnedFile, writeOwnedFileAtomic } from '../../safe-files.js';
import { parseFifoName, runDir, STREAMS } from '../fifo.js';
import { appsWithLogs } from '../maintenance.js';
import { formatStamp, StampClock } from '../line.js';
import { FifoSource, type FifoSourceHost } from './fifo-source.js';
import { LogFile } from './log-file.js';

export interface RelayHost {
  log(message: string): void;
  /** A FIFO reached EOF (the relay may now have nothing left to read). */
  detached(): void;
}

const NEWLINE = Buffer.from('\n');

export class Relay implements FifoSourceHost {
  private readonly sources = new Map<string, FifoSource>();
  private readonly files = new Map<string, LogFile>();
  private readonly policies = new Map<string, LogPolicy>();
  /**
   * Microseconds: the wall clock's milliseconds (which follow NTP over months, as the monotonic clock
   * alone would not) and the monotonic clock's microseconds within them. The two can disagree by under a
   * millisecond at a boundary; StampClock keeps the stamps strictly increasing anyway.
   */
  private readonly clock = new StampClock(() => Date.now() * 1000 + Math.floor((performance.now() % 1) * 1000));
  private readonly policyFile: string;

  constructor(
    private readonly home: string,
    private readonly host: RelayHost,
  ) {
    this.policyFile = join(runDir(home), 'policies.json');
    this.loadPolicies();
    this.removeCompressionLeftovers();
  }

  get fifoCount(): number {
    return this.sources.size;
  }

  /** Attaches a FIFO by path; one already read is not attached twice. */
  attach(path: string): void {
    if (this.sources.has(path)) return;
    const name = parseFifoName(basename(path));
    if (!name || dirname(path) !== runDir(this.home)) throw new Error(`${path} is not an agentpm FIFO (${runDir(this.home)}/<app>.<instance>.<out|err>.fifo)`);
    const source = FifoSource.open(path, name, this);
    // A FIFO without writers (its instance gone before this relay opened it) is read out and removed at once.
    if (!source.finished) this.sources.set(path, source);
  }

  /**
   * Re-adopts every FIFO of the run directory not read yet: how a relay that starts fresh takes over
   * from one that died, and (at each daemon's hello) how a FIFO whose attach never came (its daemon died
   * between the spawn and the request) is read after all.
   */
  attachAll(): number {
    let entries: string[];
    try {
      entries = readdirSync(runDir(this.home));
    } catch {
      return 0;
    }
    let attached = 0;
    for (const entry of entries) {
      if (entry.startsWith('.new-')) this.removeAbandoned(join(runDir(this.home), entry));
      if (!parseFifoName(entry) || this.sources.has(join(runDir(this.home), entry))) continue;
      try {
        this.attach(join(runDir(this.home), entry));
        attached += 1;
      } catch (error) {
        this.host.log(`cannot re-attach ${entry}: ${(error as Error).message}`);
      }
    }
    return attached;
  }

  setPolicies(policies: Record<string, LogPolicy>): void {
    for (const [app, policy] of Object.entries(policies)) this.policies.set(app, policy);
    try {
      writeOwnedFileAtomic(this.policyFile, JSON.stringify(Object.fromEntries(this.policies)));
    } catch (error) {
      this.host.log(`cannot save the policies to ${this.policyFile}: ${(error as Error).message}`);
    }
  }

  /** Empties the apps' files (null: every app with files in logs/). Returns the apps flushed. */
  flush(apps: string[] | null): string[] {
    const names = apps ?? appsWithLogs(homePaths(this.home).logs);
    for (const app of names) for (const stream of STREAMS) this.fileFor(app, stream).flush();
    return names;
  }

  status(): RelayStatus {
    const attached = new Map<string, number>();
    for (const source of this.sources.values()) {
      const key = `${source.name.app}\0${source.name.stream}`;
      attached.set(key, (attached.get(key) ?? 0) + 1);
    }
    const streams: RelayStreamStatus[] = [...this.files.entries()].map(([key, file]) => {
      const [app = '', stream = 'out'] = key.split('\0');
      return { app, stream: stream as LogStream, attached: attached.get(key) ?? 0, dropped: file.droppedTotal, path: file.path };
    });
    return {
      pid: process.pid,
      startTime: null,
      version: '',
      fifos: this.sources.size,
      apps: new Set([...this.sources.values()].map((source) => source.name.app)).size,
      rss: process.memoryUsage.rss(),
      streams,
    };
  }

  /** Writes what is held, stops reading (FIFOs stay for the next relay) and closes every file. */
  stopAll(): void {
    for (const source of this.sources.values()) source.stop();
    this.sources.clear();
    for (const file of this.files.values()) file.close();
  }

  // ---- FifoSourceHost ----

  lines(source: FifoSource, lines: Buffer[]): void {
    this.fileFor(source.name.app, source.name.stream).write(lines);
  }

  stampLine(text: Buffer | string): Buffer {
    const stamp = `${formatStamp(this.clock.next())} `;
    return typeof text === 'string' ? Buffer.from(`${stamp}${text}\n`) : Buffer.concat([Buffer.from(stamp, 'latin1'), text, NEWLINE]);
  }

  ended(source: FifoSource): void {
    if (this.sources.get(source.path) === source) this.sources.delete(source.path);
    const { app, stream } = source.name;
    // The last writer of this stream is gone: close the file rather than hold it open for nothing.
    if (![...this.sources.values()].some((other) => other.name.app === app && other.name.stream === stream)) this.files.get(`${app}\0${stream}`)?.close();
    this.host.detached();
  }

  log(message: string): void {
    this.host.log(message);
  }

  private fileFor(app: string, stream: LogStream): LogFile {
    const key = `${app}\0${stream}`;
    let file = this.files.get(key);
    if (!file) {
      file = new LogFile(appLogPaths(this.home, app)[stream], {
        policy: () => this.policies.get(app) ?? DEFAULT_LOG_POLICY,
        stampLine: (text) => this.stampLine(text),
        log: (message) => this.host.log(message),
      });
      this.files.set(key, file);
    }
    return file;
  }

  private loadPolicies(): void {
    try {
      const saved = JSON.parse(readOwnedFile(this.policyFile).toString('utf8')) as Record<string, LogPolicy>;
      for (const [app, policy] of Object.entries(saved)) {
        if (typeof policy?.maxSizeBytes === 'number' && typeof policy.keep === 'number' && typeof policy.compress === 'boolean') this.policies.set(app, policy);
      }
    } catch {
      // none saved yet: defaults until the daemon sends them
    }
  }

  /** A FIFO still under its temp name a minute on: its daemon died before it was put in place. */
  private removeAbandoned(path: string): void {
    try {
      const info = lstatSync(path);
      if (info.isFIFO() && Date.now() - info.mtimeMs > 60_000) rmSync(path, { force: true });
    } catch {
      // gone meanwhile
    }
  }

  /** A relay that died while compressing left a temp file; the uncompressed rotated file is still there. */
  private removeCompressionLeftovers(): void {
    try {
      const dir = homePaths(this.home).logs;
      for (const entry of readdirSync(dir)) if (/\.log\.compressing-\d+\.tmp$/.test(entry)) rmSync(join(dir, entry), { force: true });
    } catch {
      // no logs yet
    }
  }
}
