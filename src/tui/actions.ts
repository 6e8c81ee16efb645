/**
 * What each action key asks of the daemon: the one place where a key becomes a request, and where a
 * new daemon capability is wired.
 */
import { constants } from 'node:os';
import { DEFAULT_REAP_GRACE_MS } from '../config/defaults.js';
import { AgentpmError } from '../errors.js';
import type { AppSummary, RequestBody, ResultMap } from '../protocol.js';
import { selfRef } from '../reap/guard.js';

export type AppAction = 'restart' | 'stop' | 'start' | 'delete' | 'signal' | 'reap';

/** Sends one request to the daemon (the feed's connection, or a fake in tests). */
export type Requester = <B extends RequestBody>(body: B) => Promise<ResultMap[B['type']]>;

export type ActionPlan =
  | {
      kind: 'request';
      /** Shown while the request runs (a stop can take the app's whole kill timeout). */
      doing: string;
      /** Sends the request; resolves to what to tell the user. */
      run: (request: Requester) => Promise<string>;
    }
  | { kind: 'refused'; message: string };

export const REAP_UNAVAILABLE = 'reap: not available in this daemon';

export function planAction(action: AppAction, app: AppSummary, signal = 'SIGTERM'): ActionPlan {
  const name = app.name;
  const target = { names: [name] };
  switch (action) {
    case 'restart':
      return simple(`restarting ${name}…`, { type: 'restart', target }, `restarted ${name}`);
    case 'stop':
      return simple(`stopping ${name}…`, { type: 'stop', target }, `stopped ${name}`);
    case 'start':
      // The saved definition, as `agentpm start <name>` does; the daemon refuses it if the app came up
      // meanwhile, where a restart would have restarted it.
      if (app.status === 'online' || app.status === 'starting') return { kind: 'refused', message: `${name} is already running; r restarts it` };
      return simple(`starting ${name}…`, { type: 'start-saved', names: [name], ifRunning: 'refuse' }, `started ${name}`);
    case 'delete':
      return simple(`deleting ${name}…`, { type: 'delete', target }, `deleted ${name}`);
    case 'signal':
      if (app.pid === null) return { kind: 'refused', message: `${name} is not running; nothing to signal` };
      return simple(`sending ${signal} to ${name}…`, { type: 'signal', name, signal }, `sent ${signal} to ${name}`);
    case 'reap':
      return {
        kind: 'request',
        doing: `reaping orphans of ${name}…`,
        run: async (request) => {
          let result: ResultMap['reap'];
          try {
            // The TUI and its ancestors (the terminal, the shell) are never reaped.
            const caller = await selfRef();
            result = await request({ type: 'reap', options: { app: name, dryRun: false, allHomes: false, unmanaged: null, only: null, graceMs: DEFAULT_REAP_GRACE_MS, caller } });
          } catch (error) {
            // A daemon from before `reap` existed speaks the same protocol but refuses the request.
            if (error instanceof AgentpmError && error.code === 'bad-request') return REAP_UNAVAILABLE;
            throw error;
          }
          if (result.found.length === 0) return `no orphans of ${name}`;
          return `reaped ${result.ended} orphaned process(es) of ${name}${result.survivors > 0 ? `; ${result.survivors} survived SIGKILL` : ''}`;
        },
      };
  }
}

function simple(doing: string, body: RequestBody, done: string): ActionPlan {
  return {
    kind: 'request',
    doing,
    run: async (request) => {
      await request(body);
      return done;
    },
  };
}

/** 'term', 'sigterm' or 'SIGTERM' → 'SIGTERM'; null for a name this system does not know. */
export function parseSignal(input: string): string | null {
  const upper = input.trim().toUpperCase();
  if (upper === '') return null;
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return name in constants.signals ? name : null;
}
