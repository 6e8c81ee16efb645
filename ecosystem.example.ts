/**
 * The bundled example: `npx agentpm start ecosystem.example.ts`, then `npx agentpm ls`, `npx agentpm monit`.
 * Two real process trees, no network or API key needed. Every field is optional but `script`;
 * the defaults are in the README.
 */
import { defineConfig } from 'agentpm';

export default defineConfig({
  apps: [
    {
      // A stand-in for an agent CLI: holds memory and starts 3 MCP-server-like children (one of them
      // in its own session, as real ones sometimes do). agentpm owns the whole tree.
      name: 'agent',
      script: 'examples/agent.ts', // .ts runs in node with tsx's loader: no wrapper process
      env: { MCP_SERVERS: 3, HOLD_MB: 40, EXAMPLE_API_KEY: 'not-a-real-key' }, // *KEY* values are masked in every output
      env_production: { HOLD_MB: 80 }, // `agentpm start ecosystem.example.ts --env production`
      killTimeout: '5s', // SIGTERM to every process of the tree, SIGKILL 5 s later: time for a run to drain
      stopSignal: 'SIGTERM',
      maxMemory: '1G', // the whole tree, every MCP server included (PM2 watches the main pid only)
      maxChildren: 20, // a fork storm beyond this is frozen and killed
      onLimit: 'restart', // or 'kill-offender': end the largest/newest descendant and keep the agent
      hangTimeout: '2m', // no output for 2 minutes means hung: restart (it logs every 5 s)
      priority: 10, // under memory pressure (see `guard`), lower priorities are restarted first
      oomScoreAdj: 100, // and the kernel's OOM killer prefers it a little over other processes
      // health: { http: 'http://127.0.0.1:7071/health', interval: '10s', retries: 3 },
      // notify: { command: 'curl -fsS -X POST -H "Content-Type: application/json" -d @- "$SLACK_WEBHOOK_URL"' },
    },
    {
      // A worker that crashes now and then: restarts with backoff, each exit recorded with a reason.
      name: 'flaky',
      script: 'examples/flaky.ts',
      env: { CRASH_AFTER_MS: 15000 },
      restartDelay: '1s', // doubles for each crash that comes sooner than minUptime...
      maxRestartDelay: '30s', // ...up to this
      minUptime: '30s', // a run this long was stable: the backoff starts over
      maxRestarts: 10, // 10 restarts within restartWindow: give up (errored) until restarted by hand
      restartWindow: '10m',
      // watch: ['examples'], // restart when a file changes (node_modules, .git and logs are always ignored)
    },
  ],
  // The daemon ends orphans of ended instances by itself; it can also sweep leaked processes it never
  // started, by pattern (opt-in):
  // reap: { interval: '30s', unmanaged: [{ match: 'mcp-server', olderThan: '10m' }] },
  // guard: { minAvailable: '10%' }, // act before earlyoom and the kernel's OOM killer do
});
