import { FileImageStore } from '../adapters/file-image-store.js';
import type { SupervisorApi } from '../api/dbus/service.js';
import { ImageAdmin, type ImageKeeper, type ImagePools } from '../app/image-admin.js';
import { ImageImport } from '../app/image-import.js';
import type { Config } from '../config/config.js';
import type { Disks } from '../ports/disks.js';
import type { Libvirt } from '../ports/libvirt.js';
import type { Logger } from '../ports/logger.js';

// The golden images' part of the composition root: the store on the data partition and its admin.

export interface ImagesWiring {
  readonly api: NonNullable<SupervisorApi['images']>;
  dispose(): void;
}

/** The image store is STATE_DIR/images: what a factory reset with keep-images keeps. */
export async function startImages(config: Config, deps: { disks: Disks; pools: ImagePools; keeper: ImageKeeper & { config(): Config }; libvirt: Libvirt; logger: Logger }): Promise<ImagesWiring> {
  const store = new FileImageStore(`${config.stateDir}/images`);
  const importer = new ImageImport({ store, disks: deps.disks, logger: deps.logger, diskReserveMiB: () => deps.keeper.config().diskReserveMiB });
  const admin = new ImageAdmin({ store, disks: deps.disks, pools: deps.pools, keeper: deps.keeper, libvirt: deps.libvirt, importer, logger: deps.logger });
  await admin.start();
  return {
    api: {
      list: () => admin.list(),
      import: (req) => importer.run(req),
      upload: (req) => importer.adopt(req),
      checkUpload: (name, bytes) => importer.checkUpload(name, bytes),
      use: (pool, name) => admin.use(pool, name),
      rollback: (pool) => admin.rollback(pool),
    },
    dispose: () => admin.dispose(),
  };
}
