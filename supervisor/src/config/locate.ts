/** A key's path as the schema sees it: `['pool', 0, 'size']` is the first [[pool]]'s size. */
export type KeyPath = ReadonlyArray<string | number>;

const ARRAY_TABLE = /^\[\[\s*([^\]]+?)\s*\]\]/;
const TABLE = /^\[\s*([^\]]+?)\s*\]/;
const KEY = /^([A-Za-z0-9_\-."']+?)\s*=/;

function dotted(text: string): string[] {
  return text.split('.').map((k) => k.trim().replace(/^["']|["']$/g, ''));
}

/**
 * Where each key of a TOML text is (1-based line numbers), so that a refusal
 * can say "line 14: pool[0].size". A plain scan of table headers and `key =`
 * lines: enough for a config file people write; a key it cannot place falls
 * back to its table's header.
 */
export function keyLocator(text: string): (path: KeyPath) => number | undefined {
  const lines = new Map<string, number>();
  const arrays = new Map<string, number>();
  const mark = (path: KeyPath, line: number) => {
    const k = JSON.stringify(path);
    if (!lines.has(k)) lines.set(k, line);
  };
  let table: KeyPath = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const array = ARRAY_TABLE.exec(line);
    const plain = array ? undefined : TABLE.exec(line);
    if (array?.[1] !== undefined) {
      const name = dotted(array[1]);
      const key = name.join('.');
      const index = arrays.get(key) ?? 0;
      arrays.set(key, index + 1);
      table = [...name, index];
      mark(table, i + 1);
    } else if (plain?.[1] !== undefined) {
      table = dotted(plain[1]);
      mark(table, i + 1);
    } else {
      const key = KEY.exec(line)?.[1];
      if (key !== undefined) mark([...table, ...dotted(key)], i + 1);
    }
  });
  return (path) => {
    for (let n = path.length; n > 0; n--) {
      const line = lines.get(JSON.stringify(path.slice(0, n)));
      if (line !== undefined) return line;
    }
    return undefined;
  };
}

/** "pool[0].size" for ['pool', 0, 'size']. */
export function keyName(path: KeyPath): string {
  return path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').replace(/^\./, '');
}
