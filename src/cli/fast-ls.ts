/**
 * `agentpm ls [--json]` without commander: scripts and monitors call it in loops, and it is the
 * command the goal "about as fast as `node -e 0`" is measured on. bin/agentpm routes exactly these
 * argument lists here; everything else (including `ls --help`) goes through the full CLI in main.ts.
 * The build bundles this module and its imports into dist/fast-ls.cjs (scripts/bundle-ls.mjs): keep its
 * imports few, and anything that locates a file of the package in package-files.ts.
 */
import { AgentpmError } from '../errors.js';
import { homePaths, resolveHome } from '../home.js';
import { DaemonClient } from './client.js';
import { exitQuietlyOnEpipe } from './epipe.js';

exitQuietlyOnEpipe();

export async function runLs(json: boolean): Promise<void> {
  const client = await DaemonClient.connect(homePaths(resolveHome()), { autostart: true });
  try {
    const list = await client.request({ type: 'ls' });
    if (json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    else process.stdout.write(`${(await import('./render.js')).renderList(list)}\n`);
  } finally {
    client.close();
  }
}

runLs(process.argv.includes('--json')).catch((error: unknown) => {
  process.stderr.write(`agentpm: ${error instanceof AgentpmError ? error.message : String((error as Error)?.stack ?? error)}\n`);
  process.exitCode = error instanceof AgentpmError ? 1 : 70;
});
