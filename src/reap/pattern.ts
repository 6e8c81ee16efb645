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
  /**
   * One answer per text, in one budget for the whole batch: entering the context costs about 50 µs, too
   * much per line when `logs --grep` reads a large log. A batch of ordinary lines takes far less than
   * the budget; a pattern that overruns it is refused as in test().
   */
  testMany(texts: readonly string[]): boolean[];
}

/** What a refusal says: what the pattern ran on, and what was (not) done because of it. */
export interface PatternUse {
  /** What test() ran on ('one command line'), and testMany() ('command lines', after a count). */
  one: string;
  many: string;
  consequence: string;
  advice: string;
}

const COMMAND_LINES: PatternUse = { one: 'one command line', many: 'command lines', consequence: 'nothing was ended', advice: 'a literal part of the command' };

const testScript = new Script('pattern.test(text)');
const testManyScript = new Script('texts.map((one) => pattern.test(one))');
let context: (Context & { pattern?: RegExp; text?: string; texts?: readonly string[] }) | undefined;

export function commandPattern(source: string, use: PatternUse = COMMAND_LINES): CommandPattern {
  const pattern = new RegExp(source);
  const run = <T>(script: Script, inputs: { text?: string; texts?: readonly string[] }, subject: string): T => {
    context ??= createContext({});
    context.pattern = pattern;
    Object.assign(context, inputs);
    try {
      return script.runInContext(context, { timeout: MATCH_BUDGET_MS }) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw error;
      throw new AgentpmError(
        'invalid-argument',
        `the pattern ${JSON.stringify(source)} took more than ${MATCH_BUDGET_MS} ms on ${subject} (nested repetition such as (a+)+ ` +
          `can take exponential time); ${use.consequence}. Use a simpler pattern, e.g. ${use.advice}.`,
      );
    } finally {
      context.text = undefined;
      context.texts = undefined;
    }
  };
  return {
    source,
    test: (text) => run<unknown>(testScript, { text }, use.one) === true,
    testMany: (texts) => (texts.length === 0 ? [] : Array.from(run<ArrayLike<unknown>>(testManyScript, { texts }, `${texts.length} ${use.many}`), (hit) => hit === true)),
  };
}
