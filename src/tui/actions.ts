/**
 * What each action key asks of the daemon. The one place where a key becomes a request, so a new
 * daemon capability (reaping orphans) is wired here and nowhere else.
 */
import { constants } from 'node:os';
import type { AppSummary, RequestBody } from '../protocol.js';

export type AppAction = 'restart' | 'stop' | 'start' | 'delete' | 'signal' | 'reap';

export type ActionPlan =
  | { kind: 'request'; body: RequestBody; doing: string; done: string }
  | { kind: 'refused'; message: string };

/** Whether this daemon can reap an app's orphans; see planAction. */
export const REAP_AVAILABLE = false;

export function planAction(action: AppAction, app: AppSummary, signal = 'SIGTERM'): ActionPlan {
  const target = { names: [app.name] };
  switch (action) {
    case 'restart':
      return { kind: 'request', body: { type: 'restart', target }, doing: `restarting ${app.name}…`, done: `restarted ${app.name}` };
    case 'stop':
      return { kind: 'request', body: { type: 'stop', target }, doing: `stopping ${app.name}…`, done: `stopped ${app.name}` };
    case 'start':
      // The protocol's `start` carries a full definition; the daemon already has it, and `restart`
      // of a stopped app starts it from that definition.
      if (app.status === 'online' || app.status === 'starting') return { kind: 'refused', message: `${app.name} is already running; r restarts it` };
      return { kind: 'request', body: { type: 'restart', target }, doing: `starting ${app.name}…`, done: `started ${app.name}` };
    case 'delete':
      return { kind: 'request', body: { type: 'delete', target }, doing: `deleting ${app.name}…`, done: `deleted ${app.name}` };
    case 'signal':
      if (app.pid === null) return { kind: 'refused', message: `${app.name} is not running; nothing to signal` };
      return { kind: 'request', body: { type: 'signal', name: app.name, signal }, doing: `sending ${signal} to ${app.name}…`, done: `sent ${signal} to ${app.name}` };
    case 'reap':
      // The daemon has no `reap` request yet. When it has: { type: 'reap', target } and set REAP_AVAILABLE.
      return { kind: 'refused', message: 'reap: not available in this daemon' };
  }
}

/** 'term', 'sigterm' or 'SIGTERM' → 'SIGTERM'; null for a name this system does not know. */
export function parseSignal(input: string): string | null {
  const upper = input.trim().toUpperCase();
  if (upper === '') return null;
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return name in constants.signals ? name : null;
}
