/**
 * The process a config file runs in (see isolated.ts). A config is a program: it may await forever,
 * leave timers running, print, or call process.exit. Here it can do all of that without touching the
 * CLI: the result (or the error) goes back over IPC, then this process ends, whatever the config left.
 */
import { basename, dirname, join } from 'node:path';
import { toErrorPayload } from '../errors.js';
import { ensurePrivateHome, resolveHome } from '../home.js';
import type { LoaderRequest, LoaderReply } from './isolated.js';
import { convertPm2File, loadConfigFile, type LoadHooks } from './load.js';

/** The home's cache of type checks; none if the home cannot be made or is not safe (it is then reported when the CLI connects). */
function typecheckCachePath(): string | null {
  try {
    return join(ensurePrivateHome(resolveHome()).home, 'typecheck-cache.json');
  } catch {
    return null;
  }
}

async function run(request: LoaderRequest): Promise<unknown> {
  // The time limit is for running the file, not for type-checking it first.
  const hooks: LoadHooks = {
    running: (): void => void process.send?.({ running: true } satisfies LoaderReply),
    // To stderr, where the CLI's own progress goes: stdout may be `start --json`.
    typeChecking: (file) => void process.stderr.write(`agentpm: type-checking ${basename(file)}…\n`),
  };
  if (request.kind === 'convert') return convertPm2File(request.file, hooks);
  const cache = typecheckCachePath();
  if (cache !== null) {
    hooks.typecheckCache = cache;
    hooks.compiledConfigs = join(dirname(cache), 'compiled-configs');
  }
  if (process.env['AGENTPM_DEBUG_CONFIG']) hooks.debug = (message): void => void process.stderr.write(`agentpm: debug: ${basename(request.file)}: ${message}\n`);
  return loadConfigFile(request.file, request.options, hooks);
}

let replied = false;

function reply(message: LoaderReply): void {
  replied = true;
  process.send?.(message, () => process.exit(0));
}

const request = JSON.parse(process.argv[2] ?? '{}') as LoaderRequest;

// Nothing left to run and no answer: the config awaits a promise nothing can settle. (A config that
// calls process.exit() ends without this event, and the CLI tells the two apart.)
process.on('beforeExit', () => {
  if (replied) return;
  reply({
    ok: false,
    error: {
      code: 'invalid-config',
      message: `${request.file} never finished loading: it awaits a promise that nothing can settle (a top-level await on a promise that is never resolved, with nothing left running that could resolve it); nothing was started.`,
    },
  });
});

// The IPC channel alone must not keep this process alive: when nothing but a config's unsettled await
// is left, the process ends at once, and the CLI says so rather than waiting for its timeout.
process.channel?.unref();
run(request).then(
  (value) => reply({ ok: true, value }),
  (error: unknown) => reply({ ok: false, error: toErrorPayload(error) }),
);
