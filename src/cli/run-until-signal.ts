// Runs a long-lived service until SIGINT/SIGTERM, then stops it and exits 0 (1 if stopping failed).
// A failure to start prints one clear line and exits 1. `fail` lets the service end itself (a
// worker that died): it stops and exits 1 so a supervisor restarts it.

/** Where the lines go: plain stderr by default, a structured logger for serve and worker. */
export interface SignalLog {
  info(message: string): void;
  error(message: string): void;
}

const stderrLog: SignalLog = {
  info: (message) => process.stderr.write(`${message}\n`),
  error: (message) => process.stderr.write(`${message}\n`),
};

export async function runUntilSignal(
  start: (fail: (err: Error) => void) => Promise<() => Promise<void>>,
  log: SignalLog = stderrLog,
): Promise<void> {
  let stop: (() => Promise<void>) | null = null;
  // Set by a signal or a fatal error; read after start() too (a closure may have set it meanwhile).
  let ending = null as { code: number } | null;
  const end = (code: number) => {
    if (ending) {
      ending.code = Math.max(ending.code, code); // a worker that fails while stopping still counts
      return;
    }
    ending = { code };
    if (!stop) return; // still starting: handled once start() returns
    stop().then(
      () => process.exit(ending!.code),
      (err: unknown) => {
        log.error(`Error while stopping: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (ending) {
      log.error(`received ${signal} again, exiting now`);
      process.exit(1);
    }
    log.info(`received ${signal}, stopping`);
    end(0);
  };
  const fail = (err: Error) => {
    log.error(`stopping after a fatal error: ${err.message}`);
    end(1);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    stop = await start(fail);
  } catch (err) {
    log.error(`Error: ${(err as Error).message}`);
    process.exit(1);
  }
  const endedWhileStarting = ending as { code: number } | null;
  if (endedWhileStarting) {
    try {
      await stop();
    } catch (err) {
      log.error(`Error while stopping: ${(err as Error).message}`);
      process.exit(1);
    }
    process.exit(endedWhileStarting.code);
  }
}
