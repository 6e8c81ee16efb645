/**
 * Keys, by input mode. A key changes the state and may ask the controller for something it cannot do
 * itself (talk to the daemon, quit); the help overlay and the footer are generated from KEY_HELP so
 * they cannot drift from what the keys do.
 */
import { parseSignal, type AppAction } from './actions.js';
import type { KeyPress } from './renderer.js';
import { keepSelectionVisible, moveSelection, notify, scrollTree, selectedApp, type MonitState } from './state.js';

export type Effect =
  | { kind: 'quit' }
  | { kind: 'action'; action: AppAction; app: string; signal?: string }
  /** The selected app changed: fetch its details and logs now rather than at the next refresh. */
  | { kind: 'selected' };

export interface KeyHelp {
  keys: string;
  what: string;
  /** Shown in the footer's one-line summary. */
  short?: string;
}

export const KEY_HELP: readonly KeyHelp[] = [
  { keys: '↑ ↓ j', what: 'select an app', short: '↑↓ select' },
  { keys: 'PgUp PgDn Home End', what: 'scroll the process tree' },
  { keys: 'r', what: 'restart the selected app', short: 'r restart' },
  { keys: 's', what: 'stop it (stop signal, grace, SIGKILL)', short: 's stop' },
  { keys: 'S', what: 'start it (a stopped or errored app)', short: 'S start' },
  { keys: 'd', what: 'delete it (asks y/n)', short: 'd delete' },
  { keys: 'k', what: 'signal its root process (asks; SIGTERM by default)', short: 'k signal' },
  { keys: 'x', what: "reap its orphans (processes of its ended instances)", short: 'x reap' },
  { keys: '/', what: 'filter apps by name (Enter keeps, Esc clears)', short: '/ filter' },
  { keys: '?', what: 'this help', short: '? help' },
  { keys: 'q Ctrl-C', what: 'quit', short: 'q quit' },
];

/** Characters a person can type into the filter and signal prompts. */
const PRINTABLE = /^[\x20-\x7e]$/;

export function handleKey(state: MonitState, key: KeyPress, treeRows: number, now: number): Effect | null {
  if (key.ctrl && key.name === 'c') return { kind: 'quit' };
  const mode = state.mode;
  switch (mode.kind) {
    case 'help':
      state.mode = { kind: 'normal' };
      return null;
    case 'filter': {
      if (key.name === 'enter') {
        state.mode = { kind: 'normal' };
        return null;
      }
      const draft = key.name === 'escape' ? '' : edit(mode.draft, key);
      if (key.name === 'escape') state.mode = { kind: 'normal' };
      else state.mode = { kind: 'filter', draft };
      state.filter = draft;
      return keepSelectionVisible(state) ? { kind: 'selected' } : null;
    }
    case 'confirm-delete':
      state.mode = { kind: 'normal' };
      if (key.name === 'y' || key.name === 'Y') return { kind: 'action', action: 'delete', app: mode.app };
      notify(state, `kept ${mode.app}`, 'muted', now);
      return null;
    case 'signal': {
      if (key.name === 'escape') {
        state.mode = { kind: 'normal' };
        notify(state, 'no signal sent', 'muted', now);
        return null;
      }
      if (key.name === 'enter') {
        state.mode = { kind: 'normal' };
        const typed = mode.draft.trim() === '' ? 'SIGTERM' : mode.draft;
        const signal = parseSignal(typed);
        if (signal === null) {
          notify(state, `unknown signal '${typed}'; use a name such as SIGTERM, SIGINT, SIGHUP, SIGUSR1`, 'bad', now);
          return null;
        }
        return { kind: 'action', action: 'signal', app: mode.app, signal };
      }
      state.mode = { kind: 'signal', app: mode.app, draft: edit(mode.draft, key) };
      return null;
    }
    case 'normal':
      return normalKey(state, key, treeRows, now);
  }
}

function normalKey(state: MonitState, key: KeyPress, treeRows: number, now: number): Effect | null {
  const page = Math.max(1, treeRows - 1);
  switch (key.name) {
    case 'q':
      return { kind: 'quit' };
    case '?':
      state.mode = { kind: 'help' };
      return null;
    case 'up':
      return moveSelection(state, -1) ? { kind: 'selected' } : null;
    case 'down':
    case 'j':
      return moveSelection(state, 1) ? { kind: 'selected' } : null;
    case 'pageup':
      scrollTree(state, -page, treeRows);
      return null;
    case 'pagedown':
      scrollTree(state, page, treeRows);
      return null;
    case 'home':
      scrollTree(state, -Infinity, treeRows);
      return null;
    case 'end':
      scrollTree(state, Infinity, treeRows);
      return null;
    case '/':
      state.mode = { kind: 'filter', draft: state.filter };
      return null;
    case 'escape':
      if (state.filter === '') return null;
      state.filter = '';
      return keepSelectionVisible(state) ? { kind: 'selected' } : null;
  }
  const action = ACTION_KEYS[key.name];
  if (action === undefined) return null;
  const app = selectedApp(state);
  if (app === null) {
    notify(state, 'no app selected', 'muted', now);
    return null;
  }
  if (action === 'delete') {
    state.mode = { kind: 'confirm-delete', app: app.name };
    return null;
  }
  if (action === 'signal') {
    state.mode = { kind: 'signal', app: app.name, draft: '' };
    return null;
  }
  return { kind: 'action', action, app: app.name };
}

const ACTION_KEYS: Record<string, AppAction> = { r: 'restart', s: 'stop', S: 'start', d: 'delete', k: 'signal', x: 'reap' };

function edit(draft: string, key: KeyPress): string {
  if (key.name === 'backspace') return draft.slice(0, -1);
  if (!key.ctrl && PRINTABLE.test(key.name) && draft.length < 64) return draft + key.name;
  return draft;
}
