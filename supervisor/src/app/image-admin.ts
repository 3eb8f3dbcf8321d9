import type { Config } from '../config/config.js';
import { asTabulaError, TabulaError } from '../domain/errors.js';
import { goldenProblem } from '../domain/golden.js';
import { filesOf, imageNameProblem, imagesIn, inStore, sha256Of, sidecarOf, type ImageView } from '../domain/golden-store.js';
import {
  confirmAfter,
  removableImages,
  rollbackImages,
  rollbackReason,
  switchImages,
  watchClone,
  type CloneOutcome,
  type ImagesChanged,
  type ImageRef,
  type SwitchWatch,
} from '../domain/golden-switch.js';
import { DEFAULT_HEALTH_POLICY } from '../domain/health.js';
import type { PoolOverride, PoolOverrides } from '../domain/pool-overrides.js';
import { isOwned } from '../domain/vm.js';
import type { Disks } from '../ports/disks.js';
import type { Disposable } from '../ports/disposable.js';
import type { ImageStore } from '../ports/image-store.js';
import type { Libvirt } from '../ports/libvirt.js';
import type { Logger } from '../ports/logger.js';
import type { ImageImport } from './image-import.js';
import { Lane } from './lane.js';
import type { SupervisorStatus } from './reconciler.js';

/** What ImageAdmin needs of PoolAdmin: the pools' stored state and a way to change it. */
export interface ImagePools {
  file(): Config;
  effective(): Config;
  overrides(): PoolOverrides;
  changePool(pool: string, edit: (o: PoolOverride) => PoolOverride, done: () => void): Promise<void>;
  forgetRetired(paths: ReadonlySet<string>): Promise<void>;
}

/** What ImageAdmin needs of the reconciler. */
export interface ImageKeeper {
  status(): SupervisorStatus;
  onStatus(listener: (s: SupervisorStatus) => void): Disposable;
  onCloneOutcome(listener: (o: CloneOutcome) => void): Disposable;
  noteRollback(pool: string, reason: string): void;
}

export interface ImageAdminDeps {
  readonly store: ImageStore;
  readonly disks: Pick<Disks, 'inspect'>;
  readonly pools: ImagePools;
  readonly keeper: ImageKeeper;
  readonly libvirt: Pick<Libvirt, 'listDomains'>;
  readonly importer: ImageImport;
  readonly logger: Logger;
  /** Failed clones of a new image in a row that roll it back. */
  readonly rollbackAfter?: number;
}

/**
 * Staff's golden images: switching a pool to an imported image, rolling it
 * back (by hand, or by itself when clones of a new image fail to come up),
 * listing the store, and deleting images no pool uses any more once no VM is
 * backed by them. Switches run one at a time; imports beside them.
 */
export class ImageAdmin {
  readonly #deps: ImageAdminDeps;
  readonly #lane = new Lane();
  /** Switches on probation, per pool. */
  readonly #watches = new Map<string, SwitchWatch>();
  #subscriptions: Disposable[] = [];
  #collecting = false;
  #collectAgain = false;

  constructor(deps: ImageAdminDeps) {
    this.#deps = deps;
  }

  /** Sweeps what a cut-short import left, watches switches still on probation, and starts collecting unused images. */
  async start(): Promise<void> {
    await this.#deps.importer.sweep().catch((e: unknown) => this.#deps.logger.warning('golden-import-sweep-failed', { error: asTabulaError(e).message }));
    for (const [pool, o] of Object.entries(this.#deps.pools.overrides())) {
      if (o.image !== undefined && !o.image.confirmed) this.#watches.set(pool, { image: o.image.current.path, up: 0, failed: 0 });
    }
    // Collected at each new status (the first comes once libvirt is read): a VM gone may free an image.
    this.#subscriptions = [this.#deps.keeper.onCloneOutcome((o) => this.#onClone(o)), this.#deps.keeper.onStatus(() => this.#collectSoon())];
  }

  /** Resolves once the switches, rollbacks and deletions queued so far are done. */
  idle(): Promise<void> {
    return this.#lane.run(async () => undefined);
  }

  dispose(): void {
    for (const s of this.#subscriptions) s.dispose();
    this.#subscriptions = [];
    this.#deps.importer.stop();
  }

  /** New clones of `pool` come from the store's image `name`; live sessions finish on the old one. */
  use(pool: string, name: string): Promise<void> {
    return this.#lane.run(async () => {
      const file = this.#poolFile(pool);
      const to = await this.#storeImage(name);
      const changed = switchImages(this.#deps.pools.overrides()[pool]?.image, { path: file.goldenImage }, to);
      if (changed === undefined) return;
      // Watched before it applies: the first clone of it may come up as soon as it does.
      const before = this.#watches.get(pool);
      this.#watches.set(pool, { image: to.path, up: 0, failed: 0 });
      try {
        await this.#apply(pool, changed, () => this.#deps.logger.notice('golden-switched', { pool, from: changed.images.previous?.path, to: to.path }));
      } catch (e) {
        if (before === undefined) this.#watches.delete(pool);
        else this.#watches.set(pool, before);
        throw e;
      }
      this.#collectSoon();
    });
  }

  /** Back to the pool's previous image. */
  rollback(pool: string): Promise<void> {
    return this.#lane.run(async () => {
      this.#poolFile(pool);
      await this.#rollback(pool, 'admin');
    });
  }

  async list(): Promise<ImageView[]> {
    const { store, disks, keeper, importer } = this.#deps;
    const files = await store.list();
    const pools = this.#deps.pools.effective().pools;
    const vms = keeper.status().pools.flatMap((p) => p.vms.filter((vm) => vm.active));
    const paths = new Set(imagesIn(files).map((f) => `${store.dir}/${f}`));
    for (const p of pools) [p.goldenImage, p.goldenSwitch?.previous].forEach((x) => x && paths.add(x));
    const views = await Promise.all(
      [...paths].sort().map(async (path): Promise<ImageView> => {
        const name = path.slice(path.lastIndexOf('/') + 1);
        const stored = inStore(store.dir, path);
        const sha256 = stored && files.includes(sidecarOf(name, 'sha256')) ? sha256Of((await store.readText(sidecarOf(name, 'sha256')).catch(() => undefined)) ?? '') : undefined;
        const base = {
          name,
          path,
          stored,
          ...(stored ? bootFiles(store.dir, name, files) : {}),
          ...(sha256 === undefined ? {} : { sha256 }),
          currentOf: pools.filter((p) => p.goldenImage === path).map((p) => p.name),
          previousOf: pools.filter((p) => p.goldenSwitch?.previous === path).map((p) => p.name),
          liveVms: vms.filter((vm) => vm.golden === path).length,
        };
        try {
          const info = await disks.inspect(path);
          const problem = goldenProblem(path, info);
          return { ...base, format: info.format, virtualSize: info.virtualSize, actualSize: info.actualSize, ...(problem === undefined ? {} : { problem }) };
        } catch (e) {
          return { ...base, problem: asTabulaError(e).message };
        }
      }),
    );
    const importing = importer.progress();
    if (importing === undefined) return views;
    return [...views, { name: importing.name, path: `${store.dir}/${importing.name}`, stored: true, currentOf: [], previousOf: [], liveVms: 0, importing: { copied: importing.copied, total: importing.total } }];
  }

  #poolFile(pool: string): Config['pools'][number] {
    const p = this.#deps.pools.file().pools.find((x) => x.name === pool);
    if (p === undefined) throw new TabulaError('not-found', `no pool named "${pool}"`);
    return p;
  }

  /** The store's image `name` with its own kernel and initrd, if it has them; refused when it cannot be cloned from. */
  async #storeImage(name: string): Promise<ImageRef> {
    const { store, disks } = this.#deps;
    const bad = imageNameProblem(name);
    if (bad !== undefined) throw new TabulaError('invalid-argument', bad);
    const files = await store.list();
    if (!imagesIn(files).includes(name)) throw new TabulaError('not-found', `no image named "${name}" in the store (${store.dir}): tabulactl image list shows them`);
    const path = `${store.dir}/${name}`;
    const problem = goldenProblem(path, await disks.inspect(path));
    if (problem !== undefined) throw new TabulaError('golden-image-invalid', problem);
    return { path, ...bootFiles(store.dir, name, files) };
  }

  /** Stores the pool's new images (the retired ones listed for deletion), then applies them. */
  #apply(pool: string, changed: ImagesChanged, done: () => void): Promise<void> {
    const { current, previous } = changed.images;
    return this.#deps.pools.changePool(
      pool,
      (o) => {
        // An image used again is no longer to be deleted.
        const retired = [...new Set([...(o.retired ?? []), ...changed.retired])].filter((r) => r !== current.path && r !== previous?.path);
        const { retired: _r, ...rest } = o;
        return { ...rest, image: changed.images, ...(retired.length > 0 ? { retired } : {}) };
      },
      done,
    );
  }

  async #rollback(pool: string, trigger: 'admin' | 'auto', reason?: string): Promise<void> {
    const state = this.#deps.pools.overrides()[pool]?.image;
    const changed = rollbackImages(state);
    if (state === undefined || changed === undefined) throw new TabulaError('not-found', `pool ${pool} has no previous golden image to roll back to`);
    const to = changed.images.current.path;
    const problem = goldenProblem(to, await this.#deps.disks.inspect(to));
    if (problem !== undefined) throw new TabulaError('golden-image-invalid', `cannot roll back: ${problem}`);
    this.#watches.delete(pool);
    // Noted first, so the reconfigure that follows keeps it: the pool says why until a clone of `to` is up.
    if (reason !== undefined) this.#deps.keeper.noteRollback(pool, reason);
    const log = trigger === 'auto' ? this.#deps.logger.err.bind(this.#deps.logger) : this.#deps.logger.notice.bind(this.#deps.logger);
    await this.#apply(pool, changed, () => log('golden-rollback', { pool, from: state.current.path, to, trigger, ...(reason === undefined ? {} : { reason }) }));
  }

  /** A clone of a switch on probation came up or failed: confirm the switch, or go back. */
  #onClone(o: CloneOutcome): void {
    const w = this.#watches.get(o.pool);
    if (w === undefined) return;
    const size = this.#deps.pools.effective().pools.find((p) => p.name === o.pool)?.size ?? 0;
    const { watch, verdict } = watchClone(w, o, { confirmAfter: confirmAfter(size), rollbackAfter: this.#deps.rollbackAfter ?? DEFAULT_HEALTH_POLICY.unhealthyAfter });
    this.#watches.set(o.pool, watch);
    if (verdict === undefined) return;
    this.#watches.delete(o.pool);
    // Not awaited: outcomes arrive inside a reconcile round, and applying a change waits for the round to end.
    void this.#lane
      .run(async () => {
        const state = this.#deps.pools.overrides()[o.pool]?.image;
        // A switch or reload meanwhile: this verdict is about an image the pool no longer probes.
        if (state === undefined || state.confirmed || state.current.path !== watch.image) return;
        if (verdict === 'confirm') {
          await this.#deps.pools.changePool(o.pool, (x) => ({ ...x, image: { ...state, confirmed: true } }), () => this.#deps.logger.notice('golden-confirmed', { pool: o.pool, image: watch.image, clones: watch.up }));
        } else {
          await this.#rollback(o.pool, 'auto', rollbackReason(watch.image, state.previous?.path ?? '?', watch));
        }
      })
      .catch((e: unknown) => {
        const err = asTabulaError(e);
        this.#deps.logger.err(verdict === 'confirm' ? 'golden-confirm-failed' : 'golden-rollback-failed', { pool: o.pool, image: watch.image, code: err.code, error: err.message });
      });
  }

  /** Runs a collection now, or once more after the one under way. */
  #collectSoon(): void {
    if (!Object.values(this.#deps.pools.overrides()).some((o) => (o.retired?.length ?? 0) > 0)) return;
    if (this.#collecting) {
      this.#collectAgain = true;
      return;
    }
    this.#collecting = true;
    void this.#lane
      .run(() => this.#collect())
      .catch((e: unknown) => this.#deps.logger.warning('golden-collect-failed', { error: asTabulaError(e).message }))
      .finally(() => {
        this.#collecting = false;
        if (this.#collectAgain) {
          this.#collectAgain = false;
          this.#collectSoon();
        }
      });
  }

  /** Deletes retired images from the store that no pool uses and no VM is backed by (libvirt's records say). */
  async #collect(): Promise<void> {
    const { pools, libvirt, store, logger } = this.#deps;
    const retired = Object.values(pools.overrides()).flatMap((o) => o.retired ?? []);
    if (retired.length === 0) return;
    const backing = (await libvirt.listDomains()).filter(isOwned).flatMap((d) => (d.record.golden === undefined ? [] : [d.record.golden]));
    // Read after libvirt, so a change of config meanwhile is seen.
    const used = new Set(backing);
    for (const p of [...pools.file().pools, ...pools.effective().pools]) [p.goldenImage, p.goldenSwitch?.previous].forEach((x) => x && used.add(x));
    for (const o of Object.values(pools.overrides())) [o.image?.current.path, o.image?.previous?.path].forEach((x) => x && used.add(x));
    const gone = removableImages(retired, used);
    if (gone.length === 0) return;
    for (const path of gone) {
      if (!inStore(store.dir, path)) continue;
      const name = path.slice(store.dir.length + 1);
      for (const f of filesOf(name)) await store.remove(f);
      logger.notice('golden-image-removed', { image: path, why: 'no pool uses it and no VM is backed by it' });
    }
    await pools.forgetRetired(new Set(gone));
  }
}

/** The kernel and initrd an image of the store brings, by the files beside it. */
function bootFiles(dir: string, name: string, files: readonly string[]): { kernel?: string; initrd?: string } {
  const at = (which: 'kernel' | 'initrd') => (files.includes(sidecarOf(name, which)) ? { [which]: `${dir}/${sidecarOf(name, which)}` } : {});
  return { ...at('kernel'), ...at('initrd') };
}
