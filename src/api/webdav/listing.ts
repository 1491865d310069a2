// The small HTML page a browser gets for GET on a collection.
import type { Entry } from '../../storage/types.js';
import { hrefOf } from './multistatus.js';
import { escapeXml } from './xml.js';

export function collectionPage(dir: Entry, children: readonly Entry[]): string {
  const title = escapeXml(dir.path === '/' ? '/' : dir.path + '/');
  const rows = children.map((c) => {
    const name = escapeXml(c.name + (c.type === 'DIR' ? '/' : ''));
    const size = c.type === 'DIR' ? '-' : String(c.size);
    return `<tr><td><a href="${escapeXml(hrefOf(c))}">${name}</a></td><td>${size}</td><td>${new Date(c.mtime).toISOString()}</td></tr>`;
  });
  const up = dir.path === '/' ? '' : '<tr><td><a href="../">../</a></td><td></td><td></td></tr>';
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1>
<table><thead><tr><th>name</th><th>size</th><th>modified</th></tr></thead><tbody>
${up}${rows.join('\n')}
</tbody></table></body></html>
`;
}
