/**
 * Writing values into systemd unit files and environment files so that systemd reads back exactly the
 * value agentpm would have used. Each setting has its own rules (systemd.service(5), systemd.exec(5)):
 *
 * - ExecStart= expands specifiers (`%n`) over the whole line, splits words with C-style escapes and
 *   quotes, and expands `$VAR`/`${VAR}` when the command runs: a literal `%` is `%%`, a literal `$` is `$$`,
 *   and every word is double-quoted so that a space, a quote or a lone `;` (a command separator) stays
 *   inside its argument.
 * - Environment= expands specifiers and unquotes/unescapes, but never expands variables.
 * - EnvironmentFile= lines are read by systemd's env-file parser: no specifiers, no variables; inside
 *   double quotes a backslash escapes `"`, `\`, `` ` `` and `$`, and a newline is kept as is.
 * - Path settings (WorkingDirectory=, EnvironmentFile=) take the rest of the line after specifiers: no
 *   quoting exists, so a path systemd cannot represent (not absolute, a control character, blanks at
 *   either end, a trailing backslash that would continue the line) is refused rather than silently changed.
 */
import { AgentpmError } from '../errors.js';

/** C escapes for what a unit line cannot hold raw; other characters (UTF-8 included) pass as they are. */
function cEscape(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '\\') out += '\\\\';
    else if (char === '"') out += '\\"';
    else if (char === '\n') out += '\\n';
    else if (char === '\t') out += '\\t';
    else if (char === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += char;
  }
  return out;
}

const specifiers = (text: string): string => text.replaceAll('%', '%%');

/** One word of ExecStart=: quoted, escaped, `%` and `$` doubled. */
export function execWord(word: string): string {
  return `"${specifiers(cEscape(word)).replaceAll('$', '$$$$')}"`;
}

/** The whole ExecStart= value for an argv. */
export function execLine(file: string, args: readonly string[]): string {
  return [file, ...args].map(execWord).join(' ');
}

/** One assignment of Environment=: `"NAME=value"`, quoted and escaped, `%` doubled. */
export function environmentAssignment(name: string, value: string): string {
  return `"${specifiers(cEscape(`${name}=${value}`))}"`;
}

/** One line of an EnvironmentFile: `NAME="value"` with the shell escapes systemd's parser undoes. */
export function environmentFileLine(name: string, value: string): string {
  return `${name}="${value.replace(/["\\`$]/g, (char) => `\\${char}`)}"`;
}

/** A path for a setting that takes the rest of the line. */
export function unitPath(path: string, what: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path) || path !== path.trim() || path.endsWith('\\')) {
    throw new AgentpmError('invalid-config', `${what} ${JSON.stringify(path)} cannot be written in a systemd unit (a control character, a trailing backslash or blanks at either end); rename it`);
  }
  if (!path.startsWith('/')) throw new AgentpmError('invalid-config', `${what} ${JSON.stringify(path)} must be an absolute path in a systemd unit`);
  return specifiers(path);
}

/** Free text for Description= (specifiers expanded, one line). */
export function unitText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return specifiers(text.replace(/[\u0000-\u001f\u007f]+/g, ' ')).trim();
}

/** A comment block: every line starts with `# `, so no text can end the comment early. */
export function unitComment(text: string): string[] {
  return text.split('\n').map((line) => `# ${line}`.trimEnd());
}

/**
 * Variable names both systemd and a POSIX shell accept. systemd ignores an assignment with a name it finds
 * invalid (with a warning in the journal only), and the app would silently run without it.
 */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
