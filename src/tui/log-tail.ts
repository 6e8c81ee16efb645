/**
 * The log pane's source: the selected app's out and err files (paths from `show`), read as `agentpm
 * logs` reads them (src/logs/): the last lines of both streams merged in arrival order, stamps
 * stripped, then what the files gain, across rotation and truncation.
 */
import { AgentpmError } from '../errors.js';
import { streamFiles, STREAMS, type AppLogFiles, type Stream } from '../logs/files.js';
import { LogFollower } from '../logs/follow.js';
import { lastLinesOfApp, NO_FILTER, type Entry } from '../logs/tail.js';
import { sanitize } from './format.js';
import { LOG_LINE_LIMIT, type LogLine } from './state.js';

/** A chattier app than this per poll shows only its latest output: the pane is a glance, not a pager. */
const MAX_READ_BYTES = 64 * 1024;

export class LogTail {
  private files: Record<Stream, string> | null = null;
  private follower: LogFollower | null = null;
  /** Lines read since the last poll (the first tail arrives asynchronously). */
  private fresh = false;
  private kept: LogLine[] = [];
  /** The pair being followed; a tail that finishes after another pair was selected is dropped. */
  private selection = 0;

  /** `loaded`: the last lines of a newly followed pair were read (they arrive asynchronously): a poll now shows them. */
  constructor(
    private readonly initialLines = 50,
    private readonly loaded: () => void = () => undefined,
  ) {}

  get lines(): LogLine[] {
    return this.kept;
  }

  /** Follows another pair of files (null: none); starts over from their last lines. */
  follow(files: Record<Stream, string> | null): void {
    if (files?.out === this.files?.out && files?.err === this.files?.err) return;
    this.follower?.close();
    this.follower = null;
    this.files = files;
    this.kept = [];
    this.selection += 1;
    if (files === null) return;
    const follower = new LogFollower({ maxBytesPerPoll: MAX_READ_BYTES });
    const ends: Partial<Record<Stream, number>> = {};
    const chains: AppLogFiles = { out: [], err: [] };
    const followed: Stream[] = [];
    for (const stream of STREAMS) {
      try {
        const end = follower.add('', stream, files[stream], null);
        chains[stream] = streamFiles(files[stream]);
        if (chains[stream][0]?.path === files[stream]) ends[stream] = end;
        followed.push(stream);
      } catch (error) {
        // A refused file (a symlink, someone else's) says why in the pane instead of showing nothing.
        this.push([{ app: '', stream, micros: null, at: null, text: `agentpm: ${error instanceof AgentpmError ? error.message : String(error)}` }]);
      }
    }
    const selection = this.selection;
    lastLinesOfApp('', chains, followed, this.initialLines, NO_FILTER, ends).then(
      (entries) => {
        if (selection !== this.selection) return follower.close();
        this.kept = [...entries.map(toPaneLine), ...this.kept];
        this.follower = follower;
        this.fresh = true;
        this.loaded();
      },
      (error: unknown) => {
        if (selection !== this.selection) return follower.close();
        this.push([{ app: '', stream: 'err', micros: null, at: null, text: `agentpm: ${(error as Error).message}` }]);
        this.follower = follower;
        this.loaded();
      },
    );
  }

  /** Reads what was appended since the last poll; true if there are new lines. */
  poll(): boolean {
    const entries = this.follower?.poll() ?? [];
    this.push(entries);
    const added = this.fresh || entries.length > 0;
    this.fresh = false;
    return added;
  }

  private push(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.kept.push(...entries.map(toPaneLine));
    if (this.kept.length > LOG_LINE_LIMIT) this.kept.splice(0, this.kept.length - LOG_LINE_LIMIT);
    this.fresh = true;
  }
}

function toPaneLine(entry: Entry): LogLine {
  return { stream: entry.stream, text: sanitize(lastRewrite(entry.text)) };
}

/** A progress display rewrites its line with carriage returns; what a terminal would show is the last. */
function lastRewrite(line: string): string {
  const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
  return trimmed.slice(trimmed.lastIndexOf('\r') + 1);
}
