/** A worker that crashes now and then, to show restarts with backoff and exit reasons. */
const lifetimeMs = Number(process.env['CRASH_AFTER_MS'] ?? 20_000);
console.log(`flaky worker up (pid ${process.pid}); will crash in ${lifetimeMs} ms`);
setInterval(() => console.log('working'), 2000);
setTimeout(() => {
  console.error('flaky worker: simulated crash');
  process.exit(1);
}, lifetimeMs);
