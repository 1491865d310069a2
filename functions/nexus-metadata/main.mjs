// nexus-metadata: the scientific metadata of a NeXus/HDF5 file as JSON, for a catalogue. Reads the
// structure, attributes, shapes, types and small values; never the data of a big dataset. See
// functions/README.md for the input and the shape of the result.
import { pathOf } from '@sluice/builtins/events.mjs';
import { withLocalCopy } from '@sluice/builtins/local-copy.mjs';
import { attributes, describeDataset, hdf5Call, linkKind, openHdf5, textAttribute } from '@sluice/builtins/hdf5.mjs';
import { childrenOfClass, externalData, findPlottable, join, signalOf, walk } from '@sluice/builtins/nexus.mjs';

export async function handler(event, ctx) {
  const path = pathOf(event);
  const started = Date.now();
  const metadata = await withLocalCopy(ctx, path, async (local, attrs) => {
    ctx.log.info('read %s (%d bytes) in %d ms', path, attrs.size, Date.now() - started);
    const { h5, file } = await openHdf5(local, path);
    try {
      return hdf5Call(`cannot read the structure of ${path}`, () => extract(h5, file));
    } finally {
      file.close();
    }
  });
  ctx.log.info('%s: %d entries, %d groups', path, Object.keys(metadata.entries).length, Object.keys(metadata.tree).length);
  return { path, metadata };
}

function extract(h5, file) {
  const tree = walk(h5, file);
  const plottable = findPlottable(h5, file, tree);
  const root = file.get('/');
  const entries = {};
  for (const entryPath of childrenOfClass(tree, '/', 'NXentry')) {
    entries[entryPath.slice(1)] = entry(h5, file, tree, entryPath);
  }
  const nxTree = {};
  for (const [groupPath, node] of tree.groups) nxTree[groupPath] = node.nxClass;
  const isNexus = [...tree.groups.values()].some((node) => node.nxClass !== null);
  const out = {
    format: isNexus ? 'NeXus' : 'HDF5',
    attributes: attributes(root),
    default: textAttribute(root, 'default') ?? null,
    plottable: plottable?.signal ?? null,
    entries,
    tree: nxTree,
  };
  if (tree.truncated) out.treeTruncated = true;
  return out;
}

/** Every dataset directly in a group, by name: small ones as values (with units), big ones described. */
function fields(file, tree, groupPath) {
  const out = {};
  for (const name of tree.groups.get(groupPath)?.datasets ?? []) out[name] = describeDataset(file.get(join(groupPath, name)));
  return out;
}

/** A field's plain value (a string, a number), whether or not it has units; null if absent or big. */
function plain(field) {
  if (field === undefined) return null;
  if (field !== null && typeof field === 'object' && !Array.isArray(field)) return 'value' in field ? field.value : null;
  return field;
}

/** A `name` field with its optional @short_name (NXinstrument, NXsource). */
function named(file, tree, groupPath) {
  const f = fields(file, tree, groupPath);
  const out = { path: groupPath, name: plain(f.name) };
  if (tree.groups.get(groupPath)?.datasets.includes('name')) {
    const shortName = textAttribute(file.get(join(groupPath, 'name')), 'short_name');
    if (shortName !== undefined) out.short_name = shortName;
  }
  out.fields = f;
  return out;
}

function entry(h5, file, tree, entryPath) {
  const group = file.get(entryPath);
  const f = fields(file, tree, entryPath);
  const out = {
    path: entryPath,
    title: plain(f.title),
    start_time: plain(f.start_time),
    end_time: plain(f.end_time),
  };
  if (f.definition !== undefined) out.definition = plain(f.definition);
  const dflt = textAttribute(group, 'default');
  if (dflt !== undefined) out.default = dflt;
  out.fields = f;
  out.instruments = childrenOfClass(tree, entryPath, 'NXinstrument').map((p) => instrument(h5, file, tree, p));
  out.samples = childrenOfClass(tree, entryPath, 'NXsample').map((p) => named(file, tree, p));
  out.data = childrenOfClass(tree, entryPath, 'NXdata').map((p) => nxdata(h5, file, tree, p));
  return out;
}

function instrument(h5, file, tree, instrumentPath) {
  const out = named(file, tree, instrumentPath);
  out.sources = childrenOfClass(tree, instrumentPath, 'NXsource').map((p) => named(file, tree, p));
  out.detectors = childrenOfClass(tree, instrumentPath, 'NXdetector').map((p) => detector(h5, file, tree, p));
  return out;
}

function detector(h5, file, tree, detectorPath) {
  const node = tree.groups.get(detectorPath);
  const f = fields(file, tree, detectorPath);
  const out = { path: detectorPath };
  if (f.description !== undefined) out.description = plain(f.description);
  if (node.datasets.includes('data')) {
    out.data = { path: join(detectorPath, 'data'), ...describeDataset(file.get(join(detectorPath, 'data')), { withValue: false }) };
  } else {
    // EIGER-style master files keep the frames in other files, reached through external links.
    const external = externalData(file, tree, detectorPath);
    out.data = external.length > 0 ? { external } : null;
  }
  out.fields = f;
  return out;
}

function nxdata(h5, file, tree, dataPath) {
  const group = file.get(dataPath);
  const signal = signalOf(h5, file, tree, dataPath);
  const out = { path: dataPath, signal: signal ?? null };
  if (signal) {
    const link = linkKind(h5, file, signal);
    if (link.soft) out.link = link.soft;
    Object.assign(out, describeDataset(file.get(signal), { withValue: false }));
  }
  const external = externalData(file, tree, dataPath);
  if (external.length > 0) out.external = external;
  const axes = group.attrs.axes ? group.attrs.axes.json_value : undefined;
  if (axes !== undefined) out.axes = Array.isArray(axes) ? axes : [axes];
  return out;
}
