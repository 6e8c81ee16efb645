/**
 * Writing what the daemon knows to disk: the registry after every change (what the next daemon
 * re-adopts from), and the dump of `agentpm save` that `resurrect` reads back.
 */
import { AgentpmError } from '../errors.js';
import type { AppSpec } from '../protocol.js';
import { readOwnedFile } from '../safe-files.js';
import type { EventBus } from './events.js';
import { saveRegistry, unwritable, writeAtomically, type RegistryFile } from './registry.js';

export interface RegistryWriterOptions {
  path: string;
  /** The registry as it is now, built at each write. */
  contents: () => RegistryFile;
  events: EventBus;
  log: (message: string) => void;
}

/**
 * Writes the registry on every change once re-adoption is done (before, the registry on disk is the
 * only truth about the previous daemon's trees). A failed write is remembered: every request fails
 * until a write succeeds, retried on every tick.
 */
export class RegistryWriter {
  private enabled = false;
  /** Why the last write of the registry failed; null once one succeeds. */
  private failure: AgentpmError | null = null;

  constructor(private readonly options: RegistryWriterOptions) {}

  get active(): boolean {
    return this.enabled;
  }

  enable(): void {
    this.enabled = true;
  }

  /** The last write, at shutdown: nothing is written after it. */
  finish(): void {
    this.persist();
    this.enabled = false;
  }

  /** Writes the registry; a failure is remembered (and retried every tick) for the request to report. */
  persist(): void {
    if (!this.enabled) return;
    try {
      this.persistNow();
    } catch {
      // remembered in failure
    }
  }

  /** On every tick: a registry that could not be written is tried again. */
  retry(): void {
    if (this.failure) this.persist();
  }

  persistNow(): void {
    if (!this.enabled) return;
    const { path, events, log } = this.options;
    try {
      saveRegistry(path, this.options.contents());
      if (this.failure) log('the registry is written again');
      this.failure = null;
    } catch (error) {
      const first = this.failure === null;
      this.failure = unwritable(
        path,
        error,
        'Nothing new is started until it can be written (a spawn it could not record could run twice); the daemon retries on every tick, and what it did meanwhile is saved then.',
      );
      if (first) {
        log(this.failure.message);
        events.emit('daemon', null, null, 'registry-unwritable', { message: this.failure.message });
      }
      throw this.failure;
    }
  }

  /**
   * A request whose changes could not be written fails, even though the daemon acted on them: the
   * caller must know that a daemon restart now would go back to the last registry on disk.
   */
  async saved<T>(operation: Promise<T>): Promise<T> {
    const result = await operation;
    if (this.failure) throw this.failure;
    return result;
  }
}

export interface DumpedApp {
  spec: AppSpec;
  desired: string;
}

/** `agentpm save`: the definitions and whether each should run; the previous dump stays if this fails. */
export function writeDump(path: string, apps: DumpedApp[]): void {
  try {
    writeAtomically(path, JSON.stringify({ version: 1, savedAt: new Date().toISOString(), apps }, null, 1));
  } catch (error) {
    throw unwritable(path, error, 'The previous dump, if any, is unchanged.');
  }
}

/** The apps of the dump, unchecked: each definition is validated as it is started. */
export function readDump(path: string): DumpedApp[] {
  let saved: { apps: DumpedApp[] };
  try {
    saved = JSON.parse(readOwnedFile(path).toString('utf8')) as typeof saved;
  } catch (error) {
    throw new AgentpmError('invalid-argument', `cannot read ${path} (${(error as Error).message}); run \`agentpm save\` first`);
  }
  return saved.apps;
}
