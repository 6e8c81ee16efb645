/**
 * The dashboard's only source of truth about apps: the daemon's socket. Polls `status`, `ls` and
 * `show` (for the selected app) about once a second, follows the event stream, and when the daemon
 * goes away reports it and keeps trying to reconnect, without ever starting a daemon itself (one that
 * was stopped on purpose stays stopped).
 */
import { AgentpmError } from '../errors.js';
import type { HomePaths } from '../home.js';
import type { AgentEvent, RequestBody, ResultMap } from '../protocol.js';
import { DaemonClient } from '../cli/client.js';
import type { Connection, Snapshot } from './state.js';

export interface FeedHandlers {
  snapshot(snapshot: Snapshot): void;
  /** `replace`: a fresh backlog (after connecting) that supersedes what was received before. */
  events(events: AgentEvent[], replace: boolean): void;
  connection(connection: Connection): void;
}

export interface FeedOptions {
  refreshMs: number;
  retryMs: number;
  /** A daemon that does not answer within this is treated as gone. */
  timeoutMs: number;
  backlog: number;
}

export const DEFAULT_FEED_OPTIONS: FeedOptions = { refreshMs: 1000, retryMs: 1000, timeoutMs: 5000, backlog: 200 };

export class DaemonFeed {
  private client: DaemonClient | null = null;
  /** Bumped per connection, so answers and closes of an old connection are ignored. */
  private generation = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private pollAgain = false;
  private stopped = false;
  private selected: string | null = null;

  constructor(
    private readonly paths: HomePaths,
    private readonly handlers: FeedHandlers,
    private readonly options: FeedOptions = DEFAULT_FEED_OPTIONS,
  ) {}

  /** Starts from a connection the caller already made (and may have started a daemon for). */
  start(client: DaemonClient): void {
    void this.adopt(client);
  }

  select(name: string | null): void {
    this.selected = name;
    this.refreshNow();
  }

  /** Polls now instead of at the next refresh (after an action, or a new selection). */
  refreshNow(): void {
    if (this.client === null || this.stopped) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.clearTimer();
    void this.poll(this.generation);
  }

  request<B extends RequestBody>(body: B): Promise<ResultMap[B['type']]> {
    if (this.client === null) return Promise.reject(new AgentpmError('daemon-unreachable', 'daemon unreachable; try again when it is back'));
    return this.client.request(body);
  }

  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.generation += 1;
    this.client?.close();
    this.client = null;
  }

  private async adopt(client: DaemonClient): Promise<void> {
    if (this.stopped) {
      client.close();
      return;
    }
    const generation = ++this.generation;
    this.client = client;
    client.onClose = (reason) => this.lost(generation, reason);
    // Subscribe first, then fetch the backlog: an event in between is kept, never lost or doubled.
    let early: AgentEvent[] | null = [];
    client.onEvent = (event) => {
      if (generation !== this.generation) return;
      if (early !== null) early.push(event);
      else this.handlers.events([event], false);
    };
    try {
      await this.bounded(client.request({ type: 'subscribe', app: null }));
      const backlog = await this.bounded(client.request({ type: 'events', app: null, limit: this.options.backlog }));
      if (generation !== this.generation) return;
      const seen = new Set(backlog.map((event) => JSON.stringify(event)));
      this.handlers.events([...backlog, ...early.filter((event) => !seen.has(JSON.stringify(event)))], true);
      early = null;
    } catch (error) {
      this.lost(generation, messageOf(error));
      return;
    }
    this.handlers.connection({ state: 'up' });
    await this.poll(generation);
  }

  private async poll(generation: number): Promise<void> {
    const client = this.client;
    if (client === null || generation !== this.generation) return;
    this.polling = true;
    try {
      const selected = this.selected;
      const [status, apps, detail] = await this.bounded(
        Promise.all([
          client.request({ type: 'status' }),
          client.request({ type: 'ls' }),
          // A just-deleted app answers unknown-app: no detail this time, the list says the rest.
          selected === null ? Promise.resolve(null) : client.request({ type: 'show', name: selected }).catch(() => null),
        ]),
      );
      if (generation !== this.generation) return;
      this.handlers.snapshot({ status, apps, detail });
    } catch (error) {
      this.lost(generation, messageOf(error));
      return;
    } finally {
      this.polling = false;
    }
    if (this.pollAgain) {
      this.pollAgain = false;
      return this.poll(generation);
    }
    this.schedule(() => void this.poll(generation), this.options.refreshMs);
  }

  private lost(generation: number, reason: string): void {
    if (generation !== this.generation || this.stopped) return;
    this.generation += 1;
    this.client?.close();
    this.client = null;
    this.pollAgain = false;
    this.handlers.connection({ state: 'down', since: Date.now(), error: reason });
    this.schedule(() => void this.reconnect(Date.now()), this.options.retryMs);
  }

  private async reconnect(since: number): Promise<void> {
    if (this.stopped) return;
    try {
      const client = await this.bounded(DaemonClient.connect(this.paths, { autostart: false }), (late) => late.close());
      await this.adopt(client);
    } catch (error) {
      if (this.stopped) return;
      this.handlers.connection({ state: 'down', since, error: messageOf(error) });
      this.schedule(() => void this.reconnect(since), this.options.retryMs);
    }
  }

  /** The promise, or a rejection after timeoutMs; `late` disposes of a value that came too late. */
  private bounded<T>(promise: Promise<T>, late?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        reject(new AgentpmError('daemon-unreachable', `the daemon did not answer within ${this.options.timeoutMs / 1000}s`));
      }, this.options.timeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          if (expired) late?.(value);
          else resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  private schedule(run: () => void, delayMs: number): void {
    this.clearTimer();
    if (this.stopped) return;
    this.timer = setTimeout(run, delayMs);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
