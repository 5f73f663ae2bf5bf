// Reloads inventory.yml when it changes, without a restart. The directory is watched (not the file)
// so editors that write a new file and rename it over the old one, and Kubernetes ConfigMap symlink
// swaps, are seen; the content hash filters out events that changed nothing. A bad file is logged
// and the last good registry stays. A missing file is warned about once until it is back: every event
// in its directory (a log file written next to it) would otherwise log the warning again.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { InventoryError, loadInventoryFile, type InventoryFile } from './inventory-file.js';
import type { InventorySyncResult, RunnerRegistry } from './registry.js';

export interface WatchInventoryOptions {
  /** Quiet time after the last event before reloading (editors write in several steps). */
  debounceMs?: number;
  /** Also re-read every so often, for filesystems without change events (0 = never). */
  pollIntervalMs?: number;
  /** Content hash already applied; events that do not change it are ignored. */
  initialHash?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export interface InventoryWatcher {
  /** Reloads now (skipping the debounce); resolves when the reload and onChange are done. */
  reload(): Promise<void>;
  /** Content hash of the last file handed to onChange successfully. */
  readonly lastHash: string | undefined;
  close(): void;
}

/** Safe to log: the loader's messages name fields and variables, never values. */
function describeError(err: unknown): string {
  if (err instanceof InventoryError) return err.message;
  return String((err as Error)?.message ?? err).split('\n')[0] ?? 'unknown error';
}

export function watchInventory(
  file: string,
  onChange: (inventory: InventoryFile) => void | Promise<void>,
  opts: WatchInventoryOptions = {},
): InventoryWatcher {
  const debounceMs = opts.debounceMs ?? 300;
  const logger = opts.logger;
  const absolute = path.resolve(file);
  let lastHash = opts.initialHash;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Reloads run one at a time; an event during a reload schedules exactly one more.
  let running: Promise<void> | undefined;
  let again = false;
  let missingWarned = false;

  const reloadOnce = async () => {
    let inventory: InventoryFile;
    try {
      inventory = await loadInventoryFile(absolute, { env: opts.env });
    } catch (err) {
      if (err instanceof InventoryError && err.code === 'inventory_not_found') {
        if (!missingWarned) logger?.warn({ path: absolute }, 'inventory file is missing; keeping the last good registry');
        missingWarned = true;
      } else {
        logger?.error({ path: absolute, error: describeError(err) }, 'inventory file is invalid; keeping the last good registry');
      }
      return;
    }
    if (missingWarned) {
      missingWarned = false;
      logger?.info({ path: absolute }, 'inventory file is back');
    }
    if (inventory.contentHash === lastHash) return;
    for (const warning of inventory.warnings) logger?.warn({ path: absolute }, warning);
    try {
      await onChange(inventory);
      lastHash = inventory.contentHash;
      logger?.info({ path: absolute, runners: inventory.runners.length }, 'inventory reloaded');
    } catch (err) {
      // lastHash stays, so the next event or poll tries again.
      logger?.error({ path: absolute, error: describeError(err) }, 'applying the inventory failed; keeping the last good registry');
    }
  };

  const reload = async (): Promise<void> => {
    if (closed) return;
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await reloadOnce();
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const schedule = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
  };

  let watcher: FSWatcher | undefined;
  try {
    // Any event in the directory: the file may be a symlink whose target directory is swapped.
    watcher = watch(path.dirname(absolute), { persistent: false }, schedule);
    watcher.on('error', (err) => logger?.error({ path: absolute, error: describeError(err) }, 'inventory watcher failed'));
  } catch (err) {
    logger?.error({ path: absolute, error: describeError(err) }, 'cannot watch the inventory directory; edits need a restart');
  }
  const poll = opts.pollIntervalMs ? setInterval(schedule, opts.pollIntervalMs) : undefined;
  poll?.unref();

  return {
    reload,
    get lastHash() {
      return lastHash;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      watcher?.close();
    },
  };
}

export interface InventorySyncHandle {
  /** The sync of the file as it was at start. */
  initial: InventorySyncResult;
  watcher: InventoryWatcher;
}

/**
 * Start-up wiring for `serve`: load and sync the file once (a missing file is an empty inventory;
 * an invalid one throws, so the controller refuses to start), then keep it synced on edits.
 */
export async function startInventorySync(opts: {
  registry: Pick<RunnerRegistry, 'syncInventory'>;
  path: string;
  logger?: Logger;
  debounceMs?: number;
  pollIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
  /** A missing file stops the start with an error naming the path (a mount that went wrong). */
  required?: boolean;
}): Promise<InventorySyncHandle> {
  const inventory = await loadInventoryFile(opts.path, { env: opts.env, missingOk: !opts.required });
  for (const warning of inventory.warnings) opts.logger?.warn({ path: opts.path }, warning);
  const initial = await opts.registry.syncInventory(inventory);
  const watcher = watchInventory(
    opts.path,
    async (next) => {
      await opts.registry.syncInventory(next);
    },
    { debounceMs: opts.debounceMs, pollIntervalMs: opts.pollIntervalMs, env: opts.env, logger: opts.logger, initialHash: inventory.contentHash },
  );
  return { initial, watcher };
}
