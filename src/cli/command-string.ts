/**
 * `agentpm start "npm run dev"`: a command typed as one string, the PM2 habit. It is split into a program
 * and its arguments once, here, exactly as a shell would split it, and then started like
 * `agentpm start npm -- run dev`: the same definition, shown as it runs.
 *
 * PM2 hands such a string to `bash -c`. agentpm does not: the stop signal then reaches the program
 * itself rather than a shell in front of it, and what `show` lists is what runs. What only a shell could
 * do (a pipeline, `&&`, a redirection, `$VAR`, a glob, `~`, `NAME=value cmd`) is refused with the exact
 * command that runs it through a shell on purpose, so nothing runs differently from what was typed.
 */
import { basename, extname } from 'node:path';
import { AgentpmError } from '../errors.js';
import { shellQuote, splitCommandLine, type ShellConstruct } from '../config/command-line.js';

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

export interface CommandWords {
  script: string;
  args: string[];
}

/** Whether `start X` was given a command string (a program and its arguments in one word). */
export function isCommandString(target: string): boolean {
  return /\s/.test(target);
}

/** The program and arguments of a command string; `extraArgs` (after `--`) follow its own. */
export function commandOfString(target: string, extraArgs: readonly string[], isConfigFile: (path: string) => boolean): CommandWords {
  const { words, shellSyntax, unterminated } = splitCommandLine(target);
  if (unterminated !== null) {
    throw new AgentpmError('invalid-argument', `the command "${target}" has an unterminated ${unterminated} quote; close it and try again`);
  }
  const [script, ...args] = words;
  if (script === undefined || script === '') throw new AgentpmError('invalid-argument', `the command "${target}" names no program; e.g. agentpm start "npm run dev"`);
  if (shellSyntax.length > 0) throw shellSyntaxRefusal(target, shellSyntax);
  if (isConfigFile(script)) {
    throw new AgentpmError('invalid-argument', `${script} is a config file; give its options as options, not inside the quotes: agentpm start ${shellQuote(script)} ${args.map(shellQuote).join(' ')}`.trimEnd());
  }
  return { script, args: [...args, ...extraArgs] };
}

function shellSyntaxRefusal(target: string, found: readonly ShellConstruct[]): AgentpmError {
  const listed = [...new Set(found.map((construct) => construct.text))].slice(0, 4).map((text) => `\`${text}\``).join(', ');
  const assignments = found.filter((construct) => construct.kind === 'assignment').map((construct) => construct.text);
  const kinds = new Set(found.map((construct) => construct.kind));
  const hints: string[] = [];
  if (assignments.length > 0 && kinds.size === 1) {
    const rest = splitCommandLine(target).words.slice(assignments.length).map(shellQuote).join(' ');
    hints.push(`To set a variable for the app, use --env: agentpm start ${shellQuote(rest)} ${assignments.map((pair) => `--env ${shellQuote(pair)}`).join(' ')}`);
  }
  if (kinds.has('glob') && kinds.size === 1) hints.push('To pass these characters as they are, quote them inside the string');
  // The name the app would have had: bash's would be `bash`.
  const program = splitCommandLine(target).words.find((word) => !ASSIGNMENT.test(word)) ?? '';
  const name = basename(program, extname(program)).replace(/[^A-Za-z0-9._-]/g, '').replace(/^[._-]+/, '') || 'app';
  hints.push(`${hints.length > 0 ? 'or to' : 'To'} run it through a shell: agentpm start bash --name ${name} -- -c ${shellQuote(target)}`);
  return new AgentpmError(
    'invalid-argument',
    `the command "${target}" uses shell syntax (${listed}), and agentpm runs a command without a shell; nothing was started. ${hints.join('; ')}`,
  );
}
