import type { Pictures } from '../../src/ports/pictures.js';

/** Fixed picture lists; `failing` makes both reject (an unreadable folder, a server that does not answer). */
export class FakePictures implements Pictures {
  failing = false;

  constructor(
    readonly slides: string[] = ['/usr/share/tabula/slideshow/1.png', '/run/tabula-station/slideshow/2.jpg'],
    readonly frames: string[] = ['/usr/share/tabula/animation/01.png', '/usr/share/tabula/animation/02.png'],
  ) {}

  slideshow(): Promise<string[]> {
    return this.failing ? Promise.reject(new Error('EACCES')) : Promise.resolve([...this.slides]);
  }

  animation(): Promise<string[]> {
    return this.failing ? Promise.reject(new Error('EACCES')) : Promise.resolve([...this.frames]);
  }
}
