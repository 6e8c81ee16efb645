/**
 * What the dashboard knows: the daemon's latest answers, the events seen, memory history kept on this
 * side (the daemon keeps none), the selection, the filter and the input mode. Updated only through the
 * functions here, so the rules (selection follows names, history is bounded) live in one place.
 */
import type { AgentEvent, AppDetail, AppSummary, DaemonStatus } from '../protocol.js';
import type { Glyphs } from './format.js';
import type { Style } from './renderer.js';
import { layoutTree, type TreeRow } from './tree.js';

/** Ten minutes of history at one sample a second. */
export const SAMPLE_LIMIT = 600;
/** Extra refreshes (after a key or an action) replace the last sample rather than crowd the history. */
export const SAMPLE_MIN_GAP_MS = 500;
export const EVENT_LIMIT = 1000;
export const LOG_LINE_LIMIT = 500;

export type Mode =
  | { kind: 'normal' }
  | { kind: 'help' }
  | { kind: 'filter'; draft: string }
  | { kind: 'confirm-delete'; app: string }
  | { kind: 'signal'; app: string; draft: string };

export type Connection = { state: 'up' } | { state: 'down'; since: number; error: string };

export interface Sample {
  at: number;
  bytes: number;
}

export interface LogLine {
  stream: 'out' | 'err';
  text: string;
}

export interface Notice {
  text: string;
  style: Style;
  at: number;
  /** Stays until replaced: an action still in progress. */
  sticky?: boolean;
}

export interface MonitState {
  connection: Connection;
  status: DaemonStatus | null;
  apps: AppSummary[];
  /** `show` of the selected app, when it has been answered for that app. */
  detail: AppDetail | null;
  treeRows: TreeRow[];
  treeScroll: number;
  events: AgentEvent[];
  samples: Map<string, Sample[]>;
  /** By name, so the selection survives refreshes, reordering and filtering. */
  selected: string | null;
  filter: string;
  mode: Mode;
  notice: Notice | null;
  logs: LogLine[];
  /** When the last snapshot arrived: while the daemon is away, the table shows what it said then. */
  updatedAt: number | null;
}

export interface Snapshot {
  status: DaemonStatus;
  apps: AppSummary[];
  detail: AppDetail | null;
}

export function createState(): MonitState {
  return {
    connection: { state: 'up' },
    status: null,
    apps: [],
    detail: null,
    treeRows: [],
    treeScroll: 0,
    events: [],
    samples: new Map(),
    selected: null,
    filter: '',
    mode: { kind: 'normal' },
    notice: null,
    logs: [],
    updatedAt: null,
  };
}

/** Apps whose name contains the filter, ignoring case. */
export function visibleApps(state: Pick<MonitState, 'apps' | 'filter'>): AppSummary[] {
  const needle = state.filter.trim().toLowerCase();
  return needle === '' ? state.apps : state.apps.filter((app) => app.name.toLowerCase().includes(needle));
}

export function selectedApp(state: MonitState): AppSummary | null {
  return visibleApps(state).find((app) => app.name === state.selected) ?? null;
}

/**
 * Takes in one refresh. Records a memory sample per app, keeps the selection on the same name (or the
 * first visible app when that name is gone or filtered out) and re-lays the tree only when it changed.
 */
export function applySnapshot(state: MonitState, snapshot: Snapshot, glyphs: Glyphs, now: number): void {
  state.status = snapshot.status;
  state.apps = snapshot.apps;
  state.updatedAt = now;
  for (const app of snapshot.apps) {
    const history = state.samples.get(app.name) ?? [];
    const last = history[history.length - 1];
    if (last !== undefined && now - last.at < SAMPLE_MIN_GAP_MS) history.pop();
    history.push({ at: now, bytes: app.memory });
    if (history.length > SAMPLE_LIMIT) history.splice(0, history.length - SAMPLE_LIMIT);
    state.samples.set(app.name, history);
  }
  const names = new Set(snapshot.apps.map((app) => app.name));
  for (const name of state.samples.keys()) if (!names.has(name)) state.samples.delete(name);
  keepSelectionVisible(state);
  setDetail(state, snapshot.detail !== null && snapshot.detail.name === state.selected ? snapshot.detail : null, glyphs);
}

export function setDetail(state: MonitState, detail: AppDetail | null, glyphs: Glyphs): void {
  state.detail = detail;
  // Figures change on every tick, so the layout is redone per refresh; it is linear, and cheap.
  state.treeRows = detail === null ? [] : layoutTree(detail.tree, detail.pid, glyphs);
}

/** After the app list or the filter changed: the selection must be a visible app, if there is one. */
export function keepSelectionVisible(state: MonitState): boolean {
  const visible = visibleApps(state);
  if (visible.some((app) => app.name === state.selected)) return false;
  state.selected = visible[0]?.name ?? null;
  state.treeScroll = 0;
  return true;
}

/** Moves the selection by `delta` rows among the visible apps; true if it changed. */
export function moveSelection(state: MonitState, delta: number): boolean {
  const visible = visibleApps(state);
  if (visible.length === 0) return false;
  const at = Math.max(0, visible.findIndex((app) => app.name === state.selected));
  const next = visible[Math.min(visible.length - 1, Math.max(0, at + delta))]!.name;
  if (next === state.selected) return false;
  state.selected = next;
  state.treeScroll = 0;
  state.detail = null;
  state.treeRows = [];
  state.logs = [];
  return true;
}

/** Scrolls the process tree; the view clamps to what exists, this only keeps it non-negative. */
export function scrollTree(state: MonitState, delta: number, visibleRows: number): void {
  const last = Math.max(0, state.treeRows.length - visibleRows);
  state.treeScroll = Math.min(last, Math.max(0, state.treeScroll + delta));
}

/** Adds pushed events, or (`replace`) starts over from a backlog, e.g. after reconnecting. */
export function addEvents(state: MonitState, events: readonly AgentEvent[], replace: boolean): void {
  if (replace) state.events = [...events];
  else state.events.push(...events);
  if (state.events.length > EVENT_LIMIT) state.events.splice(0, state.events.length - EVENT_LIMIT);
}

export function eventsOf(state: MonitState, app: string): AgentEvent[] {
  return state.events.filter((event) => event.app === app);
}

export function notify(state: MonitState, text: string, style: Style, now: number, sticky = false): void {
  state.notice = sticky ? { text, style, at: now, sticky } : { text, style, at: now };
}
