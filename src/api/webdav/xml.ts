// XML for the WebDAV door: strict parsing of request bodies (any error is BAD_XML), the names and
// values of properties as clients sent them, and the escaping used when writing responses.
import { DOMParser, XMLSerializer, type Document, type Element, type Node } from '@xmldom/xmldom';
import { SluiceError } from '../../errors.js';

export const DAV_NS = 'DAV:';

const ELEMENT_NODE = 1;

/** A property name: namespace URI ('' for none) and local name. */
export interface PropName {
  ns: string;
  name: string;
}

export const propKey = (p: PropName): string => `{${p.ns}}${p.name}`;

/** Parses a request body; malformed XML, bad namespace declarations and DTDs are refused. */
export function parseXml(text: string): Document {
  if (/<!DOCTYPE/i.test(text)) throw new SluiceError('BAD_XML', 'document type declarations are not accepted');
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        if (level !== 'warning') throw new SluiceError('BAD_XML', `malformed XML: ${message}`);
      },
    }).parseFromString(text, 'application/xml');
  } catch (e) {
    if (e instanceof SluiceError) throw e;
    throw new SluiceError('BAD_XML', `malformed XML: ${(e as Error).message}`);
  }
  if (!doc.documentElement) throw new SluiceError('BAD_XML', 'XML body has no root element');
  rejectEmptyPrefixBindings(doc.documentElement);
  return doc;
}

/** Namespaces in XML 1.0 forbids binding a prefix to the empty name (xmlns:p=""). */
function rejectEmptyPrefixBindings(el: Element): void {
  for (let i = 0; i < el.attributes.length; i++) {
    const a = el.attributes.item(i)!;
    if (a.name.startsWith('xmlns:') && a.value === '')
      throw new SluiceError('BAD_XML', `namespace prefix ${a.name.slice(6)} bound to the empty name`);
  }
  for (const child of childElements(el)) rejectEmptyPrefixBindings(child);
}

export function childElements(el: Element): Element[] {
  const out: Element[] = [];
  for (let n: Node | null = el.firstChild; n; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) out.push(n as Element);
  return out;
}

export const isDav = (el: Element, localName: string): boolean => el.namespaceURI === DAV_NS && el.localName === localName;

export const nameOfElement = (el: Element): PropName => ({ ns: el.namespaceURI ?? '', name: el.localName ?? el.nodeName });

/**
 * The content of an element as self-contained markup: each child serialised with the namespace
 * declarations it needs, so it can be stored and written back inside any other document.
 */
export function innerXml(el: Element): string {
  const serializer = new XMLSerializer();
  let out = '';
  for (let n: Node | null = el.firstChild; n; n = n.nextSibling) out += serializer.serializeToString(n);
  return out;
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for an attribute value or element content. */
export const escapeXml = (s: string): string => s.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);

/** Escapes element content only (quotes stay readable, e.g. in DAV:getetag). */
export const escapeText = (s: string): string => s.replace(/[&<>]/g, (c) => XML_ESCAPES[c]!);

/**
 * An element named by a property, in a response that binds only the prefix D (to DAV:). Other
 * namespaces get a prefix declared on the element itself; properties in no namespace use xmlns="".
 */
export function propElement(p: PropName, content: string | undefined): string {
  let open: string;
  let tag: string;
  if (p.ns === DAV_NS) {
    tag = `D:${p.name}`;
    open = tag;
  } else if (p.ns === '') {
    tag = p.name;
    open = `${tag} xmlns=""`;
  } else {
    tag = `P:${p.name}`;
    open = `${tag} xmlns:P="${escapeXml(p.ns)}"`;
  }
  return content === undefined || content === '' ? `<${open}/>` : `<${open}>${content}</${tag}>`;
}

export const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n';
