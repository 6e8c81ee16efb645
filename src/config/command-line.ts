/**
 * A command line split into words as a POSIX shell splits a simple command, without running a shell:
 * whitespace separates words, single quotes keep everything, double quotes keep everything but `\`
 * before `$`, `` ` ``, `"`, `\` and a newline, and a backslash outside quotes keeps the next character.
 * What a shell would do beyond splitting (run a pipeline, redirect, expand `$VAR`, a glob or `~`, set a
 * variable for the command) is reported, not done: the caller decides whether that is an error.
 */

/** A construct a shell would act on, as written (`&&`, `$HOME`, `*`...), and what kind it is. */
export interface ShellConstruct {
  kind: 'operator' | 'expansion' | 'glob' | 'tilde' | 'comment' | 'assignment';
  text: string;
}

export interface SplitCommandLine {
  words: string[];
  /** Unquoted (or, for `$` and `` ` ``, double-quoted) constructs a shell would interpret, in order. */
  shellSyntax: ShellConstruct[];
  /** The quote left open at the end, if any: the line is incomplete. */
  unterminated: "'" | '"' | null;
}

const OPERATOR_CHARS = '|&;<>()';
const ESCAPABLE_IN_DOUBLE_QUOTES = '$`"\\\n';
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

export function splitCommandLine(input: string): SplitCommandLine {
  const words: string[] = [];
  const shellSyntax: ShellConstruct[] = [];
  let word = '';
  /** Whether a word is under way: `''` is a word (empty), whitespace is not. */
  let inWord = false;
  /** Whether the word so far was written without any quoting: only such a word is an assignment. */
  let plainSoFar = true;
  let quote: "'" | '"' | null = null;
  let commandSeen = false;
  const chars = [...input];
  const finishWord = (): void => {
    if (!inWord) return;
    // `NAME=value cmd`: a shell sets NAME for cmd; only words before the command are assignments.
    if (!commandSeen && plainSoFar && ASSIGNMENT.test(word)) shellSyntax.push({ kind: 'assignment', text: word });
    else commandSeen = true;
    words.push(word);
    word = '';
    inWord = false;
    plainSoFar = true;
  };
  for (let index = 0; index < chars.length; index += 1) {
    const char = chars[index] as string;
    const next = chars[index + 1];
    if (quote === "'") {
      if (char === "'") quote = null;
      else word += char;
      continue;
    }
    if (quote === '"') {
      if (char === '"') quote = null;
      else if (char === '\\' && next !== undefined && ESCAPABLE_IN_DOUBLE_QUOTES.includes(next)) {
        if (next !== '\n') word += next;
        index += 1;
      } else {
        if (char === '$' || char === '`') shellSyntax.push({ kind: 'expansion', text: expansionAt(chars, index) });
        word += char;
      }
      continue;
    }
    if (/\s/.test(char)) {
      finishWord();
      continue;
    }
    if (char === '\\') {
      plainSoFar = false;
      if (next === undefined) {
        word += char;
        inWord = true;
      } else if (next === '\n') {
        // A line continuation: nothing at all.
      } else {
        word += next;
        inWord = true;
      }
      index += 1;
      continue;
    }
    if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
      plainSoFar = false;
      continue;
    }
    if (OPERATOR_CHARS.includes(char)) {
      const doubled = next === char && (char === '|' || char === '&' || char === ';' || char === '<' || char === '>');
      shellSyntax.push({ kind: 'operator', text: doubled ? char + char : char });
      if (doubled) {
        word += char;
        index += 1;
      }
    } else if (char === '$' || char === '`') {
      shellSyntax.push({ kind: 'expansion', text: expansionAt(chars, index) });
    } else if (char === '*' || char === '?' || char === '[') {
      shellSyntax.push({ kind: 'glob', text: char });
    } else if (!inWord && char === '~') {
      shellSyntax.push({ kind: 'tilde', text: '~' });
    } else if (!inWord && char === '#') {
      shellSyntax.push({ kind: 'comment', text: '#' });
    }
    word += char;
    inWord = true;
  }
  finishWord();
  return { words, shellSyntax, unterminated: quote };
}

/** `$NAME`, `${...}`, `$(`, `` ` ``: enough of an expansion to recognise it in a message. */
function expansionAt(chars: readonly string[], index: number): string {
  if (chars[index] === '`') return '`';
  const rest = chars.slice(index + 1, index + 40).join('');
  const name = /^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]|\{[^}]*\}?|\(\(?)/.exec(rest);
  return `$${name?.[0] ?? ''}`;
}

/** `text` as one word for a POSIX shell: in single quotes, a single quote written as `'\''`. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
