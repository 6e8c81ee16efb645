/**
 * Where each pane goes for a terminal size. Sized for 80×24 first (everything visible, the tree and
 * the events side by side), growing from there; below MIN_COLS×MIN_ROWS only a message is shown.
 */
import type { Rect } from './renderer.js';

export const MIN_COLS = 50;
export const MIN_ROWS = 14;

export interface Layout {
  header: Rect;
  table: Rect;
  tree: Rect;
  memory: Rect;
  events: Rect;
  logs: Rect;
  footer: Rect;
}

/** Rows a titled pane spends on its title rule. */
export const TITLE_ROWS = 1;

export function computeLayout(cols: number, rows: number, appCount: number): Layout | null {
  if (cols < MIN_COLS || rows < MIN_ROWS) return null;
  const body = rows - 2; // header and footer
  // The table takes what its apps need, up to about a third of the screen; beyond that it scrolls.
  const maxAppRows = Math.max(1, Math.floor(body * 0.3) - 2);
  const appRows = Math.min(maxAppRows, Math.max(1, appCount));
  const tableHeight = TITLE_ROWS + 1 + appRows;
  const rest = body - tableHeight;
  const logsHeight = Math.max(3, Math.round(rest * 0.3));
  const middle = rest - logsHeight;
  const treeWidth = Math.floor(cols * 0.56);
  const memoryHeight = 3;
  const top = 1 + tableHeight;
  return {
    header: { top: 0, left: 0, width: cols, height: 1 },
    table: { top: 1, left: 0, width: cols, height: tableHeight },
    tree: { top, left: 0, width: treeWidth, height: middle },
    memory: { top, left: treeWidth, width: cols - treeWidth, height: memoryHeight },
    events: { top: top + memoryHeight, left: treeWidth, width: cols - treeWidth, height: middle - memoryHeight },
    logs: { top: top + middle, left: 0, width: cols, height: logsHeight },
    footer: { top: rows - 1, left: 0, width: cols, height: 1 },
  };
}

/** The help overlay: centred, as large as its text, never larger than the screen. */
export function overlayRect(cols: number, rows: number, contentRows: number, contentWidth: number): Rect {
  const width = Math.min(cols - 2, contentWidth + 4);
  const height = Math.min(rows - 2, contentRows + 2);
  return { top: Math.max(0, Math.floor((rows - height) / 2)), left: Math.max(0, Math.floor((cols - width) / 2)), width, height };
}
