/**
 * `agentpm ls | head -1`: the reader went away. Node ignores SIGPIPE, so the next write fails with
 * EPIPE, by default as an unhandled error with a stack trace. Every entry point of the CLI ends quietly
 * instead, with the status a process killed by SIGPIPE has (141), as `yes | head -1` does.
 */
import { constants } from 'node:os';

export function exitQuietlyOnEpipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(128 + constants.signals.SIGPIPE);
      throw error;
    });
  }
}
