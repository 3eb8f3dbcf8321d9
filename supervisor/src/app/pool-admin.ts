import { timeoutsOf, withPoolImage, withPoolSize, withPoolTimeouts, type Config } from '../config/config.js';
import { asTabulaError, TabulaError } from '../domain/errors.js';
import { drainedPools, judgeOverrides, timeoutValues, withTimeoutChanges, type PoolOverride, type PoolOverrides } from '../domain/pool-overrides.js';
import { checkTimeouts, type PoolTimeouts } from '../domain/pool-timeouts.js';
import { growthProblem, type HostRoom } from '../domain/resources.js';
import type { Logger } from '../ports/logger.js';
import type { PoolStateStore } from '../ports/pool-state.js';
import { Lane } from './lane.js';

/** What PoolAdmin needs of the reconciler. */
export interface PoolKeeperControls {
  reconfigure(next: Config): Promise<void>;
  setDrained(pools: ReadonlySet<string>): void;
  room(): HostRoom;
}

export interface PoolAdminDeps {
  readonly keeper: PoolKeeperControls;
  readonly store: PoolStateStore;
  readonly logger: Logger;
}

/**
 * Staff's changes to pools (drain, undrain, resize, timeouts) on top of the config
 * file: stored before they apply, so they outlive restarts and reloads, and
 * applied through the same reconfigure as a reload. One change at a time.
 */
export class PoolAdmin {
  readonly #deps: PoolAdminDeps;
  readonly #lane = new Lane();
  /** The config file as last loaded. */
  #file: Config;
  #overrides: PoolOverrides = {};
  #effective: Config;

  constructor(file: Config, deps: PoolAdminDeps) {
    this.#file = file;
    this.#effective = file;
    this.#deps = deps;
  }

  /** The config in force: the file's, with staff's changes. */
  effective(): Config {
    return this.#effective;
  }

  /** The config file as last loaded. */
  file(): Config {
    return this.#file;
  }

  /** Staff's changes as stored. */
  overrides(): PoolOverrides {
    return this.#overrides;
  }

  /** Changes what is kept of one pool's images (see ImageAdmin); stored, then applied; `done` once it is. */
  changePool(pool: string, edit: (o: PoolOverride) => PoolOverride, done: () => void): Promise<void> {
    return this.#change(pool, edit, done);
  }

  /** Forgets retired images that are gone from the store, in every pool's record (configured or not). */
  forgetRetired(paths: ReadonlySet<string>): Promise<void> {
    return this.#lane.run(async () => {
      const next: Record<string, PoolOverride> = {};
      for (const [pool, { retired, ...o }] of Object.entries(this.#overrides)) {
        const left = (retired ?? []).filter((r) => !paths.has(r));
        const kept = left.length > 0 ? { ...o, retired: left } : o;
        if (Object.keys(kept).length > 0) next[pool] = kept;
      }
      await this.#apply(this.#file, next);
    });
  }

  /** Takes up the stored changes (a store that cannot be read is reported, and the file's config kept). */
  load(): Promise<Config> {
    return this.#lane.run(async () => {
      let stored: PoolOverrides = {};
      try {
        stored = (await this.#deps.store.load()) ?? {};
      } catch (e) {
        const err = asTabulaError(e);
        this.#deps.logger.err('pool-state-unusable', { code: err.code, error: err.message, using: "the config file's pools" });
      }
      return this.#apply(this.#file, stored);
    });
  }

  /** Swaps in a new config file (already validated); staff's changes that still apply stay. */
  reload(file: Config): Promise<Config> {
    return this.#lane.run(() => this.#apply(file, this.#overrides));
  }

  drain(pool: string): Promise<void> {
    return this.#change(pool, (o) => ({ ...o, drained: true }), () => this.#deps.logger.notice('pool-drained', { pool }));
  }

  undrain(pool: string): Promise<void> {
    return this.#change(pool, ({ drained: _gone, ...o }) => o, () => this.#deps.logger.notice('pool-undrained', { pool }));
  }

  /** Refused (invalid-argument) out of 0..64, when console ports would collide, or when the new VMs cannot fit in memory. */
  resize(pool: string, size: number): Promise<void> {
    let from: number | undefined;
    return this.#change(
      pool,
      (o) => {
        const current = this.#effective.pools.find((p) => p.name === pool);
        const fileSize = this.#file.pools.find((p) => p.name === pool)?.size;
        from = current?.size;
        withPoolSize(this.#effective, pool, size);
        const problem = current && growthProblem(current, current.size, size, this.#deps.keeper.room());
        if (problem !== undefined) throw new TabulaError('invalid-argument', problem);
        const { size: _s, configSize: _c, ...rest } = o;
        // Back to the file's size: nothing left to remember.
        return size === fileSize ? rest : { ...rest, size, configSize: fileSize };
      },
      () => this.#deps.logger.notice('pool-resized', { pool, from, to: size }),
    );
  }

  /**
   * Sets some of the pool's timeouts (seconds, by their config keys): refused
   * (invalid-argument, naming the key and its bounds) before anything changes.
   * Applied as a reload would: new boots and, from the next round, the limits
   * of sessions under way. A value back to the file's is forgotten.
   */
  setTimeouts(pool: string, changes: Readonly<Record<string, unknown>>): Promise<void> {
    let checked: Partial<PoolTimeouts>;
    try {
      checked = checkTimeouts(changes);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#change(
      pool,
      ({ timeouts: old = {}, ...rest }) => {
        const file = this.#file.pools.find((p) => p.name === pool);
        const timeouts = file === undefined ? old : withTimeoutChanges(old, checked, timeoutsOf(file));
        return Object.keys(timeouts).length > 0 ? { ...rest, timeouts } : rest;
      },
      () => this.#deps.logger.notice('pool-timeouts-set', { pool, ...checked }),
    );
  }

  #change(pool: string, edit: (o: PoolOverride) => PoolOverride, done: () => void): Promise<void> {
    return this.#lane.run(async () => {
      if (!this.#file.pools.some((p) => p.name === pool)) throw new TabulaError('not-found', `no pool named "${pool}"`);
      const { [pool]: old = {}, ...others } = this.#overrides;
      const next = edit(old);
      await this.#apply(this.#file, Object.keys(next).length > 0 ? { ...others, [pool]: next } : others);
      done();
    });
  }

  /** Stores what changed, then applies the config with the overrides that still fit it. */
  async #apply(file: Config, stored: PoolOverrides): Promise<Config> {
    const judged = judgeOverrides(
      new Map(file.pools.map((p) => [p.name, p.size])),
      stored,
      new Map(file.pools.map((p) => [p.name, p.goldenImage])),
      new Map(file.pools.map((p) => [p.name, timeoutsOf(p)])),
    );
    const dropped = [...judged.dropped];
    const kept: Record<string, PoolOverride> = { ...judged.kept };
    let effective = file;
    for (const [pool, o] of Object.entries(kept)) {
      if (o.image !== undefined) effective = withPoolImage(effective, pool, o.image);
      if (o.timeouts !== undefined) effective = withPoolTimeouts(effective, pool, timeoutValues(o.timeouts));
      if (o.size === undefined) continue;
      try {
        effective = withPoolSize(effective, pool, o.size);
      } catch (e) {
        // The file changed around it (e.g. a new pool on its ports): the file wins.
        dropped.push({ pool, what: 'size', why: asTabulaError(e).message });
        const { size: _s, configSize: _c, ...rest } = o;
        if (Object.keys(rest).length > 0) kept[pool] = rest;
        else delete kept[pool];
      }
    }
    if (JSON.stringify(kept) !== JSON.stringify(this.#overrides) || JSON.stringify(kept) !== JSON.stringify(stored)) await this.#deps.store.save(kept);
    for (const d of dropped) this.#deps.logger.warning('pool-override-dropped', { pool: d.pool, what: d.what, why: d.why });
    this.#file = file;
    this.#overrides = kept;
    this.#effective = effective;
    await this.#deps.keeper.reconfigure(effective);
    this.#deps.keeper.setDrained(drainedPools(kept));
    return effective;
  }
}
