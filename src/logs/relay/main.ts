/**
 * The log relay of one home: reads every app's FIFOs and writes (stamps, rotates) their log files.
 * Started detached by the daemon, in a session of its own and without an app's tags, so it belongs to
 * no app's tree or limits; it outlives the daemon, and the next daemon finds it on relay.sock. One per
 * home, by a lock like the daemon's. It exits by itself once no FIFO is attached and no daemon has
 * been connected for a few seconds (at once after `retire`, the daemon's `agentpm kill`).
 */
import { readFileSync } from 'node:fs';
import { AgentpmError } from '../../errors.js';
import { resolveHome } from '../../home.js';
import { acquireHomeLock } from '../../daemon/lock.js';
import { parseStat } from '../../proc/linux.js';
import type { RelayRequest, RelayResultMap } from '../../protocol.js';
import { VERSION } from '../../version.js';
import { ensureRunDir, relaySocketPath } from '../fifo.js';
import { ControlServer, type ControlConnection } from './control.js';
import { Relay } from './relay.js';

/** How long a relay with nothing to read and no daemon waits before it exits (AGENTPM_RELAY_IDLE_MS). */
const DEFAULT_IDLE_MS = 5000;
/** How often the relay checks that its socket file is still there, as the daemon does its own. */
const SOCKET_CHECK_MS = 2000;

/** To daemon.log (its stderr), best effort: on a full disk the write throws, and reading the pipes must go on. */
function log(message: string): void {
  try {
    process.stderr.write(`${new Date().toISOString()} relay ${process.pid}: ${message}\n`);
  } catch {
    // nowhere to say it
  }
}

async function main(): Promise<void> {
  // Files of its own are 0600 by their mode; whatever umask it inherited must not strip a directory's x.
  process.umask(0o077);
  const home = resolveHome();
  const lock = await acquireHomeLock(home, 'relay');
  ensureRunDir(home);
  const idleSetting = Number(process.env['AGENTPM_RELAY_IDLE_MS'] ?? DEFAULT_IDLE_MS);
  const idleMs = Number.isInteger(idleSetting) && idleSetting >= 100 && idleSetting <= 3_600_000 ? idleSetting : DEFAULT_IDLE_MS;
  let startTime: number | null = null;
  try {
    startTime = parseStat(readFileSync('/proc/self/stat', 'latin1'), 1)?.startTime ?? null;
  } catch {
    // not Linux
  }
  const daemons = new Set<ControlConnection>();
  let quietSince = Date.now();
  let retiring = false;
  let exiting = false;
  const relay = new Relay(home, {
    log,
    detached: () => {
      quietSince = Date.now();
      checkIdle();
    },
  });
  const exit = (why: string): void => {
    if (exiting) return;
    exiting = true;
    relay.stopAll();
    control.close();
    lock.release();
    log(`exiting: ${why}`);
    process.exit(0);
  };
  const checkIdle = (): void => {
    if (relay.fifoCount > 0) return;
    if (retiring) return exit('retired by the daemon, nothing left to read');
    if (daemons.size === 0 && Date.now() - quietSince >= idleMs) exit('no FIFO attached and no daemon connected');
  };
  const control = new ControlServer(relaySocketPath(home), {
    connected: () => undefined,
    disconnected: (connection) => {
      if (daemons.delete(connection)) quietSince = Date.now();
    },
    handle: (request: RelayRequest, connection): unknown => {
      switch (request.type) {
        case 'hello': {
          connection.daemon = true;
          daemons.add(connection);
          retiring = false;
          // A daemon that died between putting a FIFO in place and asking for it left it unread.
          const found = relay.attachAll();
          if (found > 0) log(`attached ${found} FIFO(s) found in the run directory`);
          return { version: VERSION, pid: process.pid, startTime } satisfies RelayResultMap['hello'];
        }
        case 'attach': {
          for (const path of request.fifos) relay.attach(path);
          return { attached: request.fifos.length } satisfies RelayResultMap['attach'];
        }
        case 'policy':
          relay.setPolicies(request.policies);
          return {};
        case 'flush':
          return { apps: relay.flush(request.apps) } satisfies RelayResultMap['flush'];
        case 'status':
          return { ...relay.status(), startTime, version: VERSION } satisfies RelayResultMap['status'];
        case 'hand-over': {
          // Everything read is written before the answer; what is still in the pipes waits for the next relay.
          relay.stopAll();
          connection.reply({ id: request.id, ok: true, result: {} }, () => exit('handed over to another version'));
          return undefined;
        }
        case 'retire':
          retiring = true;
          setImmediate(checkIdle);
          return {};
        default:
          throw new Error('unknown relay request');
      }
    },
  });
  await control.listen();
  const adopted = relay.attachAll();
  log(`started (agentpm ${VERSION}, home ${home}); re-attached ${adopted} FIFO(s)`);
  setInterval(checkIdle, Math.min(250, idleMs)).unref();
  setInterval(() => {
    control.ensureReachable().catch((error: unknown) => log(`cannot re-create ${relaySocketPath(home)}: ${(error as Error).message}`));
  }, SOCKET_CHECK_MS).unref();
  process.on('SIGTERM', () => exit('SIGTERM'));
  process.on('SIGINT', () => exit('SIGINT'));
  process.on('SIGHUP', () => undefined);
  // A bug in one request or one file must not stop every app's logs.
  process.on('uncaughtException', (error) => log(`uncaught: ${error.stack ?? String(error)}`));
  process.on('unhandledRejection', (error) => log(`unhandled rejection: ${String((error as Error)?.stack ?? error)}`));
}

main().catch((error: unknown) => {
  const running = error instanceof AgentpmError && error.code === 'daemon-running';
  if (!running) log(`cannot start: ${error instanceof AgentpmError ? `${error.code}: ${error.message}` : String((error as Error)?.stack ?? error)}`);
  process.exit(running ? 3 : 1);
});
