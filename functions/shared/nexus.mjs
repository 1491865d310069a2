// NeXus on top of HDF5 (https://manual.nexusformat.org): groups are typed by their NX_class attribute,
// and the plottable data is found through @default (root → NXentry → NXdata) and NXdata's @signal.
// Only group paths, attributes and dataset descriptions are read here, never the data of a big dataset.
import { linkKind, textAttribute } from './hdf5.mjs';

/** Groups listed at most; a file with more (a group per scan point) is reported as truncated. */
export const MAX_GROUPS = 20_000;
const MAX_DEPTH = 64;

export const join = (group, name) => (group === '/' ? `/${name}` : `${group}/${name}`);

/**
 * Every group reachable through hard links from the root, breadth first, with its NX_class (null if
 * it has none) and its children: groups, datasets (including soft links to datasets, as NXdata often
 * has) and external links. Soft links to groups are not followed, so a link cycle cannot loop.
 */
export function walk(h5, file) {
  const groups = new Map();
  const queue = ['/'];
  let truncated = false;
  while (queue.length > 0) {
    const path = queue.shift();
    if (groups.size >= MAX_GROUPS) {
      truncated = true;
      break;
    }
    const group = file.get(path);
    const node = { nxClass: textAttribute(group, 'NX_class') ?? null, groups: [], datasets: [], external: [] };
    groups.set(path, node);
    const depth = path === '/' ? 0 : path.split('/').length - 1;
    for (const name of group.keys()) {
      const child = join(path, name);
      const link = linkKind(h5, file, child);
      if (link.kind === 'group' && !link.soft) {
        node.groups.push(name);
        if (depth + 1 < MAX_DEPTH) queue.push(child);
      } else if (link.kind === 'dataset') node.datasets.push(name);
      else if (link.kind === 'external') node.external.push({ name, file: link.filename, path: link.obj_path });
    }
  }
  return { groups, truncated };
}

/** Child groups of `path` whose NX_class is `nxClass`, as paths, in the file's order. */
export function childrenOfClass(tree, path, nxClass) {
  const node = tree.groups.get(path);
  if (!node) return [];
  return node.groups.map((name) => join(path, name)).filter((p) => tree.groups.get(p)?.nxClass === nxClass);
}

/** A name given by @default or @signal: a child name, or (as some writers do) a path relative to the group. */
function resolveName(group, name) {
  if (typeof name !== 'string' || name === '') return undefined;
  return name.startsWith('/') ? name : join(group, name);
}

/**
 * The default NXdata group, as the NeXus manual's "find the plottable data" says: the root's @default
 * names an NXentry (else the first NXentry), the entry's @default an NXdata (or an NXsubentry to
 * descend into; else the first NXdata). Returns {entry, data} paths, or null.
 */
export function findDefaultData(file, tree) {
  const root = file.get('/');
  let entry = resolveName('/', textAttribute(root, 'default'));
  if (!entry || !isClass(tree, entry, ['NXentry'])) entry = childrenOfClass(tree, '/', 'NXentry')[0];
  if (!entry) return null;
  let group = entry;
  for (let hop = 0; hop < 8 && tree.groups.get(group)?.nxClass !== 'NXdata'; hop++) {
    const named = resolveName(group, textAttribute(file.get(group), 'default'));
    const next = named && isClass(tree, named, ['NXdata', 'NXsubentry', 'NXentry']) ? named : childrenOfClass(tree, group, 'NXdata')[0];
    if (!next) return null;
    group = next;
  }
  return tree.groups.get(group)?.nxClass === 'NXdata' ? { entry, data: group } : null;
}

/**
 * The default plottable data: the default NXdata group's @signal dataset (else the dataset marked
 * with the older signal=1 attribute). Returns {entry, data, signal} paths, or null.
 */
export function findPlottable(h5, file, tree) {
  const found = findDefaultData(file, tree);
  const signal = found && signalOf(h5, file, tree, found.data);
  return signal ? { ...found, signal } : null;
}

/** The signal dataset of an NXdata group (path), by @signal or the legacy signal=1 attribute. */
export function signalOf(h5, file, tree, group) {
  const node = tree.groups.get(group);
  const named = resolveName(group, textAttribute(file.get(group), 'signal'));
  if (named && linkKind(h5, file, named).kind === 'dataset') return named;
  for (const name of node?.datasets ?? []) {
    const dataset = file.get(join(group, name));
    const legacy = Object.hasOwn(dataset.attrs, 'signal') ? dataset.attrs.signal.json_value : undefined;
    if (legacy === 1 || legacy === '1' || (Array.isArray(legacy) && (legacy[0] === 1 || legacy[0] === '1'))) return join(group, name);
  }
  return undefined;
}

/**
 * Frames kept in other files, as EIGER master files keep them: the external links of a group (an
 * NXdata or NXdetector) that hold its data — the one @signal names, else those named data or
 * data_000001, data_000002, … in order. Each is {path, file, target}; empty if there are none.
 */
export function externalData(file, tree, group) {
  const external = tree.groups.get(group)?.external ?? [];
  const signal = textAttribute(file.get(group), 'signal');
  const named = external.filter((x) => x.name === signal);
  const links = named.length > 0 ? named : external.filter((x) => /^data(_\d+)?$/.test(x.name));
  return links
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
    .map((x) => ({ path: join(group, x.name), file: x.file, target: x.path }));
}

function isClass(tree, path, classes) {
  const nxClass = tree.groups.get(path)?.nxClass;
  return nxClass !== undefined && classes.includes(nxClass);
}
