// Runs a long-lived service until SIGINT/SIGTERM, then stops it and exits 0 (1 if stopping failed).
// A failure to start prints one clear line and exits 1.

export async function runUntilSignal(start: () => Promise<() => Promise<void>>): Promise<void> {
  let stop: (() => Promise<void>) | null = null;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`received ${signal} again, exiting now\n`);
      process.exit(1);
    }
    signalled = true;
    process.stderr.write(`received ${signal}, stopping\n`);
    if (!stop) return; // still starting: exit once start() returns
    stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`Error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    stop = await start();
  } catch (err) {
    process.stderr.write(`Error: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (signalled) {
    await stop();
    process.exit(0);
  }
}
