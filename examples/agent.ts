/**
 * A stand-in for an AI agent CLI: holds some memory of its own, starts a few MCP-server-like children
 * (one of which detaches into its own session, as real ones sometimes do), and logs a heartbeat.
 * No network, no API key.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const servers = Number(process.env['MCP_SERVERS'] ?? 3);
const holdMb = Number(process.env['HOLD_MB'] ?? 40);
const serverScript = fileURLToPath(new URL('./mcp-server.mjs', import.meta.url));

const held = Buffer.alloc(holdMb * 1024 * 1024, 1);
for (let index = 0; index < servers; index += 1) {
  spawn(process.execPath, [serverScript, `mcp-${index}`], { stdio: 'inherit', detached: index === 0 });
}

let turn = 0;
setInterval(() => {
  turn += 1;
  console.log(`agent turn ${turn}: thinking with ${servers} MCP servers, holding ${Math.round(held.length / 1024 / 1024)} MB`);
}, 5000);
process.on('SIGTERM', () => {
  console.log('agent draining, then exiting');
  setTimeout(() => process.exit(0), 200);
});
