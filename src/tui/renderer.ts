/**
 * What the dashboard hands to a terminal library, and what it gets back. Everything above this line
 * (layout, formatting, state, keys) is plain TypeScript; only an implementation of `Renderer`
 * (screen.ts, on blessed) touches the terminal, so a maintained fork or another library can replace it
 * by implementing these few members.
 */

/** Meanings, not colours: the renderer maps them to colours, or to nothing under NO_COLOR. */
export type Style = 'ok' | 'warn' | 'bad' | 'info' | 'muted' | 'strong' | 'selected' | 'err';

export interface Segment {
  text: string;
  style?: Style;
}

/** One row of a pane, already fitted to the pane's width by the view model. */
export type Line = Segment[];

export interface Rect {
  top: number;
  left: number;
  width: number;
  height: number;
}

export type PaneId = 'header' | 'table' | 'tree' | 'memory' | 'events' | 'logs' | 'footer' | 'help';

export interface PaneView {
  id: PaneId;
  rect: Rect;
  /**
   * With a title the pane's first row is a rule carrying the title (or, for an overlay, a whole
   * frame), and `lines` fill the rows below it; without one `lines` start on the first row.
   */
  title: string | null;
  lines: Line[];
  /** Drawn above the others, with a frame on every side. */
  overlay?: boolean;
}

export interface Frame {
  panes: PaneView[];
}

export interface KeyPress {
  /** 'up', 'down', 'enter', 'escape', 'backspace', 'pageup', 'pagedown', 'home', 'end', or the character typed. */
  name: string;
  ctrl: boolean;
}

export interface Capabilities {
  color: boolean;
  unicode: boolean;
}

export interface Renderer {
  readonly capabilities: Capabilities;
  size(): { cols: number; rows: number };
  draw(frame: Frame): void;
  onKey(handler: (key: KeyPress) => void): void;
  onResize(handler: () => void): void;
  /** Leaves the terminal as it was found: normal screen, cursor shown, input mode restored. */
  destroy(): void;
}
