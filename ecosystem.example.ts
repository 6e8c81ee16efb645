/**
 * The bundled example: `npx agentpm start ecosystem.example.ts`.
 * Two real processes trees, no network or API key needed.
 */
import { defineConfig } from 'agentpm';

export default defineConfig({
  apps: [
    {
      name: 'agent',
      script: 'examples/agent.ts',
      env: { MCP_SERVERS: 3, HOLD_MB: 40, EXAMPLE_API_KEY: 'not-a-real-key' },
      killTimeout: '5s', // time for a run to drain before SIGKILL
      stopSignal: 'SIGTERM',
      maxMemory: '1G', // whole tree, all MCP servers included
      maxChildren: 20,
    },
    {
      name: 'flaky',
      script: 'examples/flaky.ts',
      env: { CRASH_AFTER_MS: 15000 },
      restartDelay: '1s', // doubles for each crash that comes sooner than minUptime
      maxRestartDelay: '30s',
      minUptime: '30s',
      maxRestarts: 10, // within restartWindow, then errored
      restartWindow: '10m',
    },
  ],
});
