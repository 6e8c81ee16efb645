/**
 * The programmatic API: what the CLI does, for a program (PM2 users script `pm2.connect()`, `start`,
 * `delete`). It is the CLI's own client and config resolution, so a request fails here with the same
 * `AgentpmError` code and message the CLI prints.
 *
 *   import { connect } from 'agentpm';
 *   const pm = await connect();
 *   await pm.start({ name: 'agent-42', script: 'claude', args: ['-p', '…'], maxMemory: '2G' });
 *   await pm.delete('agent-42'); // whole tree ended: nothing of it can be forgotten
 *   pm.close();
 */
import { DaemonClient } from './cli/client.js';
import { callerEnv, mergeStartResults, startBatches } from './cli/start-batches.js';
import { resolveApps } from './config/resolve.js';
import type { AppConfig } from './config/types.js';
import { AgentpmError } from './errors.js';
import { homePaths, resolveHome } from './home.js';
import type { ActionResult, AgentEvent, AppDetail, AppSummary, DaemonStatus, IfRunning, StartResult, Target } from './protocol.js';

export interface ConnectOptions {
  /** The agentpm home (default: AGENTPM_HOME, else ~/.agentpm). */
  home?: string;
  /** Start a daemon when none runs (default true, as the CLI's commands that need one). */
  autostart?: boolean;
}

export interface StartOptions {
  /**
   * What to do with an app of the same name that runs: 'refuse' (default, as `agentpm start`), 'replace'
   * it (`--replace`), or 'apply' the definition (restart only if it changed, as re-running a config).
   */
  ifRunning?: IfRunning;
  /** The environment the apps start from (each app's own `env` over it). Default: this process's. */
  env?: Record<string, string>;
  /** Relative scripts and cwds resolve against this (default: this process's cwd). */
  baseDir?: string;
}

/** An app name, several, or 'all'. */
export type Targets = string | readonly string[];

/** A connection to the daemon of one home. */
export class Agentpm {
  private readonly subscriptions = new Set<DaemonClient>();

  private constructor(
    private readonly client: DaemonClient,
    private readonly home: string,
  ) {}

  static async connect(options: ConnectOptions = {}): Promise<Agentpm> {
    const home = resolveHome(options.home !== undefined ? { ...process.env, AGENTPM_HOME: options.home } : process.env);
    const client = await DaemonClient.connect(homePaths(home), { autostart: options.autostart ?? true });
    return new Agentpm(client, home);
  }

  /** Starts apps defined as in a config's `apps` (validated the same way: nothing starts if one is invalid). */
  async start(apps: AppConfig | readonly AppConfig[], options: StartOptions = {}): Promise<StartResult> {
    const list = Array.isArray(apps) ? [...apps] : [apps as AppConfig];
    const definitions = resolveApps({ apps: list }, { source: 'agentpm.start()', baseDir: options.baseDir ?? process.cwd() });
    const results: StartResult[] = [];
    for (const body of startBatches(definitions, options.env ?? callerEnv(), options.ifRunning ?? 'refuse')) results.push(await this.client.request(body));
    return mergeStartResults(results);
  }

  async stop(targets: Targets): Promise<ActionResult> {
    return this.client.request({ type: 'stop', target: target(targets) });
  }

  async restart(targets: Targets): Promise<ActionResult> {
    return this.client.request({ type: 'restart', target: target(targets) });
  }

  /** Stops the apps (whole trees) and forgets them. */
  async delete(targets: Targets): Promise<ActionResult> {
    return this.client.request({ type: 'delete', target: target(targets) });
  }

  ls(): Promise<AppSummary[]> {
    return this.client.request({ type: 'ls' });
  }

  show(name: string): Promise<AppDetail> {
    return this.client.request({ type: 'show', name });
  }

  status(): Promise<DaemonStatus> {
    return this.client.request({ type: 'status' });
  }

  /** The most recent events (of one app, or all), oldest first. */
  events(options: { app?: string; limit?: number } = {}): Promise<AgentEvent[]> {
    return this.client.request({ type: 'events', app: options.app ?? null, limit: options.limit ?? 100 });
  }

  /**
   * Calls `listener` with every event from now on (of one app, or all), on a connection of its own.
   * Resolves once subscribed, to a function that ends the subscription.
   */
  async subscribe(listener: (event: AgentEvent) => void, options: { app?: string } = {}): Promise<() => void> {
    const client = await DaemonClient.connect(homePaths(this.home), { autostart: false });
    this.subscriptions.add(client);
    client.onEvent = listener;
    try {
      await client.request({ type: 'subscribe', app: options.app ?? null });
    } catch (error) {
      this.subscriptions.delete(client);
      client.close();
      throw error;
    }
    return () => {
      this.subscriptions.delete(client);
      client.close();
    };
  }

  /** Closes the connection and every subscription; the daemon and the apps keep running. */
  close(): void {
    for (const client of this.subscriptions) client.close();
    this.subscriptions.clear();
    this.client.close();
  }
}

/** Shorthand for `Agentpm.connect()`. */
export function connect(options: ConnectOptions = {}): Promise<Agentpm> {
  return Agentpm.connect(options);
}

function target(targets: Targets): Target {
  const names = typeof targets === 'string' ? [targets] : [...targets];
  if (names.length === 0) throw new AgentpmError('invalid-argument', "no app named: pass a name, several, or 'all'");
  return names.length === 1 && names[0] === 'all' ? { all: true } : { names };
}
