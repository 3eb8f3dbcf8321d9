import { TabulaError } from '../../../domain/errors.js';
import type { AdminApi } from './admin-api.js';
import type { AdminRequest } from './http.js';
import type { Route } from './router.js';
import { action, get, ok } from './routes.js';
import { filled, poolName } from './validate.js';

// The golden images page: the store's images, an upload from staff's browser
// straight into the store, and per pool the switch and the rollback. Each is
// one call of the same API as D-Bus (api.images).

const bad = (message: string) => new TabulaError('invalid-argument', message);

/** The name an upload gives its image, ?name= (the importer checks it is safe). */
export function uploadName(req: Pick<AdminRequest, 'query'>): string {
  const name = (req.query.get('name') ?? '').trim();
  if (name === '') throw bad('the upload names no image: give ?name=NAME');
  if (name.length > 100) throw bad('the image name is too long (at most 100 characters)');
  return name;
}

/** The size a browser announces before it uploads (?size=, bytes). */
export function announcedSize(query: URLSearchParams): number {
  const v = query.get('size') ?? '';
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw bad(`"size" must be the file's size in bytes, not ${JSON.stringify(v)}`);
  return Number(v);
}

export function imageRoutes(api: Pick<AdminApi, 'images'>): Route[] {
  const images = () => {
    if (!api.images) throw new TabulaError('not-found', 'this supervisor keeps no image store');
    return api.images;
  };
  return [
    get('/api/images', async () => ok({ images: await images().list() })),
    // Asked before an upload: a refusal then costs the browser nothing, where a refused upload would be cut off mid-way.
    get('/api/images/check-upload', async ({ req }) => {
      await images().checkUpload(uploadName(req), announcedSize(req.query));
      return ok();
    }),
    {
      method: 'POST',
      path: '/api/images/upload',
      action: 'image-upload',
      upload: true,
      handle: async ({ req }) => {
        const name = uploadName(req);
        const upload = req.upload;
        if (upload?.length === undefined) throw bad('the upload has no Content-Length: send the file whole, with its length');
        const image = await images().upload({ name, upload: { bytes: upload.length, writeTo: upload.writeTo } });
        return { response: ok({ image }), log: { name, bytes: image.bytes, sha256: image.sha256 } };
      },
    },
    action('/api/pools/use-image', 'image-use', async (b) => {
      const pool = poolName(b);
      const image = filled(b, 'image', 100);
      await images().use(pool, image);
      return { log: { pool, image } };
    }),
    action('/api/pools/rollback-image', 'image-rollback', async (b) => {
      const pool = poolName(b);
      await images().rollback(pool);
      return { log: { pool } };
    }),
  ];
}
