/**
 * The Renderer on blessed (0.1.81), and the only module that imports it. blessed is unmaintained; a
 * fork with the same API (neo-blessed, reblessed) can be swapped in by changing the import. Workarounds
 * for its quirks are marked "blessed workaround" below (and one in format.ts: sanitize).
 */
import blessed from 'blessed';
import type { Widgets } from 'blessed';
import { textWidth } from './format.js';
import type { Capabilities, Frame, KeyPress, Line, PaneId, PaneView, Renderer, Style } from './renderer.js';

const NAMED_KEYS = new Set(['up', 'down', 'left', 'right', 'enter', 'escape', 'backspace', 'pageup', 'pagedown', 'home', 'end', 'delete']);

const COLOR_TAGS: Record<Style, [string, string]> = {
  ok: ['{green-fg}', '{/green-fg}'],
  warn: ['{yellow-fg}', '{/yellow-fg}'],
  bad: ['{red-fg}{bold}', '{/bold}{/red-fg}'],
  info: ['{cyan-fg}', '{/cyan-fg}'],
  muted: ['{gray-fg}', '{/gray-fg}'],
  strong: ['{bold}', '{/bold}'],
  selected: ['{inverse}', '{/inverse}'],
  err: ['{red-fg}', '{/red-fg}'],
};

/** Under NO_COLOR: no colour at all; bold and inverse are attributes, and the selection needs one. */
const PLAIN_TAGS: Partial<Record<Style, [string, string]>> = {
  strong: ['{bold}', '{/bold}'],
  selected: ['{inverse}', '{/inverse}'],
};

/** What blessed's Tput knows but @types/blessed does not declare. */
interface TputFeatures {
  unicode: boolean;
  brokenACS: boolean;
}

export function createBlessedRenderer(options: { color: boolean }): Renderer {
  return new BlessedRenderer(options.color);
}

class BlessedRenderer implements Renderer {
  readonly capabilities: Capabilities;
  private readonly screen: Widgets.Screen;
  private readonly boxes = new Map<PaneId, Widgets.BoxElement>();
  private readonly shown = new Map<PaneId, string>();
  private readonly tags: Partial<Record<Style, [string, string]>>;

  constructor(color: boolean) {
    this.screen = blessed.screen({ smartCSR: true, fullUnicode: true, autoPadding: false, warnings: false });
    const tput = this.screen.tput as unknown as TputFeatures;
    // blessed workaround: where terminfo declares an alternate character set, blessed draws line and
    // block characters through it (smacs). tmux-256color's smacs is SO (^N), which only works after G1
    // was designated as the DEC graphics set, and blessed never does that: every '─' came out as 'q'.
    // Marking the ACS broken makes blessed write the UTF-8 characters themselves (or, without a UTF-8
    // locale, its ASCII approximations), which every terminal we care about shows correctly.
    tput.brokenACS = true;
    this.capabilities = { color, unicode: tput.unicode };
    this.tags = color ? COLOR_TAGS : PLAIN_TAGS;
    this.screen.program.hideCursor();
  }

  size(): { cols: number; rows: number } {
    return { cols: this.screen.program.cols, rows: this.screen.program.rows };
  }

  draw(frame: Frame): void {
    const present = new Set<PaneId>();
    for (const pane of frame.panes) {
      present.add(pane.id);
      const box = this.box(pane);
      const { top, left, width, height } = pane.rect;
      if (box.top !== top || box.left !== left || box.width !== width || box.height !== height) {
        box.top = top;
        box.left = left;
        box.width = width;
        box.height = height;
      }
      const content = this.content(pane);
      // Re-parsing tags costs more than comparing strings: only changed panes get new content.
      if (this.shown.get(pane.id) !== content) {
        box.setContent(content);
        this.shown.set(pane.id, content);
      }
      if (box.hidden) box.show();
      if (pane.overlay) box.setFront();
    }
    for (const [id, box] of this.boxes) if (!present.has(id) && !box.hidden) box.hide();
    this.screen.render();
  }

  onKey(handler: (key: KeyPress) => void): void {
    this.screen.on('keypress', (ch: string | undefined, key: Widgets.Events.IKeyEventArg | undefined) => {
      const translated = translateKey(ch, key);
      if (translated !== null) handler(translated);
    });
  }

  onResize(handler: () => void): void {
    this.screen.on('resize', handler);
  }

  destroy(): void {
    // Leaves the alternate screen, shows the cursor and restores the terminal's input mode.
    this.screen.destroy();
  }

  private box(pane: PaneView): Widgets.BoxElement {
    const existing = this.boxes.get(pane.id);
    if (existing) return existing;
    const options: Widgets.BoxOptions = { parent: this.screen, tags: true, wrap: false, ...pane.rect };
    if (pane.overlay) {
      options.border = { type: 'line' };
      if (pane.title !== null) options.label = ` ${pane.title} `;
      if (this.capabilities.color) options.style = { border: { fg: 'cyan' } };
    }
    const box = blessed.box(options);
    this.boxes.set(pane.id, box);
    return box;
  }

  private content(pane: PaneView): string {
    const lines = pane.lines.map((line) => this.line(line));
    // An overlay's title is on blessed's frame; a pane's title is a rule across its first row.
    if (pane.title !== null && !pane.overlay) lines.unshift(this.rule(pane.title, pane.rect.width));
    return lines.join('\n');
  }

  private rule(title: string, width: number): string {
    const dash = this.capabilities.unicode ? '─' : '-';
    const rest = Math.max(0, width - textWidth(title) - 4);
    return this.line([
      { text: dash.repeat(2) + ' ', style: 'muted' },
      { text: title, style: 'strong' },
      { text: ' ' + dash.repeat(rest), style: 'muted' },
    ]);
  }

  private line(line: Line): string {
    return line
      .map((part) => {
        const text = blessed.escape(part.text);
        const tags = part.style === undefined ? undefined : this.tags[part.style];
        return tags === undefined ? text : `${tags[0]}${text}${tags[1]}`;
      })
      .join('');
  }
}

function translateKey(ch: string | undefined, key: Widgets.Events.IKeyEventArg | undefined): KeyPress | null {
  const name = key?.name;
  // blessed workaround: one Enter arrives twice, as 'return' and again as 'enter'; act on 'enter' only.
  if (name === 'return') return null;
  if (key?.ctrl) return name ? { name, ctrl: true } : null;
  if (name !== undefined && NAMED_KEYS.has(name)) return { name, ctrl: false };
  if (ch !== undefined && ch.length === 1 && ch >= ' ' && ch !== '\x7f') return { name: ch, ctrl: false };
  return null;
}
