// Which key of a YAML document an offset falls in, as a config path, so even text-level errors name their key.
import { isMap, isPair, isScalar, isSeq, type Document, type Node as YamlNode } from 'yaml';

const startOf = (n: unknown): number | undefined =>
  n && typeof n === 'object' && 'range' in n && Array.isArray((n as YamlNode).range) ? (n as YamlNode).range![0] : undefined;

/** The deepest path whose key or value holds the offset: the last entry starting at or before it, level by level. */
export function pathAtOffset(doc: Document, offset: number): (string | number)[] {
  const path: (string | number)[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      let chosen: { key: unknown; value: unknown } | undefined;
      for (const pair of node.items) {
        const s = startOf(pair.key) ?? startOf(pair.value);
        if (isPair(pair) && s !== undefined && s <= offset) chosen = pair;
      }
      if (!chosen) return path;
      path.push(isScalar(chosen.key) ? String(chosen.key.value) : String(chosen.key));
      const vs = startOf(chosen.value);
      if (vs === undefined || vs > offset) return path;
      node = chosen.value;
    } else if (isSeq(node)) {
      let index = -1;
      node.items.forEach((item, i) => {
        const s = startOf(item);
        if (s !== undefined && s <= offset) index = i;
      });
      if (index < 0) return path;
      path.push(index);
      node = node.items[index];
    } else {
      return path;
    }
  }
}
