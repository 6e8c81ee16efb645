/**
 * A user's `--match` pattern, run with a time limit. The daemon runs it over every command line of the
 * machine, and a pattern with nested repetition (`(a+)+$`) can backtrack for minutes on one of them:
 * that would stall supervision of every app. Matching runs in a V8 context whose execution is cut off
 * after the budget (V8 checks for interrupts while a regular expression backtracks), and a pattern that
 * overruns it is refused with the reason.
 */
import { createContext, Script, type Context } from 'node:vm';
import { AgentpmError } from '../errors.js';

/** Far more than any sane pattern needs for one command line (microseconds). */
const MATCH_BUDGET_MS = 200;

export interface CommandPattern {
  readonly source: string;
  test(text: string): boolean;
}

const testScript = new Script('pattern.test(text)');
let context: (Context & { pattern?: RegExp; text?: string }) | undefined;

export function commandPattern(source: string): CommandPattern {
  const pattern = new RegExp(source);
  return {
    source,
    test(text: string): boolean {
      context ??= createContext({});
      context.pattern = pattern;
      context.text = text;
      try {
        return testScript.runInContext(context, { timeout: MATCH_BUDGET_MS }) === true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw error;
        throw new AgentpmError(
          'invalid-argument',
          `the pattern ${JSON.stringify(source)} took more than ${MATCH_BUDGET_MS} ms on one command line (nested repetition such as (a+)+ ` +
            `can take exponential time); nothing was ended. Use a simpler pattern, e.g. a literal part of the command.`,
        );
      } finally {
        context.text = undefined;
      }
    },
  };
}
