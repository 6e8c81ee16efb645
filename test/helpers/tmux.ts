/**
 * A real terminal for TUI tests: a tmux server on a socket of its own (never the user's), one
 * detached session of a fixed size running a plain bash, keys sent with send-keys, the screen read
 * with capture-pane. kill() ends the server, waits until its process is gone and removes its socket.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAlivePid } from './procs.js';
import { waitFor } from './rig.js';

const SESSION = 'monit';

export interface TmuxOptions {
  cols: number;
  rows: number;
  /** The environment of the shell in the session (and of the tmux server). */
  env: Record<string, string>;
}

export class Tmux {
  private serverPid: number | null = null;
  private socketPath: string | null = null;

  private constructor(
    readonly socket: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async start(options: TmuxOptions): Promise<Tmux> {
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...options.env };
    const tmux = new Tmux(`agentpm-test-${randomBytes(6).toString('hex')}`, env);
    const sessionEnv = Object.entries(options.env).flatMap(([key, value]) => ['-e', `${key}=${value}`]);
    // -f /dev/null: none of the user's tmux configuration; a bare bash with a fixed prompt.
    await tmux.run(['-f', '/dev/null', 'new-session', '-d', '-s', SESSION, '-x', String(options.cols), '-y', String(options.rows), ...sessionEnv, 'bash --norc --noprofile']);
    tmux.serverPid = Number(await tmux.display('#{pid}'));
    tmux.socketPath = await tmux.display('#{socket_path}');
    return tmux;
  }

  /** Types text literally into the pane (no Enter). */
  async type(text: string): Promise<void> {
    await this.run(['send-keys', '-t', SESSION, '-l', text]);
  }

  /** Sends keys by tmux name: 'Enter', 'Escape', 'C-c', 'PPage', 'End', or characters. */
  async keys(...keys: string[]): Promise<void> {
    await this.run(['send-keys', '-t', SESSION, ...keys]);
  }

  /** The visible screen as text; with `escapes`, with the SGR sequences of its attributes and colours. */
  async capture(escapes = false): Promise<string> {
    return this.run(['capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', SESSION]);
  }

  /** A tmux format of the pane, e.g. '#{alternate_on}'. */
  async display(format: string): Promise<string> {
    return (await this.run(['display-message', '-p', '-t', SESSION, format])).trim();
  }

  /** Polls the screen until `probe` returns something; fails with the last screen. */
  async waitForScreen<T>(probe: (screen: string) => T | undefined | null | false, what: string, timeoutMs = 15_000): Promise<T> {
    let last = '';
    try {
      return await waitFor(
        async () => {
          last = await this.capture();
          return probe(last);
        },
        what,
        timeoutMs,
        50,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- screen ---\n${last}\n--------------`);
    }
  }

  async kill(): Promise<void> {
    await this.run(['kill-server']).catch(() => undefined);
    const pid = this.serverPid;
    if (pid !== null) await waitFor(() => !isAlivePid(pid), `tmux server ${pid} to exit`, 5000);
    // A killed server leaves its socket file behind.
    if (this.socketPath) rmSync(this.socketPath, { force: true });
  }

  private run(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('tmux', ['-L', this.socket, ...args], { env: this.env, timeout: 10_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`tmux ${args.join(' ')}: ${error.message} ${stderr}`));
        else resolve(stdout);
      });
    });
  }
}

/** tmux's own terminal type when this machine has its terminfo (blessed reads it), else 'screen'. */
export function tmuxTerm(): string {
  const dirs = ['/etc/terminfo', '/lib/terminfo', '/usr/share/terminfo'];
  return dirs.some((dir) => existsSync(join(dir, 't', 'tmux-256color'))) ? 'tmux-256color' : 'screen';
}
