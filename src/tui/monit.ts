/**
 * `agentpm monit`: wires the daemon feed, the log tail, the state, the keys and a renderer together.
 * Loaded only by that command (blessed with it), so no other command pays for the TUI.
 */
import { appendFileSync } from 'node:fs';
import { AgentpmError } from '../errors.js';
import type { HomePaths } from '../home.js';
import { DaemonClient } from '../cli/client.js';
import { planAction } from './actions.js';
import { DaemonFeed } from './feed.js';
import { ASCII_GLYPHS, UNICODE_GLYPHS, type Glyphs } from './format.js';
import { handleKey, type Effect } from './keys.js';
import { LogTail } from './log-tail.js';
import type { KeyPress, Renderer } from './renderer.js';
import { addEvents, applySnapshot, createState, notify, selectedApp, visibleApps, type MonitState } from './state.js';
import { buildFrame, treeBodyRows } from './view-model.js';

/** How often the log files are polled and the clock and messages move on, independent of the daemon. */
const TICK_MS = 1000;

/**
 * AGENTPM_MONIT_FRAME_LOG=<file>: what each frame and each refresh cost is appended there as a JSON
 * line, so that the bench (bench/scale.ts) times the real render path in a real terminal. Off unless set.
 */
const FRAME_LOG = process.env['AGENTPM_MONIT_FRAME_LOG'] || null;

export interface FrameLogEntry {
  kind: 'frame' | 'snapshot';
  /** frame: the view model built from the state; snapshot: the daemon's answers taken into the state. */
  buildMs: number;
  /** frame: the renderer (blessed) drawing it into the terminal; 0 for a snapshot. */
  drawMs: number;
  apps: number;
  selected: string | null;
  treeRows: number;
}

export async function runMonit(paths: HomePaths): Promise<void> {
  if (process.stdout.isTTY !== true || process.stdin.isTTY !== true) {
    throw new AgentpmError('invalid-argument', '`agentpm monit` needs a terminal; scripts can use `agentpm ls --json` and `agentpm events --follow --json`');
  }
  // Like every other command, the first connection starts a daemon if none runs. Later reconnects
  // never do: a daemon someone stopped stays stopped while the dashboard waits for it.
  const client = await DaemonClient.connect(paths, { autostart: true });
  const { createBlessedRenderer } = await import('./screen.js');
  const renderer = createBlessedRenderer({ color: !('NO_COLOR' in process.env) });
  await new Dashboard(paths, renderer).run(client);
}

class Dashboard {
  private readonly state: MonitState = createState();
  private readonly glyphs: Glyphs;
  private readonly logs = new LogTail(50, () => {
    this.pollLogs();
    this.draw();
  });
  private readonly feed: DaemonFeed;
  private tick: NodeJS.Timeout | null = null;
  private drawQueued = false;
  private closed = false;
  private finish: () => void = () => undefined;

  constructor(
    paths: HomePaths,
    private readonly renderer: Renderer,
  ) {
    this.glyphs = renderer.capabilities.unicode ? UNICODE_GLYPHS : ASCII_GLYPHS;
    this.feed = new DaemonFeed(paths, {
      snapshot: (snapshot) => {
        const before = this.state.selected;
        const t0 = performance.now();
        applySnapshot(this.state, snapshot, this.glyphs, Date.now());
        this.logCost('snapshot', performance.now() - t0, 0);
        if (this.state.selected !== before) this.selectionChanged();
        if (this.state.detail !== null) this.logs.follow(this.state.detail.logs);
        this.pollLogs();
        this.draw();
      },
      events: (events, replace) => {
        addEvents(this.state, events, replace);
        this.draw();
      },
      connection: (connection) => {
        // The reason a live connection was lost (the daemon dropped this dashboard as a slow consumer,
        // or went away) stays on screen after the reconnect a second later.
        if (connection.state === 'down' && this.state.connection.state === 'up') notify(this.state, `connection lost: ${connection.error}`, 'warn', Date.now());
        this.state.connection = connection;
        this.draw();
      },
    });
  }

  run(client: DaemonClient): Promise<void> {
    return new Promise<void>((resolve) => {
      this.finish = resolve;
      this.renderer.onKey((key) => this.key(key));
      this.renderer.onResize(() => this.draw());
      this.feed.start(client);
      this.tick = setInterval(() => {
        this.pollLogs();
        this.draw();
      }, TICK_MS);
      this.draw();
    });
  }

  private key(key: KeyPress): void {
    if (this.closed) return;
    const { cols, rows } = this.renderer.size();
    const effect = handleKey(this.state, key, treeBodyRows(cols, rows, visibleApps(this.state).length), Date.now());
    if (effect !== null) this.apply(effect);
    this.draw();
  }

  private apply(effect: Effect): void {
    switch (effect.kind) {
      case 'quit':
        return this.quit();
      case 'selected':
        return this.selectionChanged();
      case 'action': {
        const app = this.state.apps.find((entry) => entry.name === effect.app);
        if (app === undefined) return notify(this.state, `${effect.app} is gone`, 'muted', Date.now());
        const plan = planAction(effect.action, app, effect.signal);
        if (plan.kind === 'refused') return notify(this.state, plan.message, 'warn', Date.now());
        notify(this.state, plan.doing, 'info', Date.now(), true);
        // Not awaited: a stop can take the app's whole kill timeout, and the dashboard keeps updating.
        plan
          .run((body) => this.feed.request(body))
          .then(
            (message) => notify(this.state, message, 'ok', Date.now()),
            (error: unknown) => notify(this.state, `${effect.action} ${effect.app} failed: ${error instanceof Error ? error.message : String(error)}`, 'bad', Date.now()),
          )
          .finally(() => {
            this.feed.refreshNow();
            this.draw();
          });
        return;
      }
    }
  }

  private selectionChanged(): void {
    this.logs.follow(null);
    this.state.logs = [];
    this.feed.select(selectedApp(this.state)?.name ?? null);
  }

  private pollLogs(): void {
    this.logs.poll();
    this.state.logs = this.logs.lines;
  }

  /** Draws once per turn of the event loop however many updates arrived in it. */
  private draw(): void {
    if (this.drawQueued || this.closed) return;
    this.drawQueued = true;
    setImmediate(() => {
      this.drawQueued = false;
      if (this.closed) return;
      const { cols, rows } = this.renderer.size();
      const t0 = performance.now();
      const frame = buildFrame({ state: this.state, cols, rows, glyphs: this.glyphs, now: Date.now() });
      const t1 = performance.now();
      this.renderer.draw(frame);
      this.logCost('frame', t1 - t0, performance.now() - t1);
    });
  }

  private logCost(kind: FrameLogEntry['kind'], buildMs: number, drawMs: number): void {
    if (FRAME_LOG === null) return;
    const entry: FrameLogEntry = { kind, buildMs, drawMs, apps: this.state.apps.length, selected: this.state.selected, treeRows: this.state.treeRows.length };
    try {
      appendFileSync(FRAME_LOG, `${JSON.stringify(entry)}\n`);
    } catch {
      // A diagnostic: a log that cannot be written never takes the dashboard down.
    }
  }

  private quit(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tick !== null) clearInterval(this.tick);
    this.feed.stop();
    this.renderer.destroy();
    this.finish();
  }
}
