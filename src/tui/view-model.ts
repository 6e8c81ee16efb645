/**
 * The dashboard as data: from the state and a terminal size to the lines of every pane, each already
 * fitted to its width and cut to its height. Only what is visible is formatted, so an app with
 * hundreds of processes costs a screenful per frame.
 */
import { describeEventParts, describeExit } from '../cli/render.js';
import { formatBytes, formatDuration } from '../config/units.js';
import type { AgentEvent, AppStatus, AppSummary } from '../protocol.js';
import { bar, clock, fit, fitLine, levelStyle, lineWidth, sanitize, segment, shortCommand, sparkline, textWidth, truncateKeeping, type Glyphs } from './format.js';
import { KEY_HELP } from './keys.js';
import { computeLayout, MIN_COLS, MIN_ROWS, overlayRect, TITLE_ROWS } from './layout.js';
import type { Frame, Line, PaneView, Rect, Style } from './renderer.js';
import { eventsOf, selectedApp, visibleApps, type MonitState, type Sample } from './state.js';

/** How long a finished action's message stays in the footer. */
export const NOTICE_MS = 6000;

export interface ViewInput {
  state: MonitState;
  cols: number;
  rows: number;
  glyphs: Glyphs;
  now: number;
}

export function buildFrame({ state, cols, rows, glyphs, now }: ViewInput): Frame {
  const apps = visibleApps(state);
  const layout = computeLayout(cols, rows, apps.length);
  if (layout === null) {
    const text = `terminal too small (${cols}×${rows}); agentpm monit needs ${MIN_COLS}×${MIN_ROWS}. q quits.`;
    return { panes: [{ id: 'header', rect: { top: 0, left: 0, width: cols, height: rows }, title: null, lines: [fitLine([segment(text, 'warn')], cols)] }] };
  }
  const app = selectedApp(state);
  const name = app?.name ?? null;
  const panes: PaneView[] = [
    { id: 'header', rect: layout.header, title: null, lines: [withClock(fittingHeader(state, cols), now, cols, glyphs)] },
    tablePane(state, apps, layout.table, glyphs),
    treePane(state, app, layout.tree, glyphs),
    memoryPane(name === null ? [] : (state.samples.get(name) ?? []), app, layout.memory, glyphs, now),
    eventsPane(name === null ? [] : eventsOf(state, name), name, layout.events, glyphs),
    logsPane(state, name, layout.logs, glyphs),
    { id: 'footer', rect: layout.footer, title: null, lines: [fitLine(footerLine(state, now, cols), cols, { ellipsis: glyphs.ellipsis })] },
  ];
  if (state.mode.kind === 'help') panes.push(helpPane(cols, rows, glyphs));
  return { panes };
}

/** Rows of the tree pane available to processes (the title and the column header take two). */
export function treeBodyRows(cols: number, rows: number, appCount: number): number {
  const layout = computeLayout(cols, rows, appCount);
  return layout === null ? 1 : Math.max(1, layout.tree.height - TITLE_ROWS - 1);
}

/**
 * The machine and the daemon in one line. `compact` is for narrow terminals: the same facts in fewer
 * words, so memory pressure is not the part that gets cut.
 */
export function headerLine(state: MonitState, compact = false): Line {
  const line: Line = [segment(compact ? 'agentpm' : 'agentpm monit', 'strong')];
  const sep = segment(' │ ', 'muted');
  if (state.connection.state === 'down') {
    line.push(sep, segment('daemon unreachable', 'bad'), segment(` since ${clock(state.connection.since)}, retrying every second`), sep, segment(state.connection.error, 'muted'));
    return line;
  }
  const status = state.status;
  if (status === null) return [...line, sep, segment('connecting…', 'muted')];
  line.push(sep, segment(compact ? `daemon ${status.pid} ${formatBytes(status.rss)}` : `daemon pid ${status.pid}, ${formatBytes(status.rss)}`));
  const machine = status.machine;
  if (machine.totalBytes > 0) {
    const used = machine.totalBytes - machine.availableBytes;
    const usedText = segment(formatBytes(used), levelStyle(used / machine.totalBytes));
    if (compact) line.push(sep, segment('mem '), usedText, segment(`/${formatBytes(machine.totalBytes)}`));
    else line.push(sep, segment('mem '), usedText, segment(` used, ${formatBytes(machine.availableBytes)} avail of ${formatBytes(machine.totalBytes)}`));
  }
  if (machine.pressureSomeAvg10 !== null) {
    const psi = machine.pressureSomeAvg10;
    line.push(sep, segment('psi '), segment(`${psi.toFixed(2)}%`, psi >= 10 ? 'bad' : psi >= 1 ? 'warn' : undefined));
  }
  return line;
}

function fittingHeader(state: MonitState, cols: number): Line {
  const full = headerLine(state);
  return lineWidth(full) + CLOCK_CELLS <= cols ? full : headerLine(state, true);
}

/** A space and HH:MM:SS. */
const CLOCK_CELLS = 9;

/** The header, cut to leave room for the clock at the right edge: it shows that the screen is live. */
export function withClock(line: Line, now: number, width: number, glyphs: Glyphs): Line {
  const time = clock(now);
  const room = width - textWidth(time) - 1;
  if (room < 10) return fitLine(line, width, { ellipsis: glyphs.ellipsis });
  return [...fitLine(line, room, { pad: true, ellipsis: glyphs.ellipsis }), segment(' '), segment(time, 'muted')];
}

/** The status, and for a waiting app what it waits for. */
function statusText(app: AppSummary): string {
  return app.status === 'waiting' && app.waitingFor ? `waiting (${app.waitingFor.join(', ')})` : app.status;
}

const STATUS_STYLE: Record<AppStatus, Style> = { online: 'ok', waiting: 'info', starting: 'info', stopping: 'warn', backoff: 'warn', stopped: 'muted', errored: 'bad' };

interface Column {
  header: string;
  width: number;
  alignRight?: boolean;
  cell: (app: AppSummary) => Line;
}

/**
 * The app table's columns for a width: full headers and a memory bar with its limit from 110 columns,
 * compact ones below, and the last exit takes what is left.
 */
export function tableColumns(apps: readonly AppSummary[], width: number, glyphs: Glyphs): Column[] {
  const wide = width >= 110;
  const nameWidth = Math.min(wide ? 24 : 14, Math.max(4, ...apps.map((app) => textWidth(app.name))));
  const barWidth = wide ? 10 : 6;
  const memoryText = (app: AppSummary): string => (app.limits.memory !== null && wide ? `${formatBytes(app.memory)} / ${formatBytes(app.limits.memory)}` : formatBytes(app.memory));
  const memoryWidth = barWidth + 1 + (wide ? 17 : 7);
  const running = (app: AppSummary): boolean => app.processes > 0;
  const columns: Column[] = [
    { header: 'name', width: nameWidth, cell: (app) => [segment(app.name)] },
    {
      header: 'status',
      // Wider only while an app waits, to say for what (`waiting (gateway)`).
      width: Math.min(wide ? 28 : 18, Math.max(9, ...apps.map((app) => textWidth(statusText(app))))),
      // A running app whose health check fails is the one to look at: say so where the eye goes first.
      cell: (app) => (app.status === 'online' && app.health === 'unhealthy' ? [segment('unhealthy', 'bad')] : [segment(statusText(app), STATUS_STYLE[app.status])]),
    },
    { header: 'pid', width: 7, alignRight: true, cell: (app) => [segment(app.pid === null ? '-' : String(app.pid))] },
    { header: wide ? 'uptime' : 'up', width: wide ? 6 : 4, alignRight: true, cell: (app) => [segment(app.uptimeMs === null ? '-' : formatDuration(app.uptimeMs))] },
    { header: wide ? 'restarts' : 'rst', width: wide ? 8 : 3, alignRight: true, cell: (app) => [segment(String(app.restarts), app.restarts > 0 ? 'warn' : undefined)] },
    {
      header: 'memory',
      width: memoryWidth,
      cell: (app) => {
        if (!running(app)) return [segment('-')];
        const limit = app.limits.memory;
        if (limit === null || limit <= 0) return [segment(memoryText(app))];
        const fraction = app.memory / limit;
        return [segment(bar(fraction, barWidth, glyphs), levelStyle(fraction)), segment(` ${memoryText(app)}`)];
      },
    },
    {
      header: wide ? 'children' : 'chld',
      width: wide ? 8 : 5,
      alignRight: true,
      cell: (app) => {
        if (!running(app)) return [segment('-')];
        const children = app.processes - 1;
        const limit = app.limits.children;
        return [segment(limit === null ? String(children) : `${children}/${limit}`, limit === null ? undefined : levelStyle(children / Math.max(1, limit)))];
      },
    },
    { header: 'cpu', width: 4, alignRight: true, cell: (app) => [segment(running(app) ? `${app.cpu.toFixed(0)}%` : '-')] },
  ];
  const used = 2 + columns.reduce((sum, column) => sum + column.width + 1, 0);
  columns.push({ header: 'last exit', width: Math.max(0, width - used), cell: (app) => [segment(sanitize(describeExit(app.lastExit)), exitStyle(app))] });
  return columns;
}

function exitStyle(app: AppSummary): Style | undefined {
  const reason = app.lastExit?.reason;
  if (reason === undefined || reason === 'stopped' || reason === 'exited') return 'muted';
  return 'bad';
}

/** One table row: a cell per column, padded to the column (right-aligned numbers), one space apart. */
function tableRow(columns: readonly Column[], cells: (column: Column) => Line, glyphs: Glyphs): Line {
  const line: Line = [];
  columns.forEach((column, index) => {
    if (index > 0) line.push(segment(' '));
    const cell = fitLine(cells(column), column.width, { ellipsis: glyphs.ellipsis });
    const pad = ' '.repeat(Math.max(0, column.width - cell.reduce((sum, part) => sum + textWidth(part.text), 0)));
    if (column.alignRight) line.push(segment(pad), ...cell);
    else line.push(...cell, segment(pad));
  });
  return line;
}

export function tablePane(state: MonitState, apps: readonly AppSummary[], rect: Rect, glyphs: Glyphs): PaneView {
  const width = rect.width;
  const bodyRows = rect.height - TITLE_ROWS - 1;
  const columns = tableColumns(apps, width, glyphs);
  const lines: Line[] = [fitLine([segment('  ', 'muted'), ...tableRow(columns, (column) => [segment(column.header)], glyphs).map((part) => ({ ...part, style: 'muted' as const }))], width)];
  const selectedIndex = Math.max(0, apps.findIndex((app) => app.name === state.selected));
  // Keep the selection in view, roughly centred, when there are more apps than rows.
  const first = Math.max(0, Math.min(selectedIndex - Math.floor(bodyRows / 2), apps.length - bodyRows));
  for (const app of apps.slice(first, first + bodyRows)) {
    const selected = app.name === state.selected;
    const row: Line = [segment(selected ? '> ' : '  '), ...tableRow(columns, (column) => column.cell(app), glyphs)];
    lines.push(selected ? fitLine(row.map((part) => ({ text: part.text, style: 'selected' as const })), width, { pad: true, ellipsis: glyphs.ellipsis }) : fitLine(row, width, { ellipsis: glyphs.ellipsis }));
  }
  if (apps.length === 0) {
    const text = state.apps.length === 0 ? 'no apps; start one with `agentpm start <script>` or a config file' : `no app matches '${state.filter}'; Esc clears the filter`;
    lines.push(fitLine([segment(`  ${text}`, 'muted')], width));
  }
  let title = `apps (${apps.length}${apps.length === state.apps.length ? '' : ` of ${state.apps.length}`})`;
  if (state.filter !== '') title += ` · filter '${state.filter}'`;
  if (apps.length > bodyRows) title += ` · ${first + 1}-${Math.min(apps.length, first + bodyRows)} of ${apps.length}`;
  if (state.connection.state === 'down' && state.updatedAt !== null) title += ` · as of ${clock(state.updatedAt)}, not live`;
  return { id: 'table', rect, title: truncateTitle(title, width, glyphs), lines };
}

export function treePane(state: MonitState, app: AppSummary | null, rect: Rect, glyphs: Glyphs): PaneView {
  // One column is left free on the right: the tree's text never touches the events beside it.
  const width = rect.width - 1;
  const bodyRows = Math.max(0, rect.height - TITLE_ROWS - 1);
  if (app === null) return { id: 'tree', rect, title: 'tree', lines: [] };
  const rows = state.treeRows;
  const header = `${fit('pid', 7, { alignRight: true })} ${fit('rss', 8, { alignRight: true })} ${fit('cpu', 4, { alignRight: true })}  command`;
  const lines: Line[] = [fitLine([segment(header, 'muted')], width)];
  if (state.detail === null) {
    lines.push(fitLine([segment('  loading…', 'muted')], width));
  } else if (rows.length === 0) {
    lines.push(fitLine([segment(`  ${app.name}: ${statusText(app)}, no processes`, 'muted')], width));
  }
  const first = Math.min(state.treeScroll, Math.max(0, rows.length - bodyRows));
  for (const row of rows.slice(first, first + bodyRows)) {
    const figures = `${fit(String(row.pid), 7, { alignRight: true })} ${fit(formatBytes(row.rss), 8, { alignRight: true })} ${fit(`${row.cpu.toFixed(0)}%`, 4, { alignRight: true })}  `;
    const line: Line = [segment(figures), segment(row.prefix, 'muted'), segment(sanitize(shortCommand(row.cmd)), row.pid === app.pid ? 'strong' : undefined)];
    lines.push(fitLine(line, width, { ellipsis: glyphs.ellipsis }));
  }
  let title = `tree · ${app.name} · `;
  if (rows.length > bodyRows) {
    // Scrolling: where we are, and arrows for the directions there is more in (PgUp/PgDn go there).
    const more = `${first > 0 ? glyphs.up : ''}${first + bodyRows < rows.length ? glyphs.down : ''}`;
    title += `${first + 1}-${Math.min(rows.length, first + bodyRows)} of ${rows.length} ${more}`;
  } else {
    title += `${rows.length} process${rows.length === 1 ? '' : 'es'}`;
  }
  return { id: 'tree', rect, title: truncateTitle(title, rect.width, glyphs), lines };
}

export function memoryPane(samples: readonly Sample[], app: AppSummary | null, rect: Rect, glyphs: Glyphs, now: number): PaneView {
  const width = rect.width;
  if (app === null) return { id: 'memory', rect, title: 'memory', lines: [] };
  const span = samples.length > 1 ? now - (samples[0]?.at ?? now) : 0;
  const title = `memory · ${app.name}${span >= 1000 ? ` · last ${formatDuration(span)}` : ''}`;
  if (samples.length === 0) return { id: 'memory', rect, title, lines: [fitLine([segment('no samples yet', 'muted')], width)] };
  const values = samples.map((sample) => sample.bytes);
  const limit = app.limits.memory;
  const current = values[values.length - 1] ?? 0;
  const limitText = limit !== null ? `  limit ${formatBytes(limit)}` : '';
  const full = `now ${formatBytes(current)}  min ${formatBytes(Math.min(...values))}  max ${formatBytes(Math.max(...values))}${limitText}`;
  // In a narrow pane the minimum goes first: the limit matters more.
  const stats = textWidth(full) <= width ? full : `now ${formatBytes(current)}  max ${formatBytes(Math.max(...values))}${limit !== null ? ` / ${formatBytes(limit)}` : ''}`;
  const style = limit !== null && limit > 0 ? levelStyle(Math.max(...values) / limit) : 'info';
  return {
    id: 'memory',
    rect,
    title: truncateTitle(title, width, glyphs),
    lines: [fitLine([segment(sparkline(values, width, glyphs), style)], width), fitLine([segment(stats)], width, { ellipsis: glyphs.ellipsis })],
  };
}

export function eventStyle(event: AgentEvent): Style {
  switch (event.type) {
    case 'exit':
      return event.reason === 'stopped' || event.reason === 'exited' ? 'muted' : 'bad';
    case 'give-up':
      return 'bad';
    case 'limit-breach':
    case 'offender-killed':
    case 'orphans-reaped':
    case 'backoff':
    case 'leftovers-killed':
      return 'warn';
    case 'spawn':
    case 'adopt':
      return 'ok';
    case 'health':
      return event.reason === 'healthy' ? 'ok' : event.reason === 'failed' || event.reason === 'unhealthy' ? 'bad' : 'muted';
    case 'guard':
      return event.reason === 'memory-pressure' ? 'bad' : 'ok';
    case 'notify-failed':
      return 'warn';
    default:
      return 'muted';
  }
}

export function eventsPane(events: readonly AgentEvent[], name: string | null, rect: Rect, glyphs: Glyphs): PaneView {
  const bodyRows = Math.max(0, rect.height - TITLE_ROWS);
  // State transitions repeat what spawn, exit and backoff say (the table shows the status): in a
  // pane this small they would crowd out the reasons.
  const lines = events.filter((event) => event.type !== 'state').slice(-bodyRows).map((event) => {
    const time = clock(event.at);
    // What is left of the row for the text after "time type ": cut there, keeping its key figure in view.
    const room = rect.width - textWidth(time) - textWidth(event.type) - 2;
    // The type column says `exit`: the text need not start with `exited: ` too, where every cell counts.
    const { text, keys, lead } = describeEventParts(event);
    const shown = truncateKeeping(sanitize(text.slice(lead.length)), room, keys.map(sanitize), glyphs.ellipsis);
    return fitLine([segment(time, 'muted'), segment(' '), segment(event.type, eventStyle(event)), segment(` ${shown}`)], rect.width, { ellipsis: glyphs.ellipsis });
  });
  if (name !== null && events.length === 0) lines.push(fitLine([segment('no events yet', 'muted')], rect.width));
  return { id: 'events', rect, title: name === null ? 'events' : truncateTitle(`events · ${name}`, rect.width, glyphs), lines };
}

export function logsPane(state: MonitState, name: string | null, rect: Rect, glyphs: Glyphs): PaneView {
  const bodyRows = Math.max(0, rect.height - TITLE_ROWS);
  // A label on every line, not only a colour: under NO_COLOR stderr must still stand out.
  const lines = state.logs
    .slice(-bodyRows)
    .map((line) => fitLine(line.stream === 'err' ? [segment('err ', 'err'), segment(line.text, 'err')] : [segment('out ', 'muted'), segment(line.text)], rect.width, { ellipsis: glyphs.ellipsis }));
  if (name !== null && state.logs.length === 0) lines.push(fitLine([segment('no log output yet', 'muted')], rect.width));
  return { id: 'logs', rect, title: name === null ? 'logs' : truncateTitle(`logs · ${name} · out and err`, rect.width, glyphs), lines };
}

export function footerLine(state: MonitState, now: number, width: number): Line {
  const mode = state.mode;
  switch (mode.kind) {
    case 'filter':
      return [segment('filter: ', 'strong'), segment(`${mode.draft}_`), segment('   Enter keeps it, Esc clears it', 'muted')];
    case 'confirm-delete':
      return [segment(`delete ${mode.app} (stops its whole tree)? `, 'warn'), segment('y/n', 'strong')];
    case 'signal':
      return [segment(`signal to ${mode.app} `, 'strong'), segment('[SIGTERM]: ', 'muted'), segment(`${mode.draft}_`), segment('   Enter sends, Esc cancels', 'muted')];
    case 'help':
      return [segment('any key closes the help', 'muted')];
    case 'normal': {
      const notice = state.notice;
      if (notice !== null && (notice.sticky === true || now - notice.at < NOTICE_MS)) return [segment(notice.text, notice.style)];
      return [segment(keyHints(width), 'muted')];
    }
  }
}

/** The keys in one line: spaced out when there is room, then tighter, then without the obvious arrows. */
export function keyHints(width: number): string {
  const hints = KEY_HELP.flatMap((help) => (help.short === undefined ? [] : [help.short]));
  const candidates = [hints.join('  '), hints.join(' '), hints.slice(1).join(' ')];
  return candidates.find((text) => textWidth(text) <= width) ?? candidates[candidates.length - 1]!;
}

export function helpPane(cols: number, rows: number, glyphs: Glyphs): PaneView {
  const keyWidth = Math.max(...KEY_HELP.map((help) => textWidth(help.keys)));
  const body: Line[] = KEY_HELP.map((help) => [segment(fit(help.keys, keyWidth), 'strong'), segment(`  ${help.what}`)]);
  body.push([], [segment('The selected app is the one marked >. Memory and children are whole-tree figures.', 'muted')]);
  const contentWidth = Math.max(...body.map((line) => line.reduce((sum, part) => sum + textWidth(part.text), 0)));
  const rect = overlayRect(cols, rows, body.length, contentWidth);
  const inner = rect.width - 2;
  return { id: 'help', rect, title: 'help: keys', overlay: true, lines: body.slice(0, rect.height - 2).map((line) => fitLine([segment(' '), ...line], inner, { ellipsis: glyphs.ellipsis })) };
}

function truncateTitle(title: string, width: number, glyphs: Glyphs): string {
  // The title sits on the rule with a space each side and two rule cells before it.
  return fit(title, Math.max(0, Math.min(textWidth(title), width - 4)), { ellipsis: glyphs.ellipsis });
}
