/**
 * Runs a config file in a child process, with a time limit. Loading a config runs it, and a config is
 * a program: a top-level await that never settles made `start` exit 0 printing nothing, or hang
 * forever; a timer left running kept the CLI alive after its work; `process.exit()` in a config ended
 * the CLI; `console.log` in a config corrupted `start --json`. In a child, the CLI always gets a result
 * or an error naming the file, and the child's output goes to stderr.
 */
import { fork } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentpmError, type ErrorPayload } from '../errors.js';
import type { LoadedConfig, LoadOptions } from './load.js';
import { formatSetting, parseDuration } from './units.js';

export type LoaderRequest = { kind: 'load'; file: string; options: LoadOptions } | { kind: 'convert'; file: string };
export type LoaderReply = { running: true } | { ok: true; value: unknown } | { ok: false; error: ErrorPayload };
type LoaderResult = Exclude<LoaderReply, { running: true }>;

/** How long a config file may run while it is loaded; AGENTPM_CONFIG_TIMEOUT changes it. */
export const DEFAULT_CONFIG_TIMEOUT_MS = 30_000;
/** The type check before it (a TypeScript compiler on a cold cache, on a busy machine) has its own, wider bound. */
const TYPECHECK_TIMEOUT_MS = 120_000;

const SELF = fileURLToPath(import.meta.url);
/** Running from the sources (under tsx), the child needs tsx too. */
const FROM_SOURCES = extname(SELF) === '.ts';
const LOADER = fileURLToPath(new URL(`./loader-process${FROM_SOURCES ? '.ts' : '.js'}`, import.meta.url));

export function configTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env['AGENTPM_CONFIG_TIMEOUT'];
  if (text === undefined || text.trim() === '') return DEFAULT_CONFIG_TIMEOUT_MS;
  const parsed = parseDuration(text);
  if (!parsed.ok || parsed.value < 100) {
    throw new AgentpmError('invalid-argument', `AGENTPM_CONFIG_TIMEOUT: expected a duration of at least 100ms such as '30s' or '2m', got '${text}'`);
  }
  return parsed.value;
}

export function loadConfigIsolated(file: string, options: LoadOptions): Promise<LoadedConfig> {
  return runLoader({ kind: 'load', file, options }) as Promise<LoadedConfig>;
}

export function convertPm2Isolated(file: string): Promise<{ source: string; warnings: string[] }> {
  return runLoader({ kind: 'convert', file }) as Promise<{ source: string; warnings: string[] }>;
}

function runLoader(request: LoaderRequest): Promise<unknown> {
  const timeoutMs = configTimeoutMs();
  return new Promise((resolve, reject) => {
    // The config's stdout goes to our stderr: it must not mix with what this command prints.
    const child = fork(LOADER, [JSON.stringify(request)], { stdio: ['ignore', 2, 2, 'ipc'], execArgv: FROM_SOURCES ? ['--import', 'tsx'] : [] });
    let reply: LoaderResult | null = null;
    let timedOut: 'typecheck' | 'run' | null = null;
    let phase: 'typecheck' | 'run' = 'typecheck';
    const arm = (ms: number): NodeJS.Timeout =>
      setTimeout(() => {
        timedOut = phase;
        child.kill('SIGKILL'); // our own child, by its handle
      }, ms);
    let timer = arm(TYPECHECK_TIMEOUT_MS);
    child.on('message', (message: LoaderReply) => {
      if ('running' in message) {
        phase = 'run';
        clearTimeout(timer);
        timer = arm(timeoutMs);
        return;
      }
      reply ??= message;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new AgentpmError('internal', `cannot start a process to load ${request.file}: ${error.message}`));
    });
    // `close`, not `exit`: by then every message the child sent has arrived.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (reply?.ok) return resolve(reply.value);
      if (reply) return reject(new AgentpmError(reply.error.code, reply.error.message));
      if (timedOut === 'typecheck') {
        return reject(new AgentpmError('invalid-config', `type-checking ${request.file} took more than ${formatSetting(TYPECHECK_TIMEOUT_MS)}; nothing was started. Run \`npx tsc --noEmit\` on it to see why.`));
      }
      if (timedOut === 'run') {
        return reject(
          new AgentpmError(
            'invalid-config',
            `${request.file} did not finish loading within ${formatSetting(timeoutMs)}; nothing was started. Loading runs the file: ` +
              'look for a top-level await that waits on something that never comes (a server, a prompt, a network call). ' +
              'If it is only slow, raise the limit with AGENTPM_CONFIG_TIMEOUT=2m.',
          ),
        );
      }
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      reject(
        new AgentpmError(
          'invalid-config',
          `${request.file} ${how} before it exported its apps; nothing was started. A config must not call process.exit(); check the file for it, or for what crashes it.`,
        ),
      );
    });
  });
}
